import Glibc

/// An IPv4, IPv6 or Unix-domain socket address.
///
/// ```swift
/// let a = try SocketAddress(ip: "127.0.0.1", port: 8080)
/// let b = try SocketAddress(ip: "::1", port: 8080)
/// let c = try SocketAddress(unixPath: "/tmp/app.sock")
/// print(a, b, c)   // 127.0.0.1:8080 [::1]:8080 unix:/tmp/app.sock
/// ```
public enum SocketAddress: Sendable, Hashable, CustomStringConvertible {
    case ipv4(host: String, port: Int)
    case ipv6(host: String, port: Int, scopeID: UInt32 = 0)
    case unix(path: String)

    /// The addresses `host` names, each with `port`: asyncio's
    /// `loop.getaddrinfo`. A numeric address comes back as it is; a name is
    /// looked up with `getaddrinfo` on the loop's thread pool, so a slow DNS
    /// server never stalls the loop. IPv4 and IPv6 answers come in the
    /// resolver's order, without duplicates.
    ///
    /// ```swift
    /// let collector = try await SocketAddress.resolve(host: "localhost", port: 8125)[0]
    /// try await socket.send(IOBuffer(Array("hits:1|c".utf8)), to: collector)
    /// ```
    ///
    /// - Throws: ``IOError`` (`.nameResolution`) naming the host when it does
    ///   not resolve, `.invalidArgument` for a port outside 0...65535 or an
    ///   empty host.
    public static nonisolated(nonsending) func resolve(host: String, port: Int) async throws -> [SocketAddress] {
        try await Sockets.resolve(host: host, port: port, loop: EventLoop.running())
    }

    /// Parses a numeric IPv4 or IPv6 address. Host names are resolved by
    /// ``resolve(host:port:)`` or ``SocketStream/connect(host:port:)`` instead. An IPv6 address may name
    /// its zone, as link-local addresses need: `fe80::1%eth0` (or `%2`, the
    /// interface's index).
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for anything that is not a
    ///   numeric address or a port outside 0...65535.
    public init(ip: String, port: Int) throws(IOError) {
        try Self.rejectNUL(ip, "host")
        guard (0...65535).contains(port) else {
            throw IOError(operation: "SocketAddress", errno: Errno(EINVAL), path: ip, detail: "port \(port) is outside 0...65535")
        }
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, ip, &v4) == 1 {
            self = .ipv4(host: ip, port: port)
        } else if inet_pton(AF_INET6, ip, &v6) == 1 {
            self = .ipv6(host: ip, port: port)
        } else if let percent = ip.firstIndex(of: "%"), inet_pton(AF_INET6, String(ip[..<percent]), &v6) == 1 {
            let zone = String(ip[ip.index(after: percent)...])
            let index = UInt32(zone) ?? if_nametoindex(zone)
            guard index != 0 else {
                throw IOError(operation: "SocketAddress", errno: Errno(EINVAL), path: ip, detail: "no network interface \"\(zone)\"")
            }
            self = .ipv6(host: String(ip[..<percent]), port: port, scopeID: index)
        } else {
            throw IOError(operation: "SocketAddress", errno: Errno(EINVAL), path: ip, detail: "not a numeric IPv4 or IPv6 address")
        }
    }

    /// A Unix-domain address.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for an empty path or one longer
    ///   than `sun_path` (107 bytes).
    public init(unixPath: String) throws(IOError) {
        self = .unix(path: unixPath)
        try validate()
    }

    /// Checks an address built directly from its cases, before it reaches a
    /// system call: the port must be in 0...65535, an IP host numeric, a path
    /// 1...107 bytes without NUL bytes.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) naming what is wrong.
    public func validate() throws(IOError) {
        switch self {
        case .ipv4(let host, let port), .ipv6(let host, let port, _):
            guard (0...65535).contains(port) else {
                throw IOError(operation: "SocketAddress", errno: Errno(EINVAL), path: host, detail: "port \(port) is outside 0...65535")
            }
            try Self.rejectNUL(host, "host")
            var v4 = in_addr(), v6 = in6_addr()
            let numeric = family == AF_INET ? inet_pton(AF_INET, host, &v4) == 1 : inet_pton(AF_INET6, host, &v6) == 1
            guard numeric else {
                throw IOError(operation: "SocketAddress", errno: Errno(EINVAL), path: host,
                              detail: "not a numeric \(family == AF_INET ? "IPv4" : "IPv6") address (names are resolved by connect(host:port:) and bind(host:port:))")
            }
        case .unix(let path):
            let limit = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1
            guard !path.isEmpty, path.utf8.count <= limit else {
                throw IOError(operation: "SocketAddress", errno: Errno(EINVAL), path: path,
                              detail: "a Unix socket path must be 1...\(limit) bytes")
            }
            try Self.rejectNUL(path, "path")
        }
    }

    /// Throws if `text` holds a NUL byte, which C would take for its end.
    static func rejectNUL(_ text: String, _ what: String, operation: String = "SocketAddress") throws(IOError) {
        if text.utf8.contains(0) {
            throw IOError(operation: operation, errno: Errno(EINVAL), path: text.replacingNUL,
                          detail: "the \(what) contains a NUL byte, which would cut it short")
        }
    }

    /// The port, for IP addresses.
    public var port: Int? {
        switch self {
        case .ipv4(_, let port), .ipv6(_, let port, _): port
        case .unix: nil
        }
    }

    /// The same address on another port (IP addresses; a Unix path has none).
    func withPort(_ port: Int) -> SocketAddress {
        switch self {
        case .ipv4(let host, _): .ipv4(host: host, port: port)
        case .ipv6(let host, _, let scope): .ipv6(host: host, port: port, scopeID: scope)
        case .unix: self
        }
    }

    var family: Int32 {
        switch self {
        case .ipv4: AF_INET
        case .ipv6: AF_INET6
        case .unix: AF_UNIX
        }
    }

    /// The family's name, for errors that compare two addresses.
    var familyName: String {
        switch self {
        case .ipv4: "IPv4"
        case .ipv6: "IPv6"
        case .unix: "Unix-domain"
        }
    }

    public var description: String {
        switch self {
        case .ipv4(let host, let port): "\(host):\(port)"
        case .ipv6(let host, let port, let scope) where scope != 0: "[\(host)%\(Self.interfaceName(scope))]:\(port)"
        case .ipv6(let host, let port, _): "[\(host)]:\(port)"
        case .unix(let path): "unix:\(path)"
        }
    }

    /// An IPv6 zone's interface name, or its index where it has none.
    private static func interfaceName(_ index: UInt32) -> String {
        var name = [CChar](repeating: 0, count: Int(IF_NAMESIZE))
        guard if_indextoname(index, &name) != nil else { return String(index) }
        return String(decoding: name.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Calls `body` with the C form of the address and its length: for a
    /// raw socket call (`bind`, `connect`) made at once.
    func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        var storage = sockaddr_storage()
        let length = write(to: &storage)
        return withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) } }
    }

    /// Writes the C form into `storage`; returns its length.
    func write(to storage: UnsafeMutablePointer<sockaddr_storage>) -> socklen_t {
        storage.pointee = sockaddr_storage()
        switch self {
        case .ipv4(let host, let port):
            return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { sin in
                sin.pointee.sin_family = sa_family_t(AF_INET)
                sin.pointee.sin_port = in_port_t(UInt16(port).bigEndian)
                _ = inet_pton(AF_INET, host, &sin.pointee.sin_addr)
                return socklen_t(MemoryLayout<sockaddr_in>.size)
            }
        case .ipv6(let host, let port, let scope):
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { sin6 in
                sin6.pointee.sin6_family = sa_family_t(AF_INET6)
                sin6.pointee.sin6_port = in_port_t(UInt16(port).bigEndian)
                sin6.pointee.sin6_scope_id = scope
                _ = inet_pton(AF_INET6, host, &sin6.pointee.sin6_addr)
                return socklen_t(MemoryLayout<sockaddr_in6>.size)
            }
        case .unix(let path):
            return storage.withMemoryRebound(to: sockaddr_un.self, capacity: 1) { sun in
                sun.pointee.sun_family = sa_family_t(AF_UNIX)
                withUnsafeMutableBytes(of: &sun.pointee.sun_path) { raw in
                    let bytes = Array(path.utf8.prefix(raw.count - 1))
                    raw.copyBytes(from: bytes)
                    raw[bytes.count] = 0
                }
                return socklen_t(MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)! + path.utf8.count + 1)
            }
        }
    }

    /// Reads a C socket address; `nil` for families RingLoop does not speak.
    init?(_ storage: UnsafePointer<sockaddr_storage>, length: socklen_t) {
        switch Int32(storage.pointee.ss_family) {
        case AF_INET:
            let sin = UnsafeRawPointer(storage).load(as: sockaddr_in.self)
            var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
            var addr = sin.sin_addr
            inet_ntop(AF_INET, &addr, &text, socklen_t(text.count))
            self = .ipv4(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                         port: Int(UInt16(bigEndian: sin.sin_port)))
        case AF_INET6:
            let sin6 = UnsafeRawPointer(storage).load(as: sockaddr_in6.self)
            var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            var addr = sin6.sin6_addr
            inet_ntop(AF_INET6, &addr, &text, socklen_t(text.count))
            self = .ipv6(host: String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self),
                         port: Int(UInt16(bigEndian: sin6.sin6_port)), scopeID: sin6.sin6_scope_id)
        case AF_UNIX:
            let offset = MemoryLayout<sockaddr_un>.offset(of: \sockaddr_un.sun_path)!
            let raw = UnsafeRawPointer(storage) + offset
            let maxLength = Swift.max(0, Int(length) - offset)
            let bytes = UnsafeRawBufferPointer(start: raw, count: maxLength).prefix { $0 != 0 }
            self = .unix(path: String(decoding: bytes, as: UTF8.self))
        default:
            return nil
        }
    }
}

extension String {
    /// For error messages: NUL bytes shown as `\0`.
    var replacingNUL: String {
        String(decoding: utf8.flatMap { $0 == 0 ? Array("\\0".utf8) : [$0] }, as: UTF8.self)
    }
}
