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
        var storage = sockaddr_storage()
        let length = address.write(to: &storage)
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, length) }
        }
        guard rc == 0 else { throw IOError(operation: "bind", errno: .current, fd: fd, path: address.description) }
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
    static func resolve(host: String, port: Int, type: Int32, loop: EventLoop) async throws -> [SocketAddress] {
        if let numeric = try? SocketAddress(ip: host, port: port) { return [numeric] }
        guard (0...65535).contains(port) else {
            throw IOError(operation: "getaddrinfo", errno: Errno(EINVAL), path: host, detail: "port \(port) is outside 0...65535")
        }
        let addresses: Result<[SocketAddress], IOError> = try await loop.offload {
            var hints = addrinfo()
            hints.ai_socktype = type
            hints.ai_family = AF_UNSPEC
            var list: UnsafeMutablePointer<addrinfo>?
            let rc = getaddrinfo(host, String(port), &hints, &list)
            guard rc == 0, let list else {
                return .failure(IOError(operation: "getaddrinfo", errno: nil, path: host,
                                        detail: String(cString: gai_strerror(rc))))
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
