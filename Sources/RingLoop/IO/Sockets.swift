import CUring
import Glibc

/// Shared socket plumbing: creation, binding, names, resolution.
enum Sockets {
    /// A new non-blocking, close-on-exec socket. Non-blocking so the epoll
    /// backend can try each call at once; io_uring polls internally.
    static func make(_ family: Int32, _ type: Int32, label: String) throws(IOError) -> Int32 {
        let fd = socket(family, type | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw IOError(operation: "socket", errno: .current, path: label) }
        return fd
    }

    static func bind(_ fd: Int32, _ address: SocketAddress) throws(IOError) {
        try address.validate()
        guard address.withSockAddr({ Glibc.bind(fd, $0, $1) }) == 0 else {
            throw IOError(operation: "bind", errno: .current, fd: fd, path: address.description)
        }
    }

    /// Sets an integer socket option; the one `setsockopt` call behind every
    /// option RingLoop sets.
    static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32,
                          _ label: String, path: String?) throws(IOError) {
        var value = value
        guard setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) == 0 else {
            throw IOError(operation: "setsockopt(\(label))", errno: .current, fd: fd, path: path)
        }
    }

    static func setFlag(_ fd: Int32, _ level: Int32, _ name: Int32, _ label: String, address: SocketAddress) throws(IOError) {
        try setOption(fd, level, name, 1, label, path: address.description)
    }

    static func localAddress(_ fd: Int32) -> SocketAddress? {
        name(fd, getsockname)
    }

    static func remoteAddress(_ fd: Int32) -> SocketAddress? {
        name(fd, getpeername)
    }

    private static func name(
        _ fd: Int32, _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> SocketAddress? {
        guard fd >= 0 else { return nil }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        guard rc == 0 else { return nil }
        return withUnsafePointer(to: &storage) { SocketAddress($0, length: length) }
    }

    /// Numeric addresses directly; names through `getaddrinfo` on the loop's
    /// thread pool, so a slow resolver never blocks the loop.
    static nonisolated(nonsending) func resolve(host: String, port: Int, type: Int32 = Int32(SOCK_STREAM.rawValue), loop: EventLoop) async throws -> [SocketAddress] {
        try SocketAddress.rejectNUL(host, "host name", operation: "getaddrinfo")
        guard !host.isEmpty else {
            // asyncio reads "" as every interface; getaddrinfo only says
            // "Name or service not known". Say what to write instead.
            throw IOError(operation: "getaddrinfo", errno: nil, path: host,
                          detail: "the host name is empty; to listen on every interface use 0.0.0.0 (IPv4) or :: (IPv6), or \"\" with serve or createServer (both)")
        }
        if let numeric = try? SocketAddress(ip: host, port: port) { return [numeric] }
        guard (0...65535).contains(port) else {
            throw IOError(operation: "getaddrinfo", errno: Errno(EINVAL), path: host, detail: "port \(port) is outside 0...65535")
        }
        let addresses: Result<[SocketAddress], IOError> = try await loop.offload(to: try loop.resolver) {
            var hints = addrinfo()
            hints.ai_socktype = type
            hints.ai_family = AF_UNSPEC
            var list: UnsafeMutablePointer<addrinfo>?
            errno = 0
            let rc = getaddrinfo(host, String(port), &hints, &list)
            let cause = errno
            guard rc == 0, let list else {
                let said = String(cString: gai_strerror(rc))
                // EAI_SYSTEM: errno is the error. And glibc ends a lookup it
                // could not make for want of a descriptor (to read /etc/hosts,
                // to ask a DNS server) as EAI_NONAME, "Name or service not
                // known", with errno at EMFILE: the name is not what is wrong.
                if cause == EMFILE || cause == ENFILE {
                    return .failure(IOError(operation: "getaddrinfo", errno: Errno(cause), path: host,
                                            detail: "no descriptor was free to look the name up (getaddrinfo said \"\(said)\")"))
                }
                if rc == EAI_SYSTEM, cause != 0 {
                    return .failure(IOError(operation: "getaddrinfo", errno: Errno(cause), path: host))
                }
                return .failure(IOError(operation: "getaddrinfo", errno: nil, path: host, detail: "\(resolverErrorName(rc)) (\(said))"))
            }
            defer { freeaddrinfo(list) }
            var found: [SocketAddress] = []
            var entry: UnsafeMutablePointer<addrinfo>? = list
            while let current = entry {
                if let raw = current.pointee.ai_addr {
                    var storage = sockaddr_storage()
                    withUnsafeMutableBytes(of: &storage) { target in
                        target.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(current.pointee.ai_addrlen)))
                    }
                    if let address = withUnsafePointer(to: &storage, { SocketAddress($0, length: current.pointee.ai_addrlen) }),
                       !found.contains(address) {
                        found.append(address)
                    }
                }
                entry = current.pointee.ai_next
            }
            return .success(found)
        }
        let list = try addresses.get()
        guard !list.isEmpty else {
            throw IOError(operation: "getaddrinfo", errno: nil, path: host, detail: "no addresses")
        }
        return list
    }
}

extension Sockets {
    /// How long a bind that finds its IP port taken keeps trying before it
    /// throws `EADDRINUSE`: see ``retryingAddressInUse(loop:_:)``.
    static let addressInUseGrace: Duration = .milliseconds(200)

    /// Runs `bind`, and runs it again every 2 ms for up to
    /// ``addressInUseGrace`` while it fails with `EADDRINUSE`.
    ///
    /// Why: a process killed by a signal while its io_uring ring had a
    /// request on a listening socket (an armed accept) keeps that socket,
    /// and its port, for a few milliseconds after it has been reaped: the
    /// request holds a reference to the socket until the kernel tears the
    /// ring down on a work queue (5–13 ms measured here after SIGTERM, the
    /// plain C liburing server alike; epoll holds no such reference). A
    /// server restarted at once, of any backend, would otherwise fail to
    /// bind. nginx retries `EADDRINUSE` for the same kind of reason. The
    /// wait is on the loop's timers, so the loop runs meanwhile; a port that
    /// stays taken is still an error, 200 ms later.
    static nonisolated(nonsending) func retryingAddressInUse<T>(loop: EventLoop,
                                                                _ bind: () throws(IOError) -> T) async throws -> T {
        let deadline = LoopInstant.now + addressInUseGrace
        while true {
            // A Result, not a typed do/catch: the latter crashes Swift 6.3's
            // SIL ownership verifier in this generic async function.
            let outcome = Result { () throws(IOError) in try bind() }
            guard case .failure(let error) = outcome, error.errno?.rawValue == EADDRINUSE, LoopInstant.now < deadline else {
                return try outcome.get()
            }
            try await loop.sleep(for: .milliseconds(2))
        }
    }

    /// A bound, listening socket on `host:port` (names are resolved first).
    static nonisolated(nonsending) func listen(host: String, port: Int, backlog: Int32, reuseAddress: Bool, reusePort: Bool,
                       loop: EventLoop) async throws -> (Int32, SocketAddress) {
        try checkBacklog(backlog, for: host)
        let address = try await resolve(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), loop: loop)[0]
        return try await retryingAddressInUse(loop: loop) { () throws(IOError) in
            try listen(on: address, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort)
        }
    }

    /// A listening socket on each address `host` resolves to, all on one port
    /// (asyncio's `create_server`): see ``listenOnEvery(_:backlog:reuseAddress:reusePort:)``.
    /// An empty `host` is every interface: `0.0.0.0` and `::`.
    static nonisolated(nonsending) func listenOnEvery(host: String, port: Int, backlog: Int32, reuseAddress: Bool, reusePort: Bool,
                                                      loop: EventLoop) async throws -> [(fd: Int32, address: SocketAddress)] {
        try checkBacklog(backlog, for: host)
        // "" is every interface of both families, as asyncio's host=None and "".
        let addresses = host.isEmpty
            ? [try SocketAddress(ip: "0.0.0.0", port: port), try SocketAddress(ip: "::", port: port)]
            : try await resolve(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), loop: loop)
        return try await retryingAddressInUse(loop: loop) { () throws(IOError) in
            try listenOnEvery(addresses, backlog: backlog, reuseAddress: reuseAddress, reusePort: reusePort)
        }
    }

    /// A listening socket on each of `addresses`, all on one port: with port
    /// 0 the first address picks it and the others take the same. An address
    /// this machine cannot bind (EADDRNOTAVAIL, EAFNOSUPPORT: `::1` where
    /// IPv6 is off) is left out as long as another one binds; any other
    /// failure closes what was bound and is thrown.
    static func listenOnEvery(_ addresses: [SocketAddress], backlog: Int32, reuseAddress: Bool,
                              reusePort: Bool) throws(IOError) -> [(fd: Int32, address: SocketAddress)] {
        var bound: [(fd: Int32, address: SocketAddress)] = []
        var unavailable: IOError?
        var chosenPort = addresses.first?.port ?? 0
        do throws(IOError) {
            for address in addresses {
                do throws(IOError) {
                    let (fd, local) = try listen(on: address.withPort(chosenPort), backlog: backlog,
                                                 reuseAddress: reuseAddress, reusePort: reusePort)
                    bound.append((fd: fd, address: local))
                    chosenPort = local.port ?? chosenPort
                } catch where [EADDRNOTAVAIL, EAFNOSUPPORT].contains(error.errno?.rawValue ?? 0) {
                    unavailable = error
                }
            }
        } catch {
            for (fd, _) in bound { Glibc.close(fd) }
            throw error
        }
        guard !bound.isEmpty else {
            throw unavailable ?? IOError(operation: "listen", errno: Errno(EINVAL), detail: "no address to listen on")
        }
        return bound
    }

    /// A backlog `listen(2)` would take: positive.
    private static func checkBacklog(_ backlog: Int32, for name: String) throws(IOError) {
        guard backlog > 0 else {
            throw IOError(operation: "listen", errno: Errno(EINVAL), path: name, detail: "backlog must be positive, got \(backlog)")
        }
    }

    /// A listening TCP socket on `address`, with the options servers use.
    ///
    /// TCP_NODELAY is set here, on the listening socket, and not on each
    /// connection: Linux copies it into every socket `accept` makes, which
    /// saves a `setsockopt` per connection (one of the three syscalls an
    /// accepted, echoed and closed connection cost; `ListenerOptionTests`
    /// holds the inheritance on both families and both server APIs).
    private static func listen(on address: SocketAddress, backlog: Int32, reuseAddress: Bool,
                               reusePort: Bool) throws(IOError) -> (Int32, SocketAddress) {
        try listen(on: address, backlog: backlog) { (fd: Int32) throws(IOError) in
            if reuseAddress { try setFlag(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", address: address) }
            if reusePort { try setFlag(fd, SOL_SOCKET, SO_REUSEPORT, "SO_REUSEPORT", address: address) }
            if address.family == AF_INET6 { try setFlag(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, "IPV6_V6ONLY", address: address) }
            try setFlag(fd, Int32(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY", address: address)
        }
    }

    /// A bound, listening Unix-domain socket, and the file it made (removed
    /// again at close, if it is still this socket's).
    static func listen(unixPath path: String, backlog: Int32, removeExisting: Bool) throws(IOError) -> (Int32, SocketAddress, UnixSocketFile) {
        try checkBacklog(backlog, for: path)
        let address = try SocketAddress(unixPath: path)
        if removeExisting { try UnixSocketFile.removeStale(at: path) }
        let (fd, bound) = try listen(on: address, backlog: backlog) { (_: Int32) throws(IOError) in }
        return (fd, bound, UnixSocketFile(path: path))
    }

    static func listen(on address: SocketAddress, backlog: Int32,
                       configure: (Int32) throws(IOError) -> Void) throws(IOError) -> (Int32, SocketAddress) {
        let fd = try bound(address, type: Int32(SOCK_STREAM.rawValue), configure: configure)
        guard Glibc.listen(fd, backlog) == 0 else {
            let error = IOError(operation: "listen", errno: .current, fd: fd, path: address.description)
            Glibc.close(fd)
            throw error
        }
        return (fd, localAddress(fd) ?? address)
    }

    /// A socket of `type` bound to `address`, `configure`d before the bind;
    /// on any failure it is closed again and the error thrown.
    static func bound(_ address: SocketAddress, type: Int32,
                      configure: (Int32) throws(IOError) -> Void) throws(IOError) -> Int32 {
        try made(for: address, type: type) { (fd: Int32) throws(IOError) in
            try configure(fd)
            try bind(fd, address)
        }
    }

    /// A datagram socket connected to `address` (a connect that sends
    /// nothing and completes at once), after `configure`.
    static func connectedDatagram(to address: SocketAddress,
                                  configure: (Int32) throws(IOError) -> Void) throws(IOError) -> Int32 {
        try address.validate()
        return try made(for: address, type: Int32(SOCK_DGRAM.rawValue)) { (fd: Int32) throws(IOError) in
            try configure(fd)
            try connectAtOnce(fd, address)
        }
    }

    /// A new socket for `address`'s family, set up by `setUp`; closed again
    /// if `setUp` fails, so the caller owns it only on success.
    private static func made(for address: SocketAddress, type: Int32,
                             setUp: (Int32) throws(IOError) -> Void) throws(IOError) -> Int32 {
        let fd = try make(address.family, type, label: address.description)
        do throws(IOError) {
            try setUp(fd)
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// A connected, non-blocking TCP socket: the first of `host`'s addresses
    /// that accepts, TCP_NODELAY on.
    static nonisolated(nonsending) func connect(host: String, port: Int, loop: EventLoop) async throws -> Int32 {
        var lastError: (any Error)?
        for address in try await resolve(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), loop: loop) {
            do {
                return try await connect(to: address, loop: loop)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = error
            }
        }
        throw lastError ?? IOError(operation: "connect", errno: Errno(EHOSTUNREACH), path: host)
    }

    /// A connected, non-blocking socket to `address` (`IORING_OP_CONNECT`, or
    /// a non-blocking connect finished on writability under epoll). On any
    /// failure, cancellation included, the socket is closed.
    static nonisolated(nonsending) func connect(to address: SocketAddress, loop: EventLoop) async throws -> Int32 {
        try address.validate()
        let fd = try make(address.family, Int32(SOCK_STREAM.rawValue), label: address.description)
        let descriptor = Descriptor(fd: fd, loop: loop, label: address.description)
        do {
            if address.family == AF_UNIX {
                try connectAtOnce(fd, address)
                return descriptor.release()
            }
            _ = try await descriptor.perform("connect", keepAlive: nil, { fd, scratch in
                let length = address.write(to: scratch.address)
                return .connect(fd: fd, address: scratch.socketAddress, length: length)
            }, extract: { _, result in result })
        } catch {
            await descriptor.closeNow()
            throw error
        }
        try? setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "TCP_NODELAY", path: nil)
        return descriptor.release()
    }

    /// A connect made directly, on both backends: a Unix-domain stream's or
    /// a datagram socket's. Neither has a handshake: it completes at once or
    /// fails at once. With a Unix listener's backlog full it fails with
    /// `EAGAIN`, as Go, libuv and SwiftNIO report it. Through the ring it
    /// would instead park an io-wq worker until the listener made room, so
    /// the two backends disagreed.
    private static func connectAtOnce(_ fd: Int32, _ address: SocketAddress) throws(IOError) {
        guard address.withSockAddr({ Glibc.connect(fd, $0, $1) }) != 0 else { return }
        let errno = Errno.current
        let backlogFull = errno.rawValue == EAGAIN && address.family == AF_UNIX
        throw IOError(operation: "connect", errno: errno, fd: fd, path: address.description,
                      detail: backlogFull ? "the listener's backlog is full (it accepts more slowly than clients connect); try again later" : nil)
    }
}

/// The file a Unix-domain listener made, remembered by inode so that closing
/// the listener removes it only if it is still this listener's socket (and
/// never a socket another listener has bound since at the same path).
final class UnixSocketFile: @unchecked Sendable {
    let path: String
    private let device: UInt64
    private let inode: UInt64

    init(path: String) {
        self.path = path
        var status = stat()
        if lstat(path, &status) == 0 {
            device = UInt64(status.st_dev)
            inode = UInt64(status.st_ino)
        } else {
            device = 0
            inode = 0
        }
    }

    /// Unlinks the file if it is still the socket this listener bound.
    func remove() {
        var status = stat()
        guard inode != 0, lstat(path, &status) == 0, UInt64(status.st_dev) == device, UInt64(status.st_ino) == inode,
              status.st_mode & S_IFMT == S_IFSOCK else { return }
        unlink(path)
    }

    /// Removes what is at `path` before binding, if it is a socket. Any
    /// other kind of file is an error and stays.
    static func removeStale(at path: String) throws(IOError) {
        var status = stat()
        guard lstat(path, &status) == 0 else { return }
        guard status.st_mode & S_IFMT == S_IFSOCK else {
            throw IOError(operation: "bind", errno: Errno(EADDRINUSE), path: path,
                          detail: "removeExisting only replaces a socket file; this path is another kind of file")
        }
        unlink(path)
    }
}

/// Which direction ``SocketStream/shutdown(_:)`` closes.
public enum ShutdownDirection: Sendable {
    case read, write, both
    var how: Int32 {
        switch self {
        case .read: Int32(SHUT_RD)
        case .write: Int32(SHUT_WR)
        case .both: Int32(SHUT_RDWR)
        }
    }
}

/// The name of a getaddrinfo(3) result, as errors name an errno: the code
/// says more to a search engine than the message in the reader's locale.
func resolverErrorName(_ code: Int32) -> String {
    switch code {
    case EAI_NONAME: "EAI_NONAME"
    case EAI_AGAIN: "EAI_AGAIN"
    case EAI_FAIL: "EAI_FAIL"
    case EAI_FAMILY: "EAI_FAMILY"
    case EAI_SOCKTYPE: "EAI_SOCKTYPE"
    case EAI_SERVICE: "EAI_SERVICE"
    case EAI_MEMORY: "EAI_MEMORY"
    case EAI_SYSTEM: "EAI_SYSTEM"
    case EAI_BADFLAGS: "EAI_BADFLAGS"
    case EAI_OVERFLOW: "EAI_OVERFLOW"
    default: "EAI \(code)"
    }
}
