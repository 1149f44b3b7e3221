import Glibc

/// A connected stream socket, TCP or Unix-domain.
///
/// ```swift
/// let stream = try await SocketStream.connect(host: "example.com", port: 80)
/// try await stream.writeAll(Array("GET / HTTP/1.0\r\n\r\n".utf8))
/// let reply = try await stream.read(upTo: 4096)   // [] at end of stream
/// try await stream.close()
/// ```
///
/// Every method must be called from a task on the loop the stream belongs to.
/// Sends use `MSG_NOSIGNAL`: a peer that went away is an ``IOError``
/// (`.brokenPipe`), never a SIGPIPE.
public final class SocketStream: @unchecked Sendable {
    let descriptor: Descriptor
    /// The peer's address.
    public let remoteAddress: SocketAddress?

    init(fd: Int32, remote: SocketAddress?, loop: EventLoop) {
        descriptor = Descriptor(fd: fd, loop: loop, label: remote?.description)
        remoteAddress = remote
    }

    /// The raw descriptor, or -1 after ``close()``.
    public var fileDescriptor: Int32 { descriptor.fd }

    /// This end's address.
    public var localAddress: SocketAddress? { Sockets.localAddress(descriptor.fd) }

    // MARK: Connecting

    /// Resolves `host` (on the thread pool, unless it is a numeric address)
    /// and connects to the first address that accepts, TCP_NODELAY on.
    ///
    /// - Throws: ``IOError`` (`.connectionRefused`, `.nameResolution`, …);
    ///   wrap in ``withTimeout(_:_:)`` to bound the wait.
    public static func connect(host: String, port: Int) async throws -> SocketStream {
        let loop = try EventLoop.running()
        var lastError: (any Error)?
        for address in try await Sockets.resolve(host: host, port: port, type: Int32(SOCK_STREAM.rawValue), loop: loop) {
            do {
                return try await connect(to: address)
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                lastError = error
            }
        }
        throw lastError ?? IOError(operation: "connect", errno: Errno(EHOSTUNREACH), path: host)
    }

    /// Connects a Unix-domain stream socket.
    public static func connect(unixPath: String) async throws -> SocketStream {
        try await connect(to: SocketAddress(unixPath: unixPath))
    }

    /// Connects to `address` (`IORING_OP_CONNECT`, or a non-blocking connect
    /// finished on writability under epoll).
    public static func connect(to address: SocketAddress) async throws -> SocketStream {
        let loop = try EventLoop.running()
        let fd = try Sockets.make(address.family, Int32(SOCK_STREAM.rawValue), label: address.description)
        let stream = SocketStream(fd: fd, remote: address, loop: loop)
        do {
            _ = try await stream.descriptor.perform("connect", keepAlive: nil, { fd, scratch in
                let length = address.write(to: scratch.address)
                return .connect(fd: fd, address: scratch.socketAddress, length: length)
            }, extract: { _, result in result })
            if address.family != AF_UNIX { try? stream.setNoDelay(true) }
            return stream
        } catch {
            try? await stream.close()
            throw error
        }
    }

    // MARK: Reading

    /// Receives up to `buffer.capacity` bytes into the start of `buffer`; sets
    /// `buffer.count` and returns it. 0 means the peer closed its side (EOF).
    ///
    /// With `timeout`, the receive carries its own deadline (an
    /// `IORING_OP_LINK_TIMEOUT` linked to the recv on io_uring): if no data
    /// comes in time it throws ``IOError`` with code `.timedOut`, and the
    /// stream stays usable; data that arrives later goes to the next read.
    public func read(into buffer: IOBuffer, timeout: Duration? = nil) async throws -> Int {
        let count = UInt32(clamping: buffer.capacity)
        let n = try await descriptor.perform("recv", keepAlive: buffer, timeout: timeout) { fd, _ in
            .recv(fd: fd, buffer: buffer.base, count: count, flags: 0)
        }
        buffer.count = n
        return n
    }

    /// Receives up to `maxBytes` bytes; `[]` at end of stream.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) when `maxBytes` is not positive.
    public func read(upTo maxBytes: Int) async throws -> [UInt8] {
        guard maxBytes > 0 else {
            throw IOError(operation: "read", errno: Errno(EINVAL), path: descriptor.label,
                          detail: "maxBytes must be positive, got \(maxBytes)")
        }
        let buffer = try IOBuffer(capacity: maxBytes)
        _ = try await read(into: buffer)
        return buffer.bytes
    }

    /// Reads until the peer closes its side, or `limit` bytes.
    public func readToEnd(limit: Int = .max, chunkSize: Int = 64 * 1024) async throws -> [UInt8] {
        let buffer = try IOBuffer(capacity: Swift.max(1, Swift.min(chunkSize, limit)))
        var result: [UInt8] = []
        while result.count < limit {
            let n = try await read(into: buffer)
            if n == 0 { break }
            buffer.withUnsafeBytes { result.append(contentsOf: $0.prefix(limit - result.count)) }
        }
        return result
    }

    // MARK: Writing

    /// Sends `buffer`'s valid bytes once; returns how many went (possibly fewer).
    public func write(_ buffer: IOBuffer) async throws -> Int {
        try await send(buffer, from: 0)
    }

    private func send(_ buffer: IOBuffer, from start: Int) async throws -> Int {
        try await descriptor.send(buffer.base + start, count: buffer.count - start, flags: Int32(MSG_NOSIGNAL), keepAlive: buffer)
    }

    /// Sends all of `buffer`'s valid bytes, looping over short sends.
    public func writeAll(_ buffer: IOBuffer) async throws {
        var sent = 0
        while sent < buffer.count {
            sent += try await send(buffer, from: sent)
        }
    }

    /// Sends all of `bytes` (copied into an ``IOBuffer``).
    public func writeAll(_ bytes: some Collection<UInt8>) async throws {
        try await writeAll(IOBuffer(bytes))
    }

    // MARK: Closing and options

    /// Shuts down one or both directions; `.write` sends EOF to the peer
    /// while this side can still read.
    public func shutdown(_ direction: ShutdownDirection) async throws {
        _ = try await descriptor.perform("shutdown") { fd, _ in .shutdown(fd: fd, how: direction.how) }
    }

    /// Cancels operations still in flight, waits for them, and closes. Idempotent.
    public func close() async throws {
        try await descriptor.close()
    }

    /// `TCP_NODELAY`: send small writes at once instead of coalescing them.
    public func setNoDelay(_ on: Bool) throws(IOError) {
        try descriptor.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY")
    }

    /// Whether `TCP_NODELAY` is on.
    public var noDelay: Bool {
        get throws(IOError) { try descriptor.option(Int32(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY") != 0 }
    }

    /// `SO_KEEPALIVE`.
    public func setKeepAlive(_ on: Bool) throws(IOError) {
        try descriptor.setOption(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE")
    }

    /// `SO_LINGER`: with `seconds` 0, ``close()`` resets the connection (RST)
    /// instead of a graceful FIN; `nil` restores the default.
    public func setLinger(seconds: Int32?) throws(IOError) {
        guard descriptor.fd >= 0 else { throw descriptor.closedError("setsockopt(SO_LINGER)") }
        var value = linger(l_onoff: seconds == nil ? 0 : 1, l_linger: seconds ?? 0)
        if setsockopt(descriptor.fd, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size)) != 0 {
            throw IOError(operation: "setsockopt(SO_LINGER)", errno: .current, fd: descriptor.fd, path: descriptor.label)
        }
    }

    /// Any integer socket option, for what has no method here.
    public func setOption(level: Int32, name: Int32, value: Int32) throws(IOError) {
        try descriptor.setOption(level, name, value, "level \(level) option \(name)")
    }
}
