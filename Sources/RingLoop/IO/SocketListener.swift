import CUring
import DequeModule
import Glibc

/// A listening stream socket, TCP (IPv4 or IPv6) or Unix-domain, handing out
/// connections as ``SocketStream``s.
///
/// ```swift
/// let listener = try await SocketListener.bind(host: "127.0.0.1", port: 8080)
/// for try await connection in listener.connections {
///     loop.spawn { try await handle(connection) }
/// }
/// ```
///
/// The listener accepts continuously (multishot accept on io_uring,
/// accept-until-EAGAIN on epoll) into a queue that ``accept()`` and
/// ``connections`` take from, so a burst of connections is taken from the
/// kernel at once, however busy the loop. Accept errors never end the
/// sequence: transient ones are retried, and running out of descriptors backs
/// off and recovers by itself (see `Docs/Reliability.md`).
///
/// Accepted streams are non-blocking, close-on-exec, and have TCP_NODELAY on
/// (from the listening socket, which every accepted socket inherits).
public final class SocketListener: @unchecked Sendable {
    /// The bound address (with the real port when bound to port 0).
    public let localAddress: SocketAddress
    let loop: EventLoop
    private let acceptor: Acceptor
    private let unixSocket: UnixSocketFile?
    private(set) var pending = Deque<Int32>()
    /// The task in ``accept()`` (one at a time), woken to look again.
    private let acceptWaiters: Waiters<Void>
    private var closeWaiters: [UnsafeContinuation<Void, Never>] = []
    private var closed = false

    /// Accepted connections queued before accepting pauses (the kernel's
    /// backlog holds the rest until the queue is taken from).
    static let pendingLimit = 4096

    init(fd: Int32, address: SocketAddress, loop: EventLoop, unixSocket: UnixSocketFile?) {
        localAddress = address
        self.loop = loop
        self.unixSocket = unixSocket
        acceptWaiters = Waiters(loop: loop)
        acceptor = Acceptor(fd: fd, loop: loop, label: address.description)
        // Weak: the acceptor lives in the loop's handler table and may outlive
        // a listener that was dropped without close().
        acceptor.onAccepted = { [weak self] fd in
            if let self { accepted(fd) } else { Glibc.close(fd) }
        }
        acceptor.onClosed = { [weak self] in self?.listenerClosed() }
        acceptor.start()
    }

    /// A listener dropped without ``close()`` stops listening: its socket and
    /// the connections accepted but never taken are closed.
    deinit {
        let acceptor = self.acceptor
        let pending = self.pending
        let unixSocket = self.unixSocket
        acceptor.onClosed = nil
        let queued = loop.onLoopThread {
            acceptor.close()
            for fd in pending { Glibc.close(fd) }
            unixSocket?.remove()
        }
        if !queued { for fd in pending { Glibc.close(fd) } }
    }

    /// The raw descriptor, or -1 after ``close()``.
    public var fileDescriptor: Int32 { acceptor.fd }

    /// Binds and listens on `host:port` (port 0 picks a free port; see
    /// ``localAddress``). `host` may be a numeric IPv4/IPv6 address or a name.
    ///
    /// One socket, on one address: a name that resolves to several (an
    /// `/etc/hosts` with both `127.0.0.1` and `::1 localhost`) binds the first,
    /// as SwiftNIO's `bind(host:port:)` does; ``EventLoop/serve(host:port:backlog:reusePort:_:)``
    /// and `createServer` listen on every one. An IPv6 address listens for IPv6
    /// only (`IPV6_V6ONLY`, as asyncio and nginx set it), so `::` takes no IPv4
    /// connections: use `0.0.0.0` for IPv4, or a listener for each family.
    ///
    /// - Parameters:
    ///   - backlog: the accept queue length (`listen(2)`).
    ///   - reuseAddress: `SO_REUSEADDR`, on by default as servers expect.
    ///   - reusePort: `SO_REUSEPORT`, for one listener per loop (thread per core).
    /// - Throws: ``IOError`` (`.addressInUse`, `.permissionDenied`, …);
    ///   the port must stay taken for 200 ms to be `.addressInUse`: a process
    ///   on io_uring that was just killed can hold it a few milliseconds longer.
    public nonisolated(nonsending) static func bind(host: String, port: Int, backlog: Int32 = 511,
                                                   reuseAddress: Bool = true, reusePort: Bool = false) async throws -> SocketListener {
        let loop = try EventLoop.running()
        let (fd, address) = try await Sockets.listen(host: host, port: port, backlog: backlog, reuseAddress: reuseAddress,
                                                     reusePort: reusePort, loop: loop)
        return SocketListener(fd: fd, address: address, loop: loop, unixSocket: nil)
    }

    /// Binds and listens on a Unix-domain socket path. A file already at
    /// `path` is an error (`.addressInUse`) unless `removeExisting`, which
    /// replaces a socket file and nothing else.
    public nonisolated(nonsending) static func bind(unixPath path: String, backlog: Int32 = 511,
                                                   removeExisting: Bool = false) async throws -> SocketListener {
        let loop = try EventLoop.running()
        try loop.requireLoopThread("bind")
        let (fd, address, file) = try Sockets.listen(unixPath: path, backlog: backlog, removeExisting: removeExisting)
        return SocketListener(fd: fd, address: address, loop: loop, unixSocket: file)
    }

    private func accepted(_ fd: Int32) {
        pending.append(fd)
        if pending.count >= Self.pendingLimit { acceptor.pause() }
        acceptWaiters.resumeAll(())
    }

    /// Waits for the next connection.
    ///
    /// - Throws: ``IOError`` (`.closed`) once the listener is closed;
    ///   `CancellationError` (the connection, if one arrives, stays queued).
    public nonisolated(nonsending) func accept() async throws -> SocketStream {
        try loop.requireLoopThread("accept")
        while pending.isEmpty {
            if closed || acceptor.isClosed {
                throw IOError(operation: "accept", errno: Errno(EBADF), path: localAddress.description, detail: IOError.closedDetail)
            }
            try Task.checkCancellation()
            if !acceptWaiters.isEmpty {
                throw IOError(operation: "accept", errno: Errno(EBUSY), path: localAddress.description,
                              detail: "another task is already accepting on this listener; use one (or its connections sequence)")
            }
            // Woken by a connection, the close, or cancellation; the loop
            // looks again at which.
            await acceptWaiters.wait(cancelled: ())
        }
        let fd = pending.removeFirst()
        if pending.count == Self.pendingLimit / 2 { acceptor.start() }
        return SocketStream(fd: fd, loop: loop)
    }

    /// The accepted connections, one at a time, until the listener is closed
    /// (the sequence then ends).
    public var connections: Connections { Connections(listener: self) }

    /// The next accepted stream; nil once the listener is closed.
    nonisolated(nonsending) func nextConnection() async throws -> SocketStream? {
        do {
            return try await accept()
        } catch let error as IOError where error.code == .closed {
            return nil
        }
    }

    /// An `AsyncSequence` of accepted streams.
    public struct Connections: AsyncSequence, Sendable {
        public typealias Element = SocketStream
        let listener: SocketListener

        public struct AsyncIterator: AsyncIteratorProtocol {
            let listener: SocketListener
            public mutating func next() async throws -> SocketStream? { try await listener.nextConnection() }
            // As LineSequence's: for-await accepts in the caller's isolation.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> SocketStream? {
                try await listener.nextConnection()
            }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(listener: listener) }
    }

    /// Stops listening and closes the connections accepted but not yet taken;
    /// a pending ``accept()`` ends with ``IOError`` (`.closed`). Removes the
    /// socket file of a Unix-domain listener if it is still this listener's.
    /// Idempotent, and never cancellable.
    public nonisolated(nonsending) func close() async throws {
        try loop.requireLoopThread("close")
        closed = true
        acceptor.close()
        acceptWaiters.resumeAll(())
        // Looked at again as the wait is recorded: for a caller on an actor,
        // the wait may start a few loop steps later (see Waiters.wait).
        if !acceptor.isClosed {
            await loop.suspendUncancellably { if acceptor.isClosed { $0.resume() } else { closeWaiters.append($0) } }
        }
    }

    private func listenerClosed() {
        closed = true
        while let fd = pending.popFirst() { Glibc.close(fd) }
        unixSocket?.remove()
        acceptWaiters.resumeAll(())
        let waiters = closeWaiters
        closeWaiters = []
        for waiter in waiters { waiter.resume() }
    }
}
