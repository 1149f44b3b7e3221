import CUring
import Glibc

/// Taking over sockets made elsewhere: a listener handed down by systemd
/// (`LISTEN_FDS`) or a parent process, one end of a `socketpair`, a socket a
/// C library connected. asyncio's `sock=` arguments (`start_server(sock=)`,
/// `open_connection(sock=)`, `create_server(sock=)`).
extension Sockets {
    /// What an adopted socket must already be.
    enum Role {
        case listening
        case connected
    }

    /// Checks that `fd` is a stream socket in `role`, and makes it what
    /// RingLoop's own sockets are: non-blocking, close-on-exec, TCP_NODELAY
    /// on TCP (a listener passes it on to what it accepts). Returns its
    /// local address. Nothing is changed when it throws.
    ///
    /// - Throws: ``IOError`` naming the descriptor: `EBADF` (not open),
    ///   `ENOTSOCK` (a file, a pipe), `EPROTOTYPE` (a datagram socket),
    ///   `EINVAL` (a listener where a connection was expected, or the
    ///   reverse), `ENOTCONN` (a stream socket not connected yet).
    static func adopt(_ fd: Int32, as role: Role, operation: String) throws(IOError) -> SocketAddress {
        func refuse(_ errno: Int32, _ detail: String) -> IOError {
            IOError(operation: operation, errno: Errno(errno), fd: fd, detail: detail)
        }
        var status = stat()
        guard fd >= 0, fstat(fd, &status) == 0 else { throw refuse(EBADF, "not an open descriptor") }
        guard status.st_mode & S_IFMT == S_IFSOCK else { throw refuse(ENOTSOCK, "not a socket") }
        guard let type = intOption(fd, SO_TYPE), type == Int32(SOCK_STREAM.rawValue) else {
            throw refuse(EPROTOTYPE, "not a stream socket (for a datagram socket, use UDPSocket)")
        }
        let listening = intOption(fd, SO_ACCEPTCONN) == 1
        switch role {
        case .listening where !listening:
            throw refuse(EINVAL, "not listening: call listen(2) on it first, or adopt a connected socket as a SocketStream")
        case .connected where listening:
            throw refuse(EINVAL, "a listening socket: adopt it as a SocketListener, or serve it with serve(listener:)")
        case .connected where remoteAddress(fd) == nil:
            throw refuse(ENOTCONN, "not connected")
        default:
            break
        }
        guard let address = localAddress(fd) else { throw refuse(Errno.current.rawValue, "getsockname failed") }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) | FD_CLOEXEC)
        if case .unix = address {} else { try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY", path: nil) }
        return address
    }

    private static func intOption(_ fd: Int32, _ name: Int32) -> Int32? {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        return getsockopt(fd, SOL_SOCKET, name, &value, &length) == 0 ? value : nil
    }
}

extension SocketStream {
    /// Takes over `fd`, a connected stream socket (TCP or Unix-domain) made
    /// elsewhere: one end of a `socketpair`, a socket a C library connected,
    /// one a parent process handed down. asyncio's `open_connection(sock=)`.
    ///
    /// ```swift
    /// var ends: [Int32] = [0, 0]
    /// socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends)
    /// let stream = try SocketStream(adopting: ends[0])
    /// ```
    ///
    /// The stream owns the descriptor from now on, and made it non-blocking
    /// and close-on-exec (TCP_NODELAY on TCP), as its own sockets are. When
    /// it throws, the descriptor is left as it was, and still the caller's.
    ///
    /// - Throws: ``IOError`` naming the descriptor (see
    ///   ``SocketListener/init(adopting:)`` for the errnos); ``EventLoopError``
    ///   outside a running loop.
    public convenience init(adopting fd: Int32) throws {
        let loop = try EventLoop.running()
        _ = try Sockets.adopt(fd, as: .connected, operation: "SocketStream(adopting:)")
        self.init(fd: fd, loop: loop)
    }
}

extension SocketListener {
    /// Takes over `fd`, a listening stream socket made elsewhere: systemd's
    /// socket activation (`LISTEN_FDS`, the first at descriptor 3), a parent
    /// process's listener. asyncio's `start_server(sock=)`; serve it with
    /// ``EventLoop/serve(listener:_:)`` or iterate ``connections``.
    ///
    /// ```swift
    /// let listener = try SocketListener(adopting: 3)   // systemd's first socket
    /// let server = try loop.serve(listener: listener) { stream in … }
    /// ```
    ///
    /// The listener owns the descriptor from now on, and made it
    /// non-blocking and close-on-exec (and TCP_NODELAY on TCP, which accepted
    /// connections inherit). Closing it does not remove a Unix-domain
    /// socket's path: whoever bound it does. When it throws, the descriptor
    /// is left as it was, and still the caller's.
    ///
    /// - Throws: ``IOError`` naming the descriptor: `EBADF` (not open),
    ///   `ENOTSOCK` (not a socket), `EPROTOTYPE` (a datagram socket),
    ///   `EINVAL` (not listening); ``EventLoopError`` outside a running loop.
    public convenience init(adopting fd: Int32) throws {
        let loop = try EventLoop.running()
        let address = try Sockets.adopt(fd, as: .listening, operation: "SocketListener(adopting:)")
        self.init(fd: fd, address: address, loop: loop, unixSocket: nil)
    }
}

extension EventLoop {
    /// Runs `handler` in a task of its own for each connection `listener`
    /// accepts: ``serve(host:port:backlog:reusePort:_:)`` on a listener
    /// made beforehand, such as one from ``SocketListener/init(adopting:)``.
    ///
    /// - Throws: ``EventLoopError/wrongLoop(operation:)`` when the listener
    ///   belongs to another loop; ``EventLoopError/wrongThread(operation:)``
    ///   off this loop's thread.
    public func serve(listener: SocketListener, _ handler: @escaping (SocketStream) async throws -> Void) throws -> StreamServer {
        try requireLoopThread("serve(listener:)")
        guard listener.loop === self else { throw EventLoopError.wrongLoop(operation: "serve(listener:)") }
        return StreamServer(listeners: [listener], loop: self, handler: handler)
    }

    /// Serves each connection on `fd`, a listening stream socket made
    /// elsewhere, with a new protocol object from `factory`: asyncio's
    /// `create_server(sock=)`. What ``SocketListener/init(adopting:)`` does
    /// to and asks of the descriptor applies.
    public func createServer(adopting fd: Int32, _ factory: @escaping () -> any TransportProtocol) throws -> Server {
        try requireLoopThread("createServer(adopting:)")
        let address = try Sockets.adopt(fd, as: .listening, operation: "createServer(adopting:)")
        return Server(listeners: [(fd: fd, address: address)], loop: self, unixSocket: nil, factory: factory)
    }

    /// Drives `fd`, a connected stream socket made elsewhere, with the
    /// protocol object `factory` makes: asyncio's `create_connection(sock=)`.
    /// What ``SocketStream/init(adopting:)`` does to and asks of the
    /// descriptor applies.
    public func createConnection<P: TransportProtocol>(adopting fd: Int32, _ factory: () -> P) throws -> (Transport, P) {
        try requireLoopThread("createConnection(adopting:)")
        _ = try Sockets.adopt(fd, as: .connected, operation: "createConnection(adopting:)")
        return start(fd: fd, factory())
    }
}
