import CUring
import Glibc

/// A listening server whose connections are ``Transport``s driven by a
/// ``TransportProtocol``: asyncio's `Server`, from ``EventLoop/createServer(host:port:backlog:reuseAddress:reusePort:_:)``.
///
/// ```swift
/// let server = try await loop.createServer(host: "127.0.0.1", port: 7000) { Echo() }
/// print(server.localAddresses)
/// try await server.serveForever()     // until server.close(), or the task is cancelled
/// ```
///
/// Thread-safety: ``close()``, ``closeClients()``, ``abortClients()``,
/// ``waitClosed()`` and ``serveForever()`` are safe from any thread (another
/// loop of a ``LoopGroup``, say): they do their work on the server's loop.
/// The rest is for its loop's thread.
public final class Server: @unchecked Sendable {
    /// The loop the server and its connections live on.
    public let loop: EventLoop
    /// The addresses it listens on, one socket each (the real port when
    /// bound to port 0).
    public let localAddresses: [SocketAddress]
    /// The first of ``localAddresses``: the one a server on one address has,
    /// as on ``StreamServer``.
    public var localAddress: SocketAddress { localAddresses[0] }
    private let acceptors: [Acceptor]
    private var acceptorsClosed = 0
    private let factory: () -> any TransportProtocol
    // Touched at every accept and every close, and never across a callback
    // (closeClients iterates a copy), so the runtime's dynamic exclusivity
    // checks, about six per connection, are turned off for it.
    @exclusivity(unchecked) private var transports: [Transport] = []
    /// Every listening socket is closed.
    private var listenerClosed: Bool { acceptorsClosed == acceptors.count }
    /// Callers of ``waitClosed()``.
    private let closeWaiters: Waiters<Void>
    private let unixSocket: UnixSocketFile?

    init(listeners: [(fd: Int32, address: SocketAddress)], loop: EventLoop, unixSocket: UnixSocketFile?,
         factory: @escaping () -> any TransportProtocol) {
        self.loop = loop
        self.localAddresses = listeners.map(\.address)
        self.factory = factory
        self.unixSocket = unixSocket
        closeWaiters = Waiters(loop: loop)
        acceptors = listeners.map { Acceptor(fd: $0.fd, loop: loop, label: $0.address.description) }
        for acceptor in acceptors {
            // Weak: the acceptor lives in the loop's handler table and may
            // outlive a server that was dropped without close().
            acceptor.onAccepted = { [weak self] fd in
                if let self { accepted(fd) } else { Glibc.close(fd) }
            }
            acceptor.onClosed = { [weak self] in
                unixSocket?.remove()
                guard let self else { return }
                acceptorsClosed += 1
                wakeIfClosed()
            }
            acceptor.start()
        }
    }

    /// A server dropped without ``close()`` stops listening (its connections
    /// live on with their protocols).
    deinit {
        let acceptors = self.acceptors
        loop.onLoopThread { for acceptor in acceptors { acceptor.close() } }
    }

    private func accepted(_ fd: Int32) {
        let transport = Transport(fd: fd, loop: loop)
        transport.serverSlot = Int32(transports.count)
        transports.append(transport)
        transport.server = self
        transport.start(factory())
    }

    func removeTransport(_ transport: Transport) {
        let slot = Int(transport.serverSlot)
        guard slot >= 0, slot < transports.count, transports[slot] === transport else { return }
        // O(1): move the last one into the hole.
        let last = transports.removeLast()
        if slot < transports.count {
            transports[slot] = last
            last.serverSlot = Int32(slot)
        }
        transport.serverSlot = -1
        wakeIfClosed()
    }

    /// True until ``close()``.
    public var isServing: Bool { !closeRequested && acceptors.contains { !$0.isClosed } }
    private var closeRequested = false

    /// Connections open now.
    public var connectionCount: Int { transports.count }

    /// Stops accepting and closes the listening socket. Open connections
    /// stay open (close them with ``closeClients()`` or ``abortClients()``).
    /// Idempotent; safe from any thread.
    public func close() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in close() }; return }
        closeRequested = true
        for acceptor in acceptors { acceptor.close() }
    }

    /// Closes every open connection gracefully (asyncio's `close_clients`).
    public func closeClients() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in closeClients() }; return }
        for transport in transports { transport.close() }
    }

    /// Aborts every open connection (asyncio's `abort_clients`).
    public func abortClients() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in abortClients() }; return }
        for transport in transports { transport.abort() }
    }

    /// Waits until the server is closed and every connection it accepted is
    /// closed (asyncio's `wait_closed`). Cancelling the waiting task ends the
    /// wait early; the server and its connections carry on.
    public nonisolated(nonsending) func waitClosed() async {
        guard loop.isOnLoopThread else {
            try? await loop.runOnLoop("server waitClosed") { [self] in await waitClosed() }
            return
        }
        if listenerClosed, transports.isEmpty { return }
        await closeWaiters.wait(cancelled: ())
    }

    /// Serves until ``close()`` is called; cancelling the calling task closes
    /// the server (asyncio's `serve_forever`). Returns once the listening
    /// socket is closed; connections still open are left to their protocols.
    public nonisolated(nonsending) func serveForever() async throws {
        guard loop.isOnLoopThread else {
            try await loop.runOnLoop("server serveForever") { [self] in try await serveForever() }
            return
        }
        if !listenerClosed {
            await withLoopCancellationHandler { _ in
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    if listenerClosed { continuation.resume() } else { serveWaiters.append(continuation) }
                }
            } onCancel: { [self] in
                close()
            }
        }
        try Task.checkCancellation()
    }
    private var serveWaiters: [UnsafeContinuation<Void, Never>] = []

    private func wakeIfClosed() {
        if listenerClosed, !serveWaiters.isEmpty {
            let list = serveWaiters
            serveWaiters = []
            for waiter in list { waiter.resume() }
        }
        guard listenerClosed, transports.isEmpty else { return }
        closeWaiters.resumeAll(())
    }
}

extension EventLoop {
    /// Listens on `host:port` and serves each connection with a new protocol
    /// object from `factory`: asyncio's `loop.create_server`. A name that
    /// resolves to several addresses (`localhost` to `127.0.0.1` and `::1`)
    /// gets a listening socket on each, all on one port: ``Server/localAddresses``.
    ///
    /// ```swift
    /// final class Echo: TransportProtocol {
    ///     var transport: Transport?
    ///     func connectionMade(_ transport: Transport) { self.transport = transport }
    ///     func dataReceived(_ bytes: UnsafeRawBufferPointer) throws { try transport?.write(bytes) }
    /// }
    /// let server = try await loop.createServer(host: "0.0.0.0", port: 7000) { Echo() }
    /// ```
    ///
    /// TCP_NODELAY is on for every connection. Must be called from a task on this loop.
    /// An IPv6 address listens for IPv6 only (`IPV6_V6ONLY`), so `::` takes
    /// no IPv4 connections; `host: ""` is every interface of both families
    /// (`0.0.0.0` and `::`, as asyncio reads `""`). An address this machine
    /// cannot bind (`::1` with IPv6 off) is left out while another binds.
    ///
    /// - Parameters:
    ///   - backlog: the accept queue length (`listen(2)`).
    ///   - reuseAddress: `SO_REUSEADDR`, on by default as servers expect.
    ///   - reusePort: `SO_REUSEPORT`, for one listener per loop of a ``LoopGroup``.
    /// - Throws: ``IOError`` (`.addressInUse`, `.permissionDenied`, `.nameResolution`, ...);
    ///   the port must stay taken for 200 ms to be `.addressInUse`: a process
    ///   on io_uring that was just killed can hold it a few milliseconds longer.
    public nonisolated(nonsending) func createServer(
        host: String, port: Int, backlog: Int32 = 511, reuseAddress: Bool = true, reusePort: Bool = false,
        _ factory: @escaping () -> any TransportProtocol
    ) async throws -> Server {
        try requireLoopThread("createServer")
        let listeners = try await Sockets.listenOnEvery(host: host, port: port, backlog: backlog, reuseAddress: reuseAddress,
                                                        reusePort: reusePort, loop: self)
        return Server(listeners: listeners, loop: self, unixSocket: nil, factory: factory)
    }

    /// ``createServer(host:port:backlog:reuseAddress:reusePort:_:)`` on addresses already resolved.
    func createServer(addresses: [SocketAddress], backlog: Int32 = 511,
                      _ factory: @escaping () -> any TransportProtocol) throws -> Server {
        try requireLoopThread("createServer")
        let listeners = try Sockets.listenOnEvery(addresses, backlog: backlog, reuseAddress: true, reusePort: false)
        return Server(listeners: listeners, loop: self, unixSocket: nil, factory: factory)
    }

    /// Listens on a Unix-domain socket path: asyncio's `create_unix_server`.
    ///
    /// - Parameter removeExisting: replace a socket file already at `path`
    ///   (only a socket: any other kind of file is an error, never removed).
    public nonisolated(nonsending) func createServer(
        unixPath path: String, backlog: Int32 = 511, removeExisting: Bool = false,
        _ factory: @escaping () -> any TransportProtocol
    ) async throws -> Server {
        try requireLoopThread("createServer")
        let (fd, address, file) = try Sockets.listen(unixPath: path, backlog: backlog, removeExisting: removeExisting)
        return Server(listeners: [(fd: fd, address: address)], loop: self, unixSocket: file, factory: factory)
    }

    /// Connects to `host:port` and drives the connection with the protocol
    /// object `factory` makes: asyncio's `loop.create_connection`.
    ///
    /// ```swift
    /// let (transport, client) = try await loop.createConnection(host: "127.0.0.1", port: 7000) { Client() }
    /// ```
    public nonisolated(nonsending) func createConnection<P: TransportProtocol>(
        host: String, port: Int, _ factory: () -> P
    ) async throws -> (Transport, P) {
        try requireLoopThread("createConnection")
        let fd = try await Sockets.connect(host: host, port: port, loop: self)
        return start(fd: fd, factory())
    }

    /// Connects to a Unix-domain socket: asyncio's `create_unix_connection`.
    /// A listener whose backlog is full refuses at once with `EAGAIN`, as
    /// ``SocketStream/connect(unixPath:)`` does.
    public nonisolated(nonsending) func createConnection<P: TransportProtocol>(
        unixPath path: String, _ factory: () -> P
    ) async throws -> (Transport, P) {
        try requireLoopThread("createConnection")
        let fd = try await Sockets.connect(to: SocketAddress(unixPath: path), loop: self)
        return start(fd: fd, factory())
    }

    /// A transport for the connected socket `fd`, driven by `protocolObject`.
    func start<P: TransportProtocol>(fd: Int32, _ protocolObject: P) -> (Transport, P) {
        let transport = Transport(fd: fd, loop: self)
        transport.start(protocolObject)
        return (transport, protocolObject)
    }
}
