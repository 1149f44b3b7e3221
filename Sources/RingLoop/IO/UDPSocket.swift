import CUring
import Glibc

/// A UDP socket bound to a local address.
///
/// ```swift
/// let socket = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
/// try await socket.send(IOBuffer(Array("ping".utf8)), to: peer)
/// let buffer = try IOBuffer(capacity: 1500)
/// let from = try await socket.receive(into: buffer)
/// ```
public final class UDPSocket: @unchecked Sendable {
    let descriptor: Descriptor
    /// The bound address (with the real port when bound to port 0).
    public let localAddress: SocketAddress
    /// The peer of a socket made with ``connect(host:port:allowBroadcast:)``;
    /// nil for one made with ``bind(host:port:reuseAddress:allowBroadcast:)``.
    public let remoteAddress: SocketAddress?

    private init(fd: Int32, address: SocketAddress, remote: SocketAddress? = nil, loop: EventLoop) {
        descriptor = Descriptor(fd: fd, loop: loop, label: remote?.description ?? address.description)
        localAddress = address
        remoteAddress = remote
    }

    /// The raw descriptor, or -1 after ``close()``.
    public var fileDescriptor: Int32 { descriptor.fd }

    /// Binds a UDP socket to `host:port` (port 0 picks a free port).
    ///
    /// `allowBroadcast` sets `SO_BROADCAST`, as asyncio's
    /// `allow_broadcast=True` does: without it the kernel refuses a send to a
    /// broadcast address with `.permissionDenied`. A receiver of broadcasts
    /// binds to `"0.0.0.0"`, since they are not addressed to its own address.
    ///
    /// ```swift
    /// let socket = try await UDPSocket.bind(host: "0.0.0.0", port: 0, allowBroadcast: true)
    /// try await socket.send(IOBuffer(Array("who is there?".utf8)),
    ///                       to: try SocketAddress(ip: "255.255.255.255", port: 9999))
    /// ```
    ///
    /// - Throws: ``IOError``: `.addressInUse` once the port has stayed taken
    ///   for 200 ms (a process on io_uring that was just killed can hold it a
    ///   few milliseconds longer), `.nameResolution` for a host that does not resolve.
    public static nonisolated(nonsending) func bind(
        host: String, port: Int, reuseAddress: Bool = false, allowBroadcast: Bool = false
    ) async throws -> UDPSocket {
        let loop = try EventLoop.running()
        let address = try await Sockets.resolve(host: host, port: port, type: Int32(SOCK_DGRAM.rawValue), loop: loop)[0]
        let fd = try await Sockets.retryingAddressInUse(loop: loop) { () throws(IOError) -> Int32 in
            try Sockets.bound(address, type: Int32(SOCK_DGRAM.rawValue)) { (fd: Int32) throws(IOError) in
                if reuseAddress { try Sockets.setFlag(fd, SOL_SOCKET, SO_REUSEADDR, "SO_REUSEADDR", address: address) }
                if allowBroadcast { try Sockets.setFlag(fd, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST", address: address) }
            }
        }
        return UDPSocket(fd: fd, address: Sockets.localAddress(fd) ?? address, loop: loop)
    }

    /// A UDP socket connected to `host:port`: asyncio's
    /// `create_datagram_endpoint(remote_addr=…)`. It sends with ``send(_:)``
    /// (no address) and receives only the peer's datagrams, and the kernel
    /// reports what ICMP says about the peer: a datagram to a port where
    /// nothing listens makes the next receive (or send) throw
    /// `.connectionRefused`, where an unconnected socket would wait forever.
    ///
    /// ```swift
    /// let socket = try await UDPSocket.connect(host: "127.0.0.1", port: 8125)   // a statsd client
    /// try await socket.send(IOBuffer(Array("requests:1|c".utf8)))
    /// ```
    ///
    /// No packet is sent by connecting: it picks a local address and port
    /// and remembers the peer, so it completes at once.
    ///
    /// - Throws: ``IOError``: `.nameResolution` for a host that does not
    ///   resolve, or the `connect` error naming the peer (`.permissionDenied`
    ///   for a broadcast address without `allowBroadcast`).
    public static nonisolated(nonsending) func connect(host: String, port: Int, allowBroadcast: Bool = false) async throws -> UDPSocket {
        let loop = try EventLoop.running()
        let peer = try await Sockets.resolve(host: host, port: port, type: Int32(SOCK_DGRAM.rawValue), loop: loop)[0]
        return try connecting(to: peer, allowBroadcast: allowBroadcast, loop: loop)
    }

    /// ``connect(host:port:allowBroadcast:)`` to an address already known,
    /// one from ``SocketAddress/resolve(host:port:)`` say.
    ///
    /// ```swift
    /// let socket = try await UDPSocket.connect(to: try SocketAddress(ip: "::1", port: 8125))
    /// ```
    public static nonisolated(nonsending) func connect(to peer: SocketAddress, allowBroadcast: Bool = false) async throws -> UDPSocket {
        try connecting(to: peer, allowBroadcast: allowBroadcast, loop: EventLoop.running())
    }

    /// The connected socket; its descriptor is closed again if setting it up fails.
    private static func connecting(to peer: SocketAddress, allowBroadcast: Bool, loop: EventLoop) throws -> UDPSocket {
        let fd = try Sockets.connectedDatagram(to: peer) { (fd: Int32) throws(IOError) in
            if allowBroadcast { try Sockets.setFlag(fd, SOL_SOCKET, SO_BROADCAST, "SO_BROADCAST", address: peer) }
        }
        return UDPSocket(fd: fd, address: Sockets.localAddress(fd) ?? peer, remote: peer, loop: loop)
    }

    /// Sends `buffer`'s valid bytes as one datagram to `address` (`sendmsg`).
    ///
    /// - Throws: ``IOError`` naming the destination (`EMSGSIZE` for more than
    ///   a datagram holds, `EAFNOSUPPORT` for an address of a family this
    ///   socket cannot reach: a Unix-domain path, or IPv6 from an IPv4 socket;
    ///   an IPv6 socket reaches IPv4 addresses unless the system makes it IPv6-only).
    @discardableResult
    public nonisolated(nonsending) func send(_ buffer: IOBuffer, to address: SocketAddress) async throws -> Int {
        try address.validate()
        // Checked here: the kernel answers a Unix-domain destination with a
        // bare EINVAL.
        if address.family != localAddress.family, !(address.family == AF_INET && localAddress.family == AF_INET6) {
            throw IOError(operation: "sendmsg", errno: Errno(EAFNOSUPPORT), fd: descriptor.fd, path: address.description,
                          detail: "the destination is \(address.familyName), the socket \(localAddress.familyName) (bound to \(localAddress)); "
                              + "bind a socket to an address of the destination's family")
        }
        do {
            return try await sendMessage(buffer, to: address)
        } catch var error as IOError {
            // The destination says more about a failed send than this
            // socket's own address, which the descriptor's label holds.
            error.path = address.description
            error.detail = (error.detail.map { "\($0); " } ?? "") + "sent from \(localAddress)"
            if error.errno?.rawValue == EACCES {
                error.detail = (error.detail ?? "") + "; to send to a broadcast address, bind with UDPSocket.bind(…, allowBroadcast: true)"
            }
            throw error
        }
    }

    /// Sends `buffer`'s valid bytes as one datagram to the peer of a socket
    /// made with ``connect(host:port:allowBroadcast:)``.
    ///
    /// - Throws: ``IOError`` naming the peer: `.connectionRefused` when an
    ///   earlier datagram found no listener there (ICMP port unreachable),
    ///   `EMSGSIZE` for more than a datagram holds, and `EDESTADDRREQ` on a
    ///   socket that is not connected (use ``send(_:to:)`` there).
    @discardableResult
    public nonisolated(nonsending) func send(_ buffer: IOBuffer) async throws -> Int {
        guard let remoteAddress else {
            throw IOError(operation: "sendmsg", errno: Errno(EDESTADDRREQ), fd: descriptor.fd, path: localAddress.description,
                          detail: "this socket is not connected: make it with UDPSocket.connect(host:port:), or use send(_:to:)")
        }
        do {
            return try await sendMessage(buffer, to: nil)
        } catch var error as IOError {
            error.path = remoteAddress.description
            throw error
        }
    }

    private nonisolated(nonsending) func sendMessage(_ buffer: IOBuffer, to address: SocketAddress?) async throws -> Int {
        try await retryingLostRace { try await sendMessageOnce(buffer, to: address) }
    }

    /// Runs `operation` again while io_uring completes it with EAGAIN. Two
    /// operations waiting on one socket can be woken by one datagram (or by
    /// room for one), and the kernel's retry of the one that found nothing
    /// can complete it with EAGAIN (the socket is `O_NONBLOCK`, which a
    /// retry punted to io_uring's worker threads honours): measured, the
    /// second of two receivers failed so after one datagram, every run.
    /// Submitted again, it waits for the next, as a wait for readiness does
    /// on epoll, where EAGAIN never reaches this far.
    private nonisolated(nonsending) func retryingLostRace<R>(_ operation: nonisolated(nonsending) () async throws -> R) async throws -> R {
        while true {
            do {
                return try await operation()
            } catch let error as IOError where error.errno?.rawValue == EAGAIN {
                continue
            }
        }
    }

    /// One `sendmsg`; `address` nil sends to the connected peer.
    private nonisolated(nonsending) func sendMessageOnce(_ buffer: IOBuffer, to address: SocketAddress?) async throws -> Int {
        try await descriptor.perform("sendmsg", keepAlive: buffer) { fd, scratch in
            scratch.iov.pointee = iovec(iov_base: buffer.base, iov_len: buffer.count)
            var message = msghdr()
            if let address {
                message.msg_namelen = address.write(to: scratch.address)
                message.msg_name = UnsafeMutableRawPointer(scratch.address)
            }
            message.msg_iov = scratch.iov
            message.msg_iovlen = 1
            scratch.message.pointee = message
            return .sendmsg(fd: fd, message: scratch.message, flags: UInt32(MSG_NOSIGNAL))
        }
    }

    /// Receives one datagram into `buffer` (truncated to its capacity); sets
    /// `buffer.count` and returns the sender's address (`recvmsg`).
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for a buffer of zero
    ///   capacity; ``IOError`` with `EMSGSIZE` when the datagram was larger
    ///   than the buffer (its first `buffer.capacity` bytes are in `buffer`,
    ///   the rest is lost, as UDP does): a truncation is never silent.
    public nonisolated(nonsending) func receive(into buffer: IOBuffer) async throws -> SocketAddress {
        guard buffer.capacity > 0 else {
            throw IOError(operation: "recvmsg", errno: Errno(EINVAL), fd: descriptor.fd, path: descriptor.label,
                          detail: "the buffer has no capacity")
        }
        let (count, sender, truncated) = try await retryingLostRace { try await receiveOnce(into: buffer) }
        buffer.count = Int(count)
        if truncated {
            throw IOError(operation: "recvmsg", errno: Errno(EMSGSIZE), fd: descriptor.fd, path: sender?.description ?? descriptor.label,
                          detail: "the datagram was larger than the \(buffer.capacity)-byte buffer and was truncated")
        }
        guard let sender else {
            throw IOError(operation: "recvmsg", errno: Errno(EAFNOSUPPORT), fd: descriptor.fd, path: descriptor.label,
                          detail: "datagram from an address family RingLoop does not represent")
        }
        return sender
    }

    /// One `recvmsg`: the byte count, the sender and whether it was truncated.
    private nonisolated(nonsending) func receiveOnce(into buffer: IOBuffer) async throws -> (Int32, SocketAddress?, Bool) {
        try await descriptor.perform("recvmsg", keepAlive: buffer, { fd, scratch in
            scratch.iov.pointee = iovec(iov_base: buffer.base, iov_len: buffer.capacity)
            var message = msghdr()
            message.msg_name = UnsafeMutableRawPointer(scratch.address)
            message.msg_namelen = socklen_t(MemoryLayout<sockaddr_storage>.size)
            message.msg_iov = scratch.iov
            message.msg_iovlen = 1
            scratch.message.pointee = message
            return .recvmsg(fd: fd, message: scratch.message, flags: 0)
        }, extract: { scratch, result -> (Int32, SocketAddress?, Bool) in
            (result, result >= 0 ? SocketAddress(scratch.address, length: scratch.message.pointee.msg_namelen) : nil,
             scratch.message.pointee.msg_flags & Int32(MSG_TRUNC) != 0)
        })
    }

    /// Cancels operations in flight, waits for them, and closes. Idempotent.
    public nonisolated(nonsending) func close() async throws {
        try await descriptor.close()
    }
}
