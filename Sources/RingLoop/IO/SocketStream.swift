import CUring
import Glibc

/// A connected stream socket, TCP or Unix-domain, for tasks: asyncio's
/// `StreamReader` and `StreamWriter` in one.
///
/// ```swift
/// let stream = try await SocketStream.connect(host: "example.com", port: 80)
/// try await stream.writeAll(Array("GET / HTTP/1.0\r\n\r\n".utf8))
/// let reply = try await stream.read(upTo: 4096)   // [] at end of stream
/// try await stream.close()
/// ```
///
/// It runs on the same machinery as ``Transport``: the connection receives
/// continuously into the loop's buffers, and bytes wait in the stream's
/// queue until a task reads them. A read that finds bytes queued returns
/// without suspending; one that finds none suspends once. Writes copy into
/// the send queue and return at once below the high-water mark (64 KiB),
/// and suspend above it until the queue drains (asyncio's `drain()`). An
/// error from a queued send surfaces on the next read, write or close.
///
/// Every method must be called from a task on the loop the stream belongs to.
/// Sends use `MSG_NOSIGNAL`: a peer that went away is an ``IOError``
/// (`.brokenPipe` or `.connectionReset`), never a SIGPIPE. One task reads a
/// stream at a time; another may write meanwhile.
public final class SocketStream: @unchecked Sendable {
    let transport: Transport
    let state: StreamState

    /// asyncio's default StreamReader limit: 64 KiB.
    public static let defaultLimit = 64 * 1024

    init(fd: Int32, loop: EventLoop, limit: Int = SocketStream.defaultLimit) {
        transport = Transport(fd: fd, loop: loop)
        // The stream's owner closes it (or its deinit does): a stream shut
        // down both ways keeps its descriptor until then.
        transport.closesWhenBothEnded = false
        state = StreamState(loop: loop, transport: transport, limit: limit)
        transport.start(state)
    }

    /// A stream dropped without ``close()`` is closed: what is queued is
    /// sent, then the descriptor closes (a server whose handler threw past its
    /// close must not leak the connection).
    deinit {
        let transport = self.transport
        _ = transport.loop.onLoopThread { transport.close() }
    }

    var loop: EventLoop { transport.loop }

    /// The raw descriptor, or -1 after ``close()``.
    public var fileDescriptor: Int32 { transport.fileDescriptor }

    /// This end's address, read from the socket (`getsockname`); nil once
    /// the stream is closed.
    public var localAddress: SocketAddress? { transport.localAddress }

    /// The peer's address, read from the socket (`getpeername`) when asked:
    /// nil once the stream is closed, `.unix(path: "")` for an unnamed
    /// Unix-domain peer (a client that did not bind). Not stored, so an idle
    /// connection does not pay for it, nor an accept for a `getpeername`;
    /// keep it if you need it after closing.
    public var remoteAddress: SocketAddress? { transport.remoteAddress }

    /// The longest line or separated record ``readLine()`` and ``readUntil(_:)``
    /// accept (asyncio's StreamReader limit); received bytes queue up to twice
    /// this before receiving pauses.
    public var limit: Int { state.limit }

    /// Changes ``limit``: asyncio's `limit=` argument of `start_server` and
    /// `open_connection`, set on the stream.
    ///
    /// ```swift
    /// let server = try await loop.serve(host: "0.0.0.0", port: 7000) { stream in
    ///     try stream.setLimit(1 << 20)          // lines up to 1 MiB
    ///     for try await line in stream.lines { print(line) }
    /// }
    /// ```
    ///
    /// - Throws: ``IOError`` (EINVAL) for a limit below one byte;
    ///   ``EventLoopError/wrongThread(operation:)`` off the loop thread.
    public func setLimit(_ limit: Int) throws {
        try loop.requireLoopThread("setLimit")
        guard limit >= 1 else {
            throw IOError(operation: "setLimit", errno: Errno(EINVAL), fd: fileDescriptor, path: transport.errorLabel,
                          detail: "the limit must be at least 1 byte, got \(limit)")
        }
        state.setLimit(limit)
    }

    // MARK: Connecting

    /// Resolves `host` (on the thread pool, unless it is a numeric address)
    /// and connects to the first address that accepts, TCP_NODELAY on.
    ///
    /// - Throws: ``IOError`` (`.connectionRefused`, `.nameResolution`, …);
    ///   wrap in ``withTimeout(_:_:)`` to bound the wait.
    public nonisolated(nonsending) static func connect(host: String, port: Int) async throws -> SocketStream {
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
    ///
    /// - Throws: ``IOError`` with `EAGAIN` when the listener's backlog is
    ///   full (it does not wait for room), `ENOENT` when nothing is bound at
    ///   `unixPath`, `ECONNREFUSED` when no one listens there.
    public nonisolated(nonsending) static func connect(unixPath: String) async throws -> SocketStream {
        try await connect(to: SocketAddress(unixPath: unixPath))
    }

    /// Connects to `address` (`IORING_OP_CONNECT`, or a non-blocking connect
    /// finished on writability under epoll; a Unix-domain address is
    /// connected at once, as ``connect(unixPath:)`` says). A connect that
    /// fails or is cancelled leaves no descriptor behind.
    public nonisolated(nonsending) static func connect(to address: SocketAddress) async throws -> SocketStream {
        let loop = try EventLoop.running()
        let fd = try await Sockets.connect(to: address, loop: loop)
        return SocketStream(fd: fd, loop: loop)
    }

    // MARK: Reading

    /// Reads up to `buffer.capacity` bytes into the start of `buffer`; sets
    /// `buffer.count` and returns it. 0 means the peer closed its side (EOF).
    ///
    /// `buffer` is written only when the read returns, never while it waits,
    /// so tasks on one loop may share a buffer between reads.
    ///
    /// With `timeout`, the wait for data has a deadline: when no data comes
    /// in time it throws ``IOError`` with code `.timedOut`, and the stream stays
    /// usable; data that arrives later goes to the next read.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for a buffer of zero
    ///   capacity (a read of 0 bytes would look like the end of the stream);
    ///   the connection's error (`.connectionReset`, ...) once the bytes
    ///   received before it have been read; `CancellationError`.
    public nonisolated(nonsending) func read(into buffer: IOBuffer, timeout: Duration? = nil) async throws -> Int {
        // The checks and the copy are synchronous helpers, so this async
        // frame holds only what crosses the wait: a parked idle connection's
        // task stays within the task allocator's first slab (see
        // Docs/Transports.md, "Memory per idle connection").
        try checkReadable(buffer)
        if state.inbound.isEmpty { try await state.waitForData(timeout: timeout, operation: "read") }
        return try takeQueued(into: buffer)
    }

    @inline(never)
    private func checkReadable(_ buffer: IOBuffer) throws {
        try loop.requireLoopThread("read")
        guard buffer.capacity > 0 else {
            throw IOError(operation: "read", errno: Errno(EINVAL), fd: fileDescriptor, path: transport.errorLabel,
                          detail: "the buffer has no capacity; a 0-byte read would look like end of stream")
        }
        if state.inbound.isEmpty { try state.throwFailure() }
    }

    /// Copies what is queued into `buffer`; 0 at end of stream.
    @inline(never)
    private func takeQueued(into buffer: IOBuffer) throws -> Int {
        if state.closedLocally { try state.throwFailure() }
        let n = state.inbound.peek(into: buffer.base, max: buffer.capacity)
        if n == 0 { try state.throwFailure() }
        state.consumed(n)
        buffer.count = n
        return n
    }

    /// Reads up to `maxBytes` bytes; `[]` at end of stream.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) when `maxBytes` is not positive.
    public nonisolated(nonsending) func read(upTo maxBytes: Int) async throws -> [UInt8] {
        try loop.requireLoopThread("read")
        guard maxBytes > 0 else {
            throw IOError(operation: "read", errno: Errno(EINVAL), path: transport.errorLabel,
                          detail: "maxBytes must be positive, got \(maxBytes)")
        }
        if state.inbound.isEmpty {
            try state.throwFailure()
            try await state.waitForData(operation: "read")
        }
        if state.closedLocally { try state.throwFailure() }
        let n = Swift.min(maxBytes, state.inbound.count)
        if n == 0 { try state.throwFailure() }
        let bytes = [UInt8](unsafeUninitializedCapacity: n) { storage, count in
            count = state.inbound.peek(into: UnsafeMutableRawPointer(storage.baseAddress!), max: n)
        }
        state.consumed(n)
        return bytes
    }

    /// Reads until the peer closes its side, or `limit` bytes: asyncio's
    /// `read(-1)` (or `read(n)` repeated). The bytes stay queued until the end
    /// comes, so a read that is cancelled or times out loses none.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for a negative `limit`; the
    ///   connection's error if it fails before its end.
    public nonisolated(nonsending) func readToEnd(limit: Int = .max) async throws -> [UInt8] {
        try loop.requireLoopThread("readToEnd")
        guard limit >= 0 else {
            throw IOError(operation: "readToEnd", errno: Errno(EINVAL), fd: fileDescriptor, detail: "limit must not be negative, got \(limit)")
        }
        if state.inbound.count < limit {
            try await state.waitForData(needed: limit, operation: "readToEnd")
        }
        // A connection that failed before `limit` bytes came is its error
        // (the bytes stay queued); one that had sent them all is not.
        if state.closedLocally || (state.failure != nil && state.inbound.count < limit) { try state.throwFailure("readToEnd") }
        return take(Swift.min(limit, state.inbound.count))
    }

    // MARK: Writing

    /// Queues a copy of `buffer`'s valid bytes and returns how many: all of
    /// them. Suspends while the send queue is above its high-water mark.
    @discardableResult
    public nonisolated(nonsending) func write(_ buffer: IOBuffer) async throws -> Int {
        try await writeAll(buffer)
        return buffer.count
    }

    /// Queues a copy of `buffer`'s valid bytes; suspends while the send queue
    /// is above its high-water mark (asyncio's `write` then `drain`).
    ///
    /// The bytes go out at the end of the loop iteration. The buffer may be
    /// reused as soon as this returns. A buffer larger than
    /// ``writeChunkSize`` is queued a chunk at a time, each after the queue
    /// has drained, so the queue never holds a second copy of all of it;
    /// other tasks' writes wait until it is all queued, so concurrent writes
    /// never interleave.
    ///
    /// Cancelled while it waits (for example by `withTimeout` against a peer
    /// that does not read), it aborts the connection: some of its bytes were
    /// not sent, so nothing written after them could arrive intact.
    public nonisolated(nonsending) func writeAll(_ buffer: IOBuffer) async throws {
        try await write(CollectionOfOne(buffer), total: buffer.count)
    }

    /// Queues copies of `buffers`, which hold `total` bytes: all at once
    /// when that is one chunk or less (they leave in one vectored send),
    /// otherwise a chunk at a time, holding the write side so that no other
    /// task's write lands between two chunks.
    nonisolated(nonsending) func write(_ buffers: some Collection<IOBuffer>, total: Int) async throws {
        if total <= Self.writeChunkSize {
            // The common write calls no async function unless it must wait:
            // each call costs a frame from the task allocator.
            if state.bulkWriting { try await state.waitForWriteTurn() }
            try await queueAndDrain {
                for buffer in buffers where buffer.count > 0 {
                    try transport.write(UnsafeRawBufferPointer(start: buffer.base, count: buffer.count))
                }
            }
            return
        }
        try await holdingWriteSide {
            for buffer in buffers {
                let bytes = UnsafeRawBufferPointer(start: buffer.base, count: buffer.count)
                // `buffer` is used after the loop, so it outlives the pointer.
                for chunk in bytes.slices(of: Self.writeChunkSize) {
                    try await queueAndDrain { try transport.write(UnsafeRawBufferPointer(rebasing: chunk)) }
                }
                withExtendedLifetime(buffer) {}
            }
        }
    }

    /// One step of every write: check the stream can be written, queue
    /// (`enqueue` copies into the transport's send queue), then wait while
    /// the queue is above its high-water mark.
    private nonisolated(nonsending) func queueAndDrain(_ enqueue: () throws -> Void) async throws {
        try checkWritable()
        try enqueue()
        if state.writePaused { try await drainOrAbort() } else { try state.throwFailure() }
    }

    /// Runs `body`, a write that queues in several steps (chunks, or
    /// `sendFile` past the queue), holding the stream's write side: other
    /// tasks' writes, `close()` and `shutdown(.write)` wait until it ends.
    /// Writers that waited then go first (the loop runs them before this
    /// task goes on), so a task writing large payloads back to back cannot
    /// starve another task's writes.
    nonisolated(nonsending) func holdingWriteSide<R>(_ body: nonisolated(nonsending) () async throws -> R) async throws -> R {
        try await state.waitForWriteTurn()
        state.beginBulkWrite()
        let result: R
        do {
            result = try await body()
        } catch {
            state.endBulkWrite()
            throw error
        }
        if state.endBulkWrite() { await Task.yield() }
        return result
    }

    /// Queues a copy of `bytes`, a chunk of at most ``writeChunkSize`` at a
    /// time, each after the queue has drained; suspends while the send
    /// queue is above its high-water mark. Concurrent writes never
    /// interleave, as with `writeAll` of an `IOBuffer`.
    ///
    /// ```swift
    /// try await stream.writeAll(Array("HTTP/1.1 200 OK\r\n\r\n".utf8))
    /// ```
    public nonisolated(nonsending) func writeAll(_ bytes: some Collection<UInt8>) async throws {
        if bytes.fits(Self.writeChunkSize) {
            if state.bulkWriting { try await state.waitForWriteTurn() }
            try await queueAndDrain { try transport.write(bytes) }
            return
        }
        try await holdingWriteSide {
            for chunk in bytes.slices(of: Self.writeChunkSize) {
                try await queueAndDrain { try transport.write(chunk) }
            }
        }
    }

    /// The most one write copies into the send queue before waiting for it to
    /// drain (1 MiB): writing a 1 GiB array costs 1 MiB of queue, not 1 GiB.
    public static let writeChunkSize = 1 << 20

    /// Waits for the send queue to fall below its high-water mark.
    ///
    /// A write cancelled here (a `withTimeout`, a cancelled task) leaves part
    /// of its bytes unsent, so the byte stream can no longer be continued
    /// intact: the connection is aborted (reset), and a later write or close
    /// returns at once instead of waiting on a peer that does not read.
    nonisolated(nonsending) func drainOrAbort() async throws {
        do {
            try await state.drain()
        } catch is CancellationError {
            transport.abort()
            throw CancellationError()
        }
        try state.throwFailure()
    }

    func checkWritable() throws {
        try loop.requireLoopThread("write")
        try state.throwFailure("write")
        if transport.isClosing {
            try throwPendingLoss()
            throw IOError(operation: "write", errno: Errno(EPIPE), fd: fileDescriptor, path: transport.errorLabel,
                          detail: state.lost ? IOError.closedDetail : "the stream is closing")
        }
    }

    /// Throws the error a failing connection (a reset) is ending with while
    /// only the transport knows it: the stream hears of it in
    /// `connectionLost`, a moment later (on io_uring, once the aborted
    /// connection's cancels complete). Thrown once: `connectionLost` does
    /// not record it again for a later call.
    func throwPendingLoss() throws {
        if !state.lost, let error = transport.lossError {
            state.lossReported = true
            throw error
        }
    }

    /// Bytes queued to send and not yet sent.
    public var writeBufferSize: Int { transport.writeBufferSize }

    /// True once the peer has ended its side (or the connection is gone)
    /// and every byte it sent before that has been read: asyncio's
    /// `reader.at_eof()`. A read then returns 0 at once, or throws the
    /// connection's error. Loop thread only, like the stream's other calls.
    ///
    /// ```swift
    /// let header = try await stream.readExactly(8)
    /// if stream.isAtEOF { print("the peer sent a header and nothing else") }
    /// ```
    public var isAtEOF: Bool { state.eof && state.inbound.count == 0 }

    /// True once ``close()`` or ``abort()`` was called on this stream, or
    /// the connection failed: asyncio's `writer.is_closing()`. Writes then
    /// fail. The peer's half-close (``isAtEOF``) does not make it true: this
    /// side can still write.
    public var isClosing: Bool { state.closedLocally || transport.isClosing }

    // MARK: Closing and options

    /// Shuts down one or both directions. `.write` sends EOF to the peer once
    /// what is queued has gone, while this side can still read.
    public nonisolated(nonsending) func shutdown(_ direction: ShutdownDirection) async throws {
        try loop.requireLoopThread("shutdown")
        guard transport.fileDescriptor >= 0 else {
            throw IOError(operation: "shutdown", errno: Errno(EBADF), path: transport.errorLabel, detail: IOError.closedDetail)
        }
        // A write of many chunks under way in another task ends before the EOF.
        if direction != .read { try await state.waitForWriteTurn() }
        switch direction {
        case .write:
            transport.writeEOF()
        case .read, .both:
            if Glibc.shutdown(transport.fileDescriptor, Int32(SHUT_RD)) != 0 {
                throw IOError(operation: "shutdown", errno: .current, fd: fileDescriptor, path: transport.errorLabel)
            }
            if direction == .both { transport.writeEOF() }
        }
    }

    /// Ends this side with EOF, then reads and drops what the peer still
    /// sends until it ends its side too, for at most `limit`: nginx's
    /// "lingering close", for a server that refuses a client mid-request.
    ///
    /// Closing with bytes the peer sent still unread makes the kernel reset
    /// the connection, and a client that is still sending (a long HTTP head,
    /// a large body) then reads the reset instead of the refusal. Call this
    /// between the refusal and ``close()``:
    ///
    /// ```swift
    /// try await stream.writeAll(Array("HTTP/1.1 431 Request Header Fields Too Large\r\n\r\n".utf8))
    /// try await stream.shutdownAndDrain(within: .seconds(2))
    /// try await stream.close()
    /// ```
    ///
    /// - Returns: true once the peer ended its side (EOF, or an error such as
    ///   a reset), false when `limit` passed first or the task was cancelled.
    /// - Throws: what ``shutdown(_:)`` throws (a stream already closed).
    @discardableResult
    public nonisolated(nonsending) func shutdownAndDrain(within limit: Duration) async throws -> Bool {
        try await shutdown(.write)
        let scratch = try IOBuffer(capacity: 16 * 1024)
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            do {
                if try await read(into: scratch, timeout: deadline - ContinuousClock.now) == 0 { return true }
            } catch let error as IOError where error.code == .timedOut {
                return false
            } catch is CancellationError {
                return false
            } catch {
                return true   // the peer's reset or another end of the connection
            }
        }
        return false
    }

    /// Sends what is queued, then closes; returns once the descriptor is
    /// closed. Idempotent. A write of more than one chunk that another task
    /// has under way is queued to its end first, so it is sent whole.
    ///
    /// Closing is never cancellable: in a cancelled task (or if the task is
    /// cancelled while the queue drains) the connection is aborted instead,
    /// dropping unsent bytes, and the descriptor is still closed.
    ///
    /// As with any TCP socket, closing while bytes the peer sent are still
    /// unread makes the kernel reset the connection instead of ending it, and
    /// a peer that is still sending may then read the reset before the last
    /// reply. ``shutdownAndDrain(within:)`` before `close()` prevents that.
    ///
    /// - Throws: the connection's error, if a queued send failed and no read
    ///   or write has reported it yet.
    public nonisolated(nonsending) func close() async throws {
        try loop.requireLoopThread("close")
        // Cancelled while it waits, the close below aborts instead.
        try? await state.waitForWriteTurn()
        let failure = state.failure
        state.wakeForClose()
        if Task.isCancelled { transport.abort() } else { transport.close() }
        await withLoopCancellationHandler { _ in
            await state.waitUntilLost()
        } onCancel: { [transport] in
            transport.abort()
        }
        state.discard()
        if let failure = failure ?? state.failure {
            state.failure = nil
            throw failure
        }
    }

    /// Closes the connection at once, dropping whatever is queued and not yet
    /// sent: asyncio's `transport.abort()`. For a peer that has stopped
    /// reading, where ``close()`` would wait for the queue to drain.
    ///
    /// A read or write waiting on the stream, and any later one, throws
    /// ``IOError`` (`.closed`); ``close()`` afterwards returns at once.
    /// Idempotent; safe from any thread.
    ///
    /// ```swift
    /// if client.writeBufferSize > 1 << 20 { client.abort() }   // too far behind
    /// ```
    public func abort() {
        loop.onLoopThread { [state, transport] in
            state.wakeForClose()
            transport.abort()
        }
    }

    /// `TCP_NODELAY`: send small writes at once instead of coalescing them.
    public func setNoDelay(_ on: Bool) throws(IOError) {
        try setOption(Int32(IPPROTO_TCP), TCP_NODELAY, on ? 1 : 0, "TCP_NODELAY")
    }

    /// Whether `TCP_NODELAY` is on.
    public var noDelay: Bool {
        get throws(IOError) { try option(Int32(IPPROTO_TCP), TCP_NODELAY, "TCP_NODELAY") != 0 }
    }

    /// `SO_KEEPALIVE`.
    public func setKeepAlive(_ on: Bool) throws(IOError) {
        try setOption(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0, "SO_KEEPALIVE")
    }

    /// `SO_LINGER`: with `seconds` 0, ``close()`` resets the connection (RST)
    /// instead of a graceful FIN; `nil` restores the default.
    public func setLinger(seconds: Int32?) throws(IOError) {
        let fd = try openDescriptor("setsockopt(SO_LINGER)")
        var value = linger(l_onoff: seconds == nil ? 0 : 1, l_linger: seconds ?? 0)
        if setsockopt(fd, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size)) != 0 {
            throw IOError(operation: "setsockopt(SO_LINGER)", errno: .current, fd: fd, path: transport.errorLabel)
        }
    }

    /// Any integer socket option, for what has no method here.
    public func setOption(level: Int32, name: Int32, value: Int32) throws(IOError) {
        try setOption(level, name, value, "level \(level) option \(name)")
    }

    private func openDescriptor(_ operation: String) throws(IOError) -> Int32 {
        let fd = transport.fileDescriptor
        guard fd >= 0 else {
            throw IOError(operation: operation, errno: Errno(EBADF), path: transport.errorLabel, detail: IOError.closedDetail)
        }
        return fd
    }

    private func setOption(_ level: Int32, _ name: Int32, _ value: Int32, _ label: String) throws(IOError) {
        try Sockets.setOption(try openDescriptor("setsockopt(\(label))"), level, name, value, label, path: transport.errorLabel)
    }

    private func option(_ level: Int32, _ name: Int32, _ label: String) throws(IOError) -> Int32 {
        let fd = try openDescriptor("getsockopt(\(label))")
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, level, name, &value, &size) != 0 {
            throw IOError(operation: "getsockopt(\(label))", errno: .current, fd: fd, path: transport.errorLabel)
        }
        return value
    }
}
