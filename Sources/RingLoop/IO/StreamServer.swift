import Glibc

/// A server that runs one task per connection: asyncio's `start_server`,
/// from ``EventLoop/serve(host:port:backlog:reusePort:_:)``.
///
/// ```swift
/// let server = try await loop.serve(host: "0.0.0.0", port: 8080) { stream in
///     for try await line in stream.lines {
///         try await stream.writeAll(Array((line + "\n").utf8))
///     }
/// }
/// // later, on SIGTERM:
/// server.close()                                   // stop accepting
/// await server.waitClosed(deadline: .seconds(5))   // let handlers finish, then cancel the rest
/// ```
///
/// Each handler runs as a task on the loop. When it returns or throws, its
/// stream is closed. An error it throws (other than `CancellationError`)
/// goes to the loop's exception handler with source `.task("serve handler")`,
/// except its own connection's peer leaving: ECONNRESET, EPIPE or
/// ECONNABORTED on the served stream is how clients such as load tools
/// hang up, not a server fault, so it is logged at debug level only (asyncio's
/// transports ignore the same three errors).
///
/// Thread-safety: ``close()``, ``waitClosed(deadline:)`` and
/// ``serveForever()`` are safe from any thread (another loop of a
/// ``LoopGroup``, say): they do their work on the server's loop. The rest is
/// for its loop's thread.
public final class StreamServer: @unchecked Sendable {
    /// The loop the server and its handlers run on.
    public let loop: EventLoop
    /// The address it listens on (the real port when bound to port 0); the
    /// first of ``localAddresses``.
    public var localAddress: SocketAddress { listeners[0].localAddress }
    /// Every address it listens on, one socket each: a name such as
    /// `localhost` may resolve to `127.0.0.1` and `::1`, served on one port.
    public var localAddresses: [SocketAddress] { listeners.map(\.localAddress) }
    private let listeners: [SocketListener]
    private let handler: (SocketStream) async throws -> Void
    private var handlers: [UInt64: LoopTask<Void>] = [:]
    private var nextID: UInt64 = 0
    private var acceptTasks: [LoopTask<Void>] = []
    private var listenerClose: LoopTask<Void>?
    private var closing = false
    /// Accept loops that have finished, and whether the listeners' close has.
    private var acceptLoopsEnded = 0
    private var acceptEnded: Bool { acceptLoopsEnded == listeners.count }
    private var listenerClosed = false
    /// Callers of ``waitClosed(deadline:)``, woken at each change to look again.
    private let closeWaiters: Waiters<Void>

    init(listeners: [SocketListener], loop: EventLoop, handler: @escaping (SocketStream) async throws -> Void) {
        self.listeners = listeners
        self.loop = loop
        self.handler = handler
        closeWaiters = Waiters(loop: loop)
        acceptTasks = listeners.map { listener in
            loop.spawn(name: "serve accept loop") { [self] in
                defer {
                    acceptLoopsEnded += 1
                    wakeCloseWaiters()
                }
                for try await stream in listener.connections { start(stream) }
            }
        }
    }

    /// Connections whose handler is still running.
    public var connectionCount: Int { handlers.count }

    /// True until ``close()``.
    public var isServing: Bool { !closing }

    /// Stops accepting: the listening socket closes, handlers keep running.
    /// Idempotent; safe from any thread.
    public func close() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in close() }; return }
        guard !closing else { return }
        closing = true
        for task in acceptTasks { task.cancel() }
        listenerClose = loop.spawn(name: "serve listener close") { [self, listeners] in
            defer {
                listenerClosed = true
                wakeCloseWaiters()
            }
            // Every listener closes; the first failure, if any, is reported.
            var failure: (any Error)?
            for listener in listeners {
                do { try await listener.close() } catch { failure = failure ?? error }
            }
            if let failure { throw failure }
        }
    }

    /// Waits until the listener is closed and every handler has ended. With
    /// a `deadline`, handlers still running when it passes are cancelled (and
    /// then awaited: their streams close as they unwind). Call ``close()``
    /// first, or this waits for as long as the server serves.
    ///
    /// Cancelling the waiting task (a `withTimeout`, say) ends the wait
    /// early; the server and its handlers carry on.
    public nonisolated(nonsending) func waitClosed(deadline: Duration? = nil) async {
        guard loop.isOnLoopThread else {
            try? await loop.runOnLoop("serve waitClosed") { [self] in await waitClosed(deadline: deadline) }
            return
        }
        let timer = try? deadline.map { delay in
            try loop.callLater(delay) { [self] in for task in handlers.values { task.cancel() } }
        }
        defer { timer?.cancel() }
        // Woken when a handler ends, the accept loop ends or the listener
        // closes, to look again; or cancelled.
        while !(acceptEnded && handlers.isEmpty && (listenerClose == nil || listenerClosed)), !Task.isCancelled {
            await closeWaiters.wait(cancelled: ())
        }
    }

    /// Serves until ``close()`` is called, or the calling task is cancelled
    /// (which closes the server).
    public nonisolated(nonsending) func serveForever() async throws {
        await withLoopCancellationHandler { _ in
            for task in acceptTasks { _ = await task.result }
        } onCancel: { [loop, self] in
            loop.onLoopThread { self.close() }
        }
        try Task.checkCancellation()
    }

    private func start(_ stream: SocketStream) {
        nextID &+= 1
        let id = nextID
        let handler = self.handler
        let fd = stream.fileDescriptor
        handlers[id] = loop.spawn(name: "serve handler") { [self] in
            defer { finished(id) }
            do {
                try await handler(stream)
            } catch is CancellationError {
            } catch let error as IOError where error.fd == fd && error.isDisconnect {
                loop.logger.debug("serve handler ended: the peer left", metadata: ["error": "\(error)"])
            } catch {
                loop.callExceptionHandler(ExceptionContext(message: "serve handler failed", error: error, source: .task("serve handler")))
            }
            try? await stream.close()
        }
        // The task starts once this job yields, so it is registered before it can finish.
    }

    private func finished(_ id: UInt64) {
        handlers[id] = nil
        wakeCloseWaiters()
    }

    /// Each waiter looks again at what it waits for.
    private func wakeCloseWaiters() { closeWaiters.resumeAll(()) }
}

extension EventLoop {
    /// Listens on `host:port` and runs `handler` in a task of its own for each
    /// connection: asyncio's `start_server`. A name that resolves to several
    /// addresses (`localhost`, often, to `127.0.0.1` and `::1`) gets a listening
    /// socket on each, all on one port: ``StreamServer/localAddresses``.
    ///
    /// ```swift
    /// let server = try await loop.serve(host: "127.0.0.1", port: 7000) { stream in
    ///     while let line = try await stream.readLine() { print(line) }
    /// }
    /// try await server.serveForever()
    /// ```
    ///
    /// An IPv6 address listens for IPv6 only (`IPV6_V6ONLY`), so `::` takes
    /// no IPv4 connections; `host: ""` is every interface of both families
    /// (`0.0.0.0` and `::`, as asyncio reads `""`). An address this machine
    /// cannot bind (`::1` with IPv6 off) is left out while another binds.
    ///
    /// - Throws: ``IOError`` when an address cannot be bound (nothing is left
    ///   listening then); a port must stay taken for 200 ms to be
    ///   `.addressInUse`: a process on io_uring that was just killed can hold
    ///   it a few milliseconds longer.
    public nonisolated(nonsending) func serve(
        host: String, port: Int, backlog: Int32 = 511, reusePort: Bool = false,
        _ handler: @escaping (SocketStream) async throws -> Void
    ) async throws -> StreamServer {
        try requireLoopThread("serve")
        let bound = try await Sockets.listenOnEvery(host: host, port: port, backlog: backlog, reuseAddress: true,
                                                    reusePort: reusePort, loop: self)
        return serving(bound, handler)
    }

    /// ``serve(host:port:backlog:reusePort:_:)`` on addresses already resolved.
    func serve(addresses: [SocketAddress], backlog: Int32 = 511, reusePort: Bool = false,
               _ handler: @escaping (SocketStream) async throws -> Void) throws -> StreamServer {
        try requireLoopThread("serve")
        return serving(try Sockets.listenOnEvery(addresses, backlog: backlog, reuseAddress: true, reusePort: reusePort), handler)
    }

    private func serving(_ bound: [(fd: Int32, address: SocketAddress)],
                         _ handler: @escaping (SocketStream) async throws -> Void) -> StreamServer {
        let listeners = bound.map { SocketListener(fd: $0.fd, address: $0.address, loop: self, unixSocket: nil) }
        return StreamServer(listeners: listeners, loop: self, handler: handler)
    }

    /// ``serve(host:port:backlog:reusePort:_:)`` on a Unix-domain socket path.
    public nonisolated(nonsending) func serve(
        unixPath path: String, backlog: Int32 = 511, removeExisting: Bool = false,
        _ handler: @escaping (SocketStream) async throws -> Void
    ) async throws -> StreamServer {
        try requireLoopThread("serve")
        let listener = try await SocketListener.bind(unixPath: path, backlog: backlog, removeExisting: removeExisting)
        return StreamServer(listeners: [listener], loop: self, handler: handler)
    }
}
