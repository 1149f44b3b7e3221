import Glibc

/// A listening stream socket, TCP (IPv4 or IPv6) or Unix-domain.
///
/// ```swift
/// let listener = try await SocketListener.bind(host: "127.0.0.1", port: 8080)
/// for try await connection in listener.connections {
///     loop.spawn { try await handle(connection) }
/// }
/// ```
///
/// Accepted streams are non-blocking, close-on-exec, and have TCP_NODELAY on.
public final class SocketListener: @unchecked Sendable {
    let descriptor: Descriptor
    /// The bound address (with the real port when bound to port 0).
    public let localAddress: SocketAddress
    private let isUnix: Bool

    private init(fd: Int32, address: SocketAddress, loop: EventLoop) {
        localAddress = address
        isUnix = address.family == AF_UNIX
        descriptor = Descriptor(fd: fd, loop: loop, label: address.description)
    }

    /// The raw descriptor, or -1 after ``close()``.
    public var fileDescriptor: Int32 { descriptor.fd }

    /// Binds and listens on `host:port` (port 0 picks a free port; see
    /// ``localAddress``). `host` may be a numeric IPv4/IPv6 address or a name.
    ///
    /// - Parameters:
    ///   - backlog: the accept queue length (`listen(2)`).
    ///   - reuseAddress: `SO_REUSEADDR`, on by default as servers expect.
    ///   - reusePort: `SO_REUSEPORT`, for one listener per loop (thread per core).
    /// - Throws: ``IOError`` (`.addressInUse`, `.permissionDenied`, …).
    public static func bind(host: String, port: Int, backlog: Int32 = 511,
                            reuseAddress: Bool = true, reusePort: Bool = false) async throws -> SocketListener {
        let loop = try EventLoop.running()
        guard backlog > 0 else {
            throw IOError(operation: "listen", errno: Errno(EINVAL), path: host, detail: "backlog must be positive, got \(backlog)")
        }
        let address = try await Sockets.resolve(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), loop: loop)[0]
        return try listen(on: address, backlog: backlog, loop: loop) { (fd: Int32) throws(IOError) in
            if reuseAddress { try Sockets.setFlag(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", address: address) }
            if reusePort { try Sockets.setFlag(fd, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", address: address) }
            if address.family == AF_INET6 { try Sockets.setFlag(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, "IPV6_V6ONLY", address: address) }
        }
    }

    /// Binds and listens on a Unix-domain socket path. An existing socket
    /// file at `path` is an error (`.addressInUse`) unless `removeExisting`.
    public static func bind(unixPath path: String, backlog: Int32 = 511, removeExisting: Bool = false) async throws -> SocketListener {
        let loop = try EventLoop.running()
        let address = try SocketAddress(unixPath: path)
        if removeExisting { unlink(path) }
        return try listen(on: address, backlog: backlog, loop: loop) { (_: Int32) throws(IOError) in }
    }

    private static func listen(on address: SocketAddress, backlog: Int32, loop: EventLoop,
                               configure: (Int32) throws(IOError) -> Void) throws(IOError) -> SocketListener {
        let fd = try Sockets.make(address.family, Int32(SOCK_STREAM.rawValue), label: address.description)
        do throws(IOError) {
            try configure(fd)
            try Sockets.bind(fd, address)
            guard Glibc.listen(fd, backlog) == 0 else {
                throw IOError(operation: "listen", errno: .current, fd: fd, path: address.description)
            }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return SocketListener(fd: fd, address: Sockets.localAddress(fd) ?? address, loop: loop)
    }

    /// Waits for the next connection (`IORING_OP_ACCEPT`, or `accept4` on readiness).
    public func accept() async throws -> SocketStream {
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        let (fd, peer) = try await descriptor.perform("accept", keepAlive: nil, { fd, scratch in
            scratch.addressLength.pointee = socklen_t(MemoryLayout<sockaddr_storage>.size)
            return .accept(fd: fd, address: scratch.socketAddress, length: scratch.addressLength, flags: flags)
        }, extract: { scratch, result -> (Int32, SocketAddress?) in
            (result, result >= 0 ? SocketAddress(scratch.address, length: scratch.addressLength.pointee) : nil)
        })
        let stream = SocketStream(fd: fd, remote: isUnix ? localAddress : peer, loop: descriptor.loop)
        if !isUnix { try? stream.setNoDelay(true) }
        return stream
    }

    /// The accepted connections, one at a time, until the listener is closed
    /// (the sequence then ends) or accepting fails (it throws).
    public var connections: Connections { Connections(listener: self) }

    /// An `AsyncSequence` of accepted streams.
    public struct Connections: AsyncSequence, Sendable {
        public typealias Element = SocketStream
        let listener: SocketListener

        public struct AsyncIterator: AsyncIteratorProtocol {
            let listener: SocketListener
            public mutating func next() async throws -> SocketStream? {
                do {
                    return try await listener.accept()
                } catch let error as IOError where error.code == .closed {
                    return nil
                }
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listener: listener) }
    }

    /// Stops listening: a pending ``accept()`` ends with ``IOError`` (`.closed`).
    /// Removes the socket file of a Unix-domain listener. Idempotent.
    public func close() async throws {
        let wasOpen = descriptor.fd >= 0
        try await descriptor.close()
        if wasOpen, case .unix(let path) = localAddress { unlink(path) }
    }
}
