import CUring
import DequeModule
import Glibc

/// A connected stream socket driven by callbacks: asyncio's `Transport`.
///
/// It receives continuously into the loop's receive buffers (a multishot
/// recv over a provided-buffer ring on io_uring; readiness and `recv` on
/// epoll) and hands the bytes to its ``TransportProtocol``. Writes queue in
/// order and go out together at the end of each loop iteration: on io_uring
/// as one `send`/`sendmsg` SQE per connection, submitted with the
/// iteration's single `io_uring_enter`; on epoll as one syscall.
///
/// ```swift
/// let (transport, client) = try await loop.createConnection(host: "127.0.0.1", port: 7000) { MyClient() }
/// try transport.write(Array("hello".utf8))
/// transport.close()      // sends what is queued, then closes
/// ```
///
/// Thread-safety: use it on its loop's thread (protocol callbacks and loop
/// tasks run there). ``close()``, ``abort()``, ``pauseReading()`` and
/// ``resumeReading()`` may be called from any thread; from another one they
/// take effect through the loop's inbox.
///
/// Flow control follows asyncio: above the high-water mark (64 KiB by
/// default) the protocol's ``TransportProtocol/pauseWriting()`` is called,
/// and ``TransportProtocol/resumeWriting()`` once the queue is back at the
/// low-water mark (a quarter of the high one).
public final class Transport: CompletionHandler, @unchecked Sendable {
    /// The loop the connection lives on.
    public let loop: EventLoop
    /// The socket, or -1 once closed.
    // Read on every send and receive; only ever assigned, never passed
    // inout, so the runtime's dynamic exclusivity check has nothing to find.
    @exclusivity(unchecked) public private(set) var fileDescriptor: Int32
    /// Where ``server`` keeps this transport in its list (O(1) removal).
    /// Next to the fd: two 32-bit fields, no padding. Only assigned, as the
    /// fd is, so it goes unchecked too.
    @exclusivity(unchecked) var serverSlot: Int32 = -1

    private var handlerID = HandlerID(slot: 0, generation: 0)
    var protocolObject: (any TransportProtocol)?
    // The containers below are mutated in place on every request. A
    // transport is confined to its loop's thread and never calls out while
    // one of them is being modified (callbacks get copies, waiters are
    // taken out before they are resumed), so the runtime's dynamic
    // exclusivity checks (a thread-local access set, about eight per echo)
    // are turned off for them.
    @exclusivity(unchecked) private var sendQueue = SendQueue()
    @exclusivity(unchecked) private var sendScratch: UnsafeMutablePointer<SendScratch>?
    @exclusivity(unchecked) private var heldReceives: Deque<(id: UInt16, count: Int32)>?
    private var closeError: (any Error)?

    /// The error the connection is ending with: known here from the moment
    /// it aborts (on io_uring its cancels may still be in flight), before
    /// ``TransportProtocol/connectionLost(_:)`` runs.
    var lossError: (any Error)? { closeError }
    /// The server that accepted this transport, told when it closes. A
    /// weak reference rather than a callback: 8 bytes in every transport
    /// instead of 16, and no closure context per connection.
    weak var server: Server?

    private var high = 64 * 1024
    private var low = 16 * 1024
    /// Tasks waiting for every queued byte to have gone (``waitUntilSent()``).
    @exclusivity(unchecked) private var sentWaiters: [UnsafeContinuation<Void, Never>] = []

    // The small fields last, together: one object per connection, no
    // padding between them (see Docs/Transports.md, "Memory per idle connection").
    /// How the receive stream ended (EOF, an error), when that came while
    /// received bytes were still held: it is acted on after they are delivered.
    private var heldEnd: Int32?
    private enum State { case open, closing, aborting, closed }
    private var state = State.open
    /// The fd number stopped being ours (EBADF): never close it.
    private var numberLost = false
    // Flags, loop-thread only.
    private var receiving = false
    private var readingWanted = true
    private var waitingForBuffers = false
    private var sending = false
    private var writingPaused = false
    private var eofReceivedFlag = false
    /// How far ``writeEOF()`` has got. One byte where there were two flags,
    /// so `closesWhenBothEnded` fits without growing the object past 184
    /// bytes (Docs/Transports.md, "Memory per idle connection").
    private enum WriteEnd { case none, wanted, done }
    private var writeEnd = WriteEnd.none
    /// Close once both directions have ended (see ``writeEOF()``). A
    /// ``SocketStream`` turns it off: its owner closes it, and until then
    /// its descriptor stays open (for options, `localAddress`, a raw call).
    var closesWhenBothEnded = true
    var flushScheduled = false

    private static let receiveKind: UInt8 = 1
    private static let sendKind: UInt8 = 2

    /// Wraps a connected, non-blocking socket; the transport owns it from now.
    init(fd: Int32, loop: EventLoop) {
        self.loop = loop
        fileDescriptor = fd
        loop.io.adopt(fd: fd)
        handlerID = loop.handlers.register(self)
    }

    /// Calls `connectionMade` and starts receiving.
    func start(_ protocolObject: any TransportProtocol) {
        self.protocolObject = protocolObject
        do {
            try protocolObject.connectionMade(self)
        } catch {
            loop.reportProtocolError(error, "connectionMade")
            abort(error)
            return
        }
        startReceiving()
    }

    // MARK: State

    /// True once ``close()`` or ``abort()`` was called, or the connection failed.
    public var isClosing: Bool { state != .open }

    /// Bytes queued and not yet sent, a send in flight included.
    public var writeBufferSize: Int { sendQueue.count }

    /// The flow-control marks: `pauseWriting` above `high`, `resumeWriting`
    /// at or below `low`.
    public var writeBufferLimits: (low: Int, high: Int) { (low, high) }

    /// Sets the flow-control marks, as asyncio's `set_write_buffer_limits`:
    /// `high` defaults to 64 KiB, `low` to a quarter of `high`.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) unless `0 <= low <= high`.
    public func setWriteBufferLimits(high: Int? = nil, low: Int? = nil) throws(IOError) {
        let newHigh = high ?? (low.map { Swift.max($0 * 4, 64 * 1024) } ?? 64 * 1024)
        let newLow = low ?? newHigh / 4
        guard newLow >= 0, newHigh >= newLow else {
            throw IOError(operation: "setWriteBufferLimits", errno: Errno(EINVAL), fd: fileDescriptor,
                          detail: "need 0 <= low <= high, got low \(newLow), high \(newHigh)")
        }
        self.high = newHigh
        self.low = newLow
        checkWriteFlowControl()
    }

    /// True while receiving is not paused.
    public var isReading: Bool { readingWanted && state == .open }

    /// This end's address, read from the socket (`getsockname`); nil once
    /// the transport is closed.
    public var localAddress: SocketAddress? { Sockets.localAddress(fileDescriptor) }
    /// The peer's address, read from the socket (`getpeername`) when asked;
    /// nil once the transport is closed.
    public var remoteAddress: SocketAddress? { Sockets.remoteAddress(fileDescriptor) }

    /// What an error names the connection by: the peer's address, or for a
    /// Unix socket whose peer is unnamed (a client that did not bind, a
    /// subprocess pipe) this end's path, or nothing when neither has one.
    var errorLabel: String? {
        if let remote = remoteAddress, remote != .unix(path: "") { return remote.description }
        if let local = localAddress, local != .unix(path: "") { return local.description }
        return nil
    }

    // MARK: Writing

    /// Queues a copy of `bytes`; they go out at the end of this loop iteration.
    ///
    /// - Throws: ``IOError`` (`.closed`) once the transport is closing;
    ///   ``EventLoopError/wrongThread(operation:)`` off the loop thread.
    public func write(_ bytes: UnsafeRawBufferPointer) throws {
        try checkWritable()
        sendQueue.append(copying: bytes, pool: loop.blocks)
        queued()
    }

    /// Queues a copy of `bytes`.
    public func write(_ bytes: some Sequence<UInt8>) throws {
        try checkWritable()
        let done: Void? = bytes.withContiguousStorageIfAvailable { sendQueue.append(copying: UnsafeRawBufferPointer($0), pool: loop.blocks) }
        if done == nil {
            let copy = Array(bytes)
            copy.withUnsafeBytes { sendQueue.append(copying: $0, pool: loop.blocks) }
        }
        queued()
    }

    /// Queues `buffer`'s valid bytes without copying them. The transport
    /// retains the buffer until the kernel has sent them; do not change it
    /// until ``writeBufferSize`` says they are gone (or use the copying `write`).
    public func write(_ buffer: IOBuffer) throws {
        try checkWritable()
        sendQueue.append(retaining: buffer)
        queued()
    }

    /// Closes the write side once everything queued is sent (`shutdown(SHUT_WR)`):
    /// the peer reads EOF, and this side can still receive.
    ///
    /// When the peer's EOF has come too (and ``TransportProtocol/eofReceived()``
    /// kept the connection open), nothing more can pass either way, so the
    /// transport then closes itself and `connectionLost(nil)` follows.
    /// asyncio leaves such a socket open until `close()`; closing it here
    /// means a protocol that half-closes both ways cannot leak its descriptor.
    public func writeEOF() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in writeEOF() }; return }
        guard state == .open, writeEnd == .none else { return }
        writeEnd = .wanted
        if sendQueue.isEmpty, !sending { shutdownWrite() }
    }

    private func checkWritable() throws {
        try loop.requireLoopThread("Transport.write")
        guard state == .open, writeEnd == .none else {
            throw IOError(operation: "write", errno: Errno(EPIPE), fd: fileDescriptor,
                          detail: writeEnd != .none && state == .open ? "the write side is shut down (writeEOF() or shutdown(.write))" : IOError.closedDetail)
        }
    }

    private func queued() {
        if !flushScheduled, !sending {
            flushScheduled = true
            loop.scheduleFlush(self)
        }
        checkWriteFlowControl()
    }

    private func checkWriteFlowControl() {
        if !writingPaused, sendQueue.count > high {
            writingPaused = true
            callProtocol("pauseWriting") { try $0.pauseWriting() }
        } else if writingPaused, sendQueue.count <= low {
            writingPaused = false
            callProtocol("resumeWriting") { try $0.resumeWriting() }
        }
    }

    /// Sends the front of the queue: one `send` for one contiguous region,
    /// one `sendmsg` over up to 16 regions. Called by the loop at the end of
    /// an iteration, and after each send completes while bytes remain.
    func flush() {
        flushScheduled = false
        guard !sending, state == .open || state == .closing, fileDescriptor >= 0 else { return }
        guard !sendQueue.isEmpty else {
            if writeEnd == .wanted { shutdownWrite() }
            return
        }
        let token = loop.handlers.token(handlerID, kind: Self.sendKind)
        let flags = Int32(MSG_NOSIGNAL)
        sending = true
        // One region (an echo, a short reply, one buffer): no iovec, no
        // scratch to take from the pool.
        if let region = sendQueue.singleRegion {
            loop.io.submit(.send(fd: fileDescriptor, buffer: UnsafeMutableRawPointer(mutating: region.base),
                                 count: UInt32(clamping: region.count), flags: flags), token: token)
            return
        }
        let scratch = loop.sendScratch.take()
        let (vectors, _) = sendQueue.fill(scratch.iovecs, max: SendScratch.vectors)
        sendScratch = scratch
        var message = msghdr()
        message.msg_iov = scratch.iovecs
        message.msg_iovlen = vectors
        scratch.message.pointee = message
        loop.io.submit(.sendmsg(fd: fileDescriptor, message: scratch.message, flags: UInt32(bitPattern: flags)), token: token)
    }

    private func sendCompleted(_ result: Int32) {
        sending = false
        if let scratch = sendScratch {
            sendScratch = nil
            loop.sendScratch.give(scratch)
        }
        if result > 0 { sendQueue.consume(Int(result), pool: loop.blocks) }
        switch state {
        case .aborting, .closed:
            finishIfIdle()
            return
        case .open, .closing:
            break
        }
        if result < 0 {
            if result == -EAGAIN || result == -EINTR {
                flush()
                return
            }
            if result == -EBADF { numberLost = true }
            abort(IOError(operation: "send", errno: Errno(result), fd: fileDescriptor, path: errorLabel))
            return
        }
        if writingPaused { checkWriteFlowControl() }
        if sendQueue.isEmpty { wakeSentWaiters() }
        if !sendQueue.isEmpty {
            flush()  // short send or more queued meanwhile: continue at once
        } else if writeEnd == .wanted {
            shutdownWrite()
        } else if state == .closing {
            finishIfIdle()
        }
    }

    private func shutdownWrite() {
        writeEnd = .done
        _ = Glibc.shutdown(fileDescriptor, Int32(SHUT_WR))
        if state == .closing {
            finishIfIdle()
        } else {
            closeIfBothEnded()
        }
    }

    /// The peer's EOF came (and was kept open) and this side's writing is
    /// shut down: nothing more can pass either way, so a protocol's
    /// transport closes (see ``writeEOF()``). Checked where either end comes.
    private func closeIfBothEnded() {
        if eofReceivedFlag, writeEnd == .done, closesWhenBothEnded { close() }
    }

    // MARK: Receiving

    private func startReceiving() {
        guard !receiving, readingWanted, state == .open, !eofReceivedFlag, !waitingForBuffers else { return }
        receiving = true
        loop.io.submit(.receiveStream(fd: fileDescriptor), token: loop.handlers.token(handlerID, kind: Self.receiveKind))
    }

    private func receiveCompleted(_ result: Int32, flags: UInt32) {
        let more = flags & CompletionFlag.more != 0
        if !more { receiving = false }
        if flags & CompletionFlag.buffer != 0 {
            loop.receivesThisPoll += 1
            if result == loop.io.receiveBuffers.size { loop.bulkReceiveThisPoll = true }
            let id = UInt16(truncatingIfNeeded: flags >> CompletionFlag.bufferShift)
            if result > 0, state == .open {
                if readingWanted && heldReceives == nil {
                    deliver(id, count: result)
                } else {
                    // Arrived after pauseReading, before the cancel took effect:
                    // kept, in order, for resumeReading.
                    if heldReceives == nil { heldReceives = Deque() }
                    heldReceives!.append((id, result))
                }
            } else {
                loop.io.receiveBuffers.recycle(id)
            }
        }
        guard !more else { return }
        // The receive stream ended.
        switch state {
        case .closing, .aborting, .closed:
            finishIfIdle()
            return
        case .open:
            break
        }
        if heldReceives != nil, result <= 0, result != -ECANCELED, result != -ENOBUFS {
            // EOF or an error must not overtake bytes received before it.
            heldEnd = result
            return
        }
        receiveEnded(result)
    }

    private func receiveEnded(_ result: Int32) {
        if result == 0 {
            eofReceived()
        } else if result == -ENOBUFS {
            // Every receive buffer is out: wait for some to come back (no timer).
            waitingForBuffers = true
            loop.waitForReceiveBuffers(self)
        } else if result == -ECANCELED {
            startReceiving()  // cancelled for pauseReading; resumeReading re-arms
        } else if result < 0 {
            if result == -EBADF { numberLost = true }
            abort(IOError(operation: "recv", errno: Errno(result), fd: fileDescriptor, path: errorLabel))
        } else {
            startReceiving()  // a single-shot receive (no multishot here): re-arm
        }
    }

    /// Receive buffers came back after ENOBUFS.
    func buffersAvailable() {
        waitingForBuffers = false
        startReceiving()
    }

    private func deliver(_ id: UInt16, count: Int32) {
        let buffers = loop.io.receiveBuffers
        defer { buffers.recycle(id) }
        guard let protocolObject else { return }
        do {
            try protocolObject.dataReceived(UnsafeRawBufferPointer(start: buffers.pointer(id), count: Int(count)))
        } catch {
            loop.reportProtocolError(error, "dataReceived")
            abort(error)
        }
    }

    private func eofReceived() {
        eofReceivedFlag = true
        var keepOpen = false
        if let protocolObject {
            do {
                keepOpen = try protocolObject.eofReceived()
            } catch {
                loop.reportProtocolError(error, "eofReceived")
                abort(error)
                return
            }
        }
        if keepOpen { closeIfBothEnded() } else { close() }
    }

    /// Stops calling ``TransportProtocol/dataReceived(_:)`` until
    /// ``resumeReading()``; bytes that arrive meanwhile wait in the kernel
    /// (or, on io_uring, in the receive buffers they landed in).
    public func pauseReading() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in pauseReading() }; return }
        guard readingWanted, state == .open else { return }
        readingWanted = false
        if receiving { loop.io.cancelArmed(loop.handlers.token(handlerID, kind: Self.receiveKind), fd: fileDescriptor) }
    }

    /// Resumes receiving after ``pauseReading()``: first what arrived in
    /// between, in order, then new bytes.
    public func resumeReading() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in resumeReading() }; return }
        guard !readingWanted, state == .open else { return }
        readingWanted = true
        if heldReceives != nil {
            // Delivered from a callback of their own, not from inside the
            // caller (which may be a protocol callback).
            loop.ready.append(.callback { [self] in
                while readingWanted, state == .open, let (id, count) = heldReceives?.popFirst() { deliver(id, count: count) }
                guard heldReceives?.isEmpty == true else { return }
                heldReceives = nil
                if let end = heldEnd {
                    heldEnd = nil
                    if state == .open { receiveEnded(end) }
                } else {
                    startReceiving()
                }
            })
        } else {
            startReceiving()
        }
    }

    // MARK: Closing

    /// Closes the connection once everything queued has been sent: no more
    /// bytes are received, `connectionLost(nil)` follows. Idempotent; safe
    /// from any thread.
    public func close() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in close() }; return }
        guard state == .open else { return }
        state = .closing
        stopReceiving()
        finishIfIdle()
    }

    /// Closes the connection at once, dropping what is queued:
    /// `connectionLost(nil)` follows. Safe from any thread.
    public func abort() {
        guard loop.isOnLoopThread else { loop.onLoopThread { [self] in abort(nil) }; return }
        abort(nil)
    }

    /// Suspends until the send queue is empty and no send is in flight (or the
    /// connection is gone): what a raw write to the socket must wait for, so
    /// it cannot overtake queued bytes.
    nonisolated(nonsending) func waitUntilSent() async {
        while unsent {
            await loop.suspendUncancellably { if unsent { sentWaiters.append($0) } else { $0.resume() } }
        }
    }

    /// Bytes are queued or in flight on a connection that can still send them.
    private var unsent: Bool { (!sendQueue.isEmpty || sending) && (state == .open || state == .closing) }

    private func wakeSentWaiters() {
        guard !sentWaiters.isEmpty else { return }
        let waiters = sentWaiters
        sentWaiters = []
        for waiter in waiters { waiter.resume() }
    }

    func abort(_ error: (any Error)?) {
        guard state == .open || state == .closing else { return }
        state = .aborting
        if closeError == nil { closeError = error }
        stopReceiving()
        if sending { loop.io.cancel(loop.handlers.token(handlerID, kind: Self.sendKind)) }
        finishIfIdle()
    }

    private func stopReceiving() {
        if receiving { loop.io.cancelArmed(loop.handlers.token(handlerID, kind: Self.receiveKind), fd: fileDescriptor) }
        if waitingForBuffers { waitingForBuffers = false }
    }

    /// Closes the socket once no operation on it is in flight (their memory
    /// and their fd must outlive them), then reports `connectionLost` from a
    /// callback of its own.
    private func finishIfIdle() {
        guard !receiving, !sending else { return }
        switch state {
        case .open, .closed: return
        case .closing: if !sendQueue.isEmpty { return }
        case .aborting: break
        }
        state = .closed
        sendQueue.removeAll(pool: loop.blocks)
        wakeSentWaiters()
        if let held = heldReceives {
            for (id, _) in held { loop.io.receiveBuffers.recycle(id) }
            heldReceives = nil
        }
        let fd = fileDescriptor
        fileDescriptor = -1
        // EBADF: the descriptor was closed behind our back and its number may
        // belong to someone else by now; closing it again would close theirs.
        if !numberLost {
            loop.io.willClose(fd: fd)
            Glibc.close(fd)
        }
        loop.handlers.unregister(handlerID)
        // A ready item of its own rather than a callback: no closure context
        // to allocate for every connection that ends.
        loop.ready.append(.connectionLost(self))
    }

    /// Runs as the ``ReadyItem/connectionLost(_:)`` that ``finishIfIdle()``
    /// queued, once per transport: the protocol hears the end, the server
    /// lets go of the connection.
    func reportLost() {
        let protocolObject = self.protocolObject
        self.protocolObject = nil
        protocolObject?.connectionLost(closeError)
        server?.removeTransport(self)
        server = nil
    }

    /// Internal state, for diagnosing a stall.
    var debugState: String {
        "fd \(fileDescriptor) state \(state) receiving \(receiving) wanted \(readingWanted) buffers-wait \(waitingForBuffers) "
            + "held \(heldReceives?.count ?? -1) heldEnd \(heldEnd.map { "\($0)" } ?? "-") sending \(sending) queue \(sendQueue.count) "
            + "paused-writing \(writingPaused) flushScheduled \(flushScheduled) eof \(eofReceivedFlag)"
    }

    // MARK: Completions

    /// The loop is closing: abort, reporting `.closed` to the protocol.
    func loopClosing() {
        abort(IOError(operation: "connection", errno: Errno(ECANCELED), fd: fileDescriptor, detail: IOError.closedDetail + " (the event loop closed)"))
    }

    func loopAbandoned() {
        guard state != .closed else { return }
        if closeError == nil {
            closeError = IOError(operation: "connection", errno: Errno(ECANCELED), fd: fileDescriptor,
                                 detail: IOError.closedDetail + " (the event loop closed)")
        }
        // The kernel may still use the blocks and buffers: do not recycle them.
        receiving = false
        sending = false
        state = .aborting
        heldReceives = nil
        sendQueue = SendQueue()
        finishIfIdle()
    }

    func handleCompletion(kind: UInt8, result: Int32, flags: UInt32) {
        if kind == Self.receiveKind {
            receiveCompleted(result, flags: flags)
        } else {
            sendCompleted(result)
        }
    }

    private func callProtocol(_ name: String, _ body: (any TransportProtocol) throws -> Void) {
        guard let protocolObject else { return }
        do {
            try body(protocolObject)
        } catch {
            loop.reportProtocolError(error, name)
            abort(error)
        }
    }
}
