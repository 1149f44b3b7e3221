import Glibc

/// What a ``SocketStream`` keeps between its transport and its tasks: the
/// protocol object of the stream's ``Transport`` (asyncio's
/// `StreamReaderProtocol` and `StreamReader` in one).
///
/// Received bytes wait in ``inbound`` (pooled blocks, none while empty) until
/// a task reads them; a reader finding them there never suspends. A reader
/// that finds nothing suspends once and is resumed when bytes, the end of
/// the stream or an error arrive. Above twice the read limit the transport
/// pauses receiving, and resumes once a reader has taken the queue back
/// under the limit. Loop-thread only.
final class StreamState: TransportProtocol, CancellableWait, @unchecked Sendable {
    let loop: EventLoop
    /// The transport this object is the protocol of. Unowned: the stream
    /// holds both; the transport drops this object at `connectionLost`.
    unowned(unsafe) var transport: Transport
    // The queue and the waiter slots are touched on every read. This object
    // is confined to its loop's thread and takes waiters out before it
    // resumes them, so the runtime's dynamic exclusivity checks are off for
    // them (as for `Transport`'s send queue).
    @exclusivity(unchecked) var inbound = ByteChain()
    /// Why the connection failed, until a caller has been told.
    var failure: (any Error)?
    /// asyncio's StreamReader limit: lines and separators longer than this
    /// are an error; the queue pauses receiving at twice it.
    private(set) var limit: Int

    // One waiting reader at a time; waiting writers and closers in lists.
    /// Wait ids tell a late cancel or timer from the current wait. 32 bits:
    /// one would have to arrive 2³² waits late to be mistaken, and the
    /// object is per connection (see Docs/Transports.md).
    private var readerID: UInt32 = 0
    private var nextID: UInt32 = 0
    @exclusivity(unchecked) private var readerTimer: TimerHandle?
    @exclusivity(unchecked) private var drainWaiters: [(id: UInt32, continuation: UnsafeContinuation<Wake, Never>)] = []
    @exclusivity(unchecked) private var lostWaiters: [UnsafeContinuation<Void, Never>] = []
    @exclusivity(unchecked) private var reader: UnsafeContinuation<Wake, Never>?
    /// Writers waiting for a write of many chunks to end (see ``waitForWriteTurn()``).
    private var turnWaiters: UInt32 = 0
    /// What was queued when the reader looked and chose to wait (its low 32
    /// bits: the queue pauses far below 4 GiB), in the object rather than in
    /// park()'s frame, which every idle connection's task holds (the
    /// object's allocation stays at 152 usable bytes with it).
    private var queuedAtPark: UInt32 = 0

    // The flags last, together: one object per connection, no padding
    // between them (see Docs/Transports.md, "Memory per idle connection").
    /// The peer closed its side (or the connection is gone).
    private(set) var eof = false
    private(set) var lost = false
    /// ``SocketStream/close()`` was called: reads and writes now fail with `.closed`.
    var closedLocally = false
    private var receivingPaused = false
    /// A reader waits for more than the pause mark lets queue up
    /// (`readExactly` of a large count, `readToEnd`): receiving stays on.
    private var growing = false
    /// A write already threw the error the connection is ending with (the
    /// transport's, before `connectionLost`): it is not thrown a second time.
    var lossReported = false
    var writePaused = false
    /// A write of more than one chunk is under way (see
    /// ``SocketStream/writeChunkSize``): other writes wait until it ends, so
    /// that its bytes stay together on the wire.
    private(set) var bulkWriting = false

    enum Wake { case ready, cancelled, timedOut }

    init(loop: EventLoop, transport: Transport, limit: Int) {
        self.loop = loop
        self.transport = transport
        self.limit = limit
    }

    // MARK: Protocol callbacks

    func dataReceived(_ bytes: UnsafeRawBufferPointer) {
        inbound.append(bytes, pool: loop.blocks)
        if !receivingPaused, !growing, inbound.count > 2 * limit {
            receivingPaused = true
            transport.pauseReading()
        }
        wakeReader(.ready)
    }

    func eofReceived() -> Bool {
        eof = true
        wakeReader(.ready)
        // Keep the connection open: this side may still write (half-close).
        return true
    }

    /// Ends a waiting read (the stream is being closed locally).
    func wakeForClose() {
        closedLocally = true
        wakeReader(.ready)
    }

    func connectionLost(_ error: (any Error)?) {
        lost = true
        eof = true
        if let error, failure == nil, !lossReported { failure = error }
        wakeReader(.ready)
        wakeWriters()
        let closers = lostWaiters
        lostWaiters = []
        for waiter in closers { waiter.resume() }
    }

    func pauseWriting() { writePaused = true }

    func resumeWriting() {
        writePaused = false
        wakeWriters()
    }

    /// Wakes every waiting writer to look again at what it waits for.
    private func wakeWriters() {
        guard !drainWaiters.isEmpty else { return }
        let drains = drainWaiters
        drainWaiters = []
        for waiter in drains { waiter.continuation.resume(returning: .ready) }
    }

    /// A new limit; receiving resumes if the queue is now under it.
    func setLimit(_ newLimit: Int) {
        limit = newLimit
        resumeReceivingIfUnderLimit()
    }

    // MARK: Reading

    /// Consumed `n` bytes from ``inbound``: resumes receiving once the queue
    /// is back under the limit.
    func consumed(_ n: Int) {
        inbound.consume(n, pool: loop.blocks)
        resumeReceivingIfUnderLimit()
    }

    private func resumeReceivingIfUnderLimit() {
        if receivingPaused, inbound.count <= limit {
            receivingPaused = false
            transport.resumeReading()
        }
    }

    /// Returns at once when bytes are queued or the stream has ended;
    /// otherwise suspends until one of those, cancellation (throws
    /// CancellationError), or `timeout` (throws ``IOError`` `.timedOut`).
    /// `needed`: wait until at least that many bytes are queued.
    ///
    /// The bytes stay queued until the caller takes them, so a wait that is
    /// cancelled or times out loses none. A `needed` past the pause mark
    /// (twice the limit) keeps receiving on until it is met, as asyncio's
    /// `readexactly` lets its buffer grow: the queue then holds up to
    /// `needed` bytes.
    nonisolated(nonsending) func waitForData(needed: Int = 1, timeout: Duration? = nil, operation: String) async throws {
        if needed > 2 * limit, inbound.count < needed { return try await waitGrowing(needed: needed, timeout: timeout, operation: operation) }
        // Errors are built in synchronous helpers: this frame is part of every
        // parked reader's task, and kept small (see SocketStream.read(into:)).
        while inbound.count < needed, !eof, !closedLocally {
            try checkCanPark(operation, timeout: timeout)
            try wakeResult(await park(), operation, timeout)
        }
    }

    /// ``waitForData(needed:timeout:operation:)`` past the pause mark: the
    /// transport receives until `needed` bytes are queued or the wait ends.
    /// Out of line, so the common wait's frame stays small.
    @inline(never)
    private nonisolated(nonsending) func waitGrowing(needed: Int, timeout: Duration?, operation: String) async throws {
        // Another reader's wait is not this one's to change: that is EBUSY.
        guard reader == nil else { return try checkCanPark(operation, timeout: timeout) }
        growing = true
        if receivingPaused {
            receivingPaused = false
            transport.resumeReading()
        }
        // The next receive past the mark pauses again once the wait is over.
        defer { growing = false }
        while inbound.count < needed, !eof, !closedLocally {
            try checkCanPark(operation, timeout: timeout)
            try wakeResult(await park(), operation, timeout)
        }
    }

    /// Throws when a reader may not park now: another reader already waits.
    /// Arms the read timer otherwise. A cancelled task is let through: park()
    /// looks at the flag once, where it has to (Task.isCancelled costs a
    /// retain and a status load, and this runs once per wait).
    @inline(never)
    private func checkCanPark(_ operation: String, timeout: Duration?) throws {
        if reader != nil {
            throw IOError(operation: operation, errno: Errno(EBUSY), fd: transport.fileDescriptor,
                          detail: "another task is already reading this stream; one reader at a time")
        }
        if let timeout { armReadTimer(timeout) }
    }

    @inline(never)
    private func wakeResult(_ wake: Wake, _ operation: String, _ timeout: Duration?) throws {
        switch wake {
        case .ready: return
        case .cancelled: throw CancellationError()
        case .timedOut: throw timeoutError(operation, timeout)
        }
    }

    /// The one suspension of a waiting reader.
    @inline(never)
    private nonisolated(nonsending) func park() async -> Wake {
        nextID &+= 1
        let id = nextID
        readerID = id
        queuedAtPark = UInt32(truncatingIfNeeded: inbound.count)
        return await loop.suspend(cancelling: self, id: id) {
            reader = $0
            // A cancel that ran before this wait was recorded has set the
            // flag and will not come again: look at it here. wakeReader also
            // stops the read timer checkCanPark armed. So may bytes, the end
            // or a close: for a caller on an actor, the wait can be recorded
            // a few loop steps after the caller looked (an executor switch
            // goes round the ready queue, or the main queue), and what came
            // in between found no reader to wake.
            if Task.isCancelled {
                wakeReader(.cancelled)
            } else if UInt32(truncatingIfNeeded: inbound.count) != queuedAtPark || eof || closedLocally {
                wakeReader(.ready)
            }
        }
    }

    /// Loop thread: ends wait `id` (the reader's, or a writer's) with
    /// `.cancelled` if it is still waiting.
    func cancelWait(_ id: UInt32) {
        if readerID == id {
            wakeReader(.cancelled)
        } else if let index = drainWaiters.firstIndex(where: { $0.id == id }) {
            drainWaiters.remove(at: index).continuation.resume(returning: .cancelled)
        }
    }

    /// The error a timed-out wait throws.
    func timeoutError(_ operation: String, _ timeout: Duration?) -> IOError {
        IOError(operation: operation, errno: Errno(ETIMEDOUT), fd: transport.fileDescriptor, detail: "no data within \(timeout ?? .zero)")
    }

    private func armReadTimer(_ timeout: Duration) {
        let id = nextID &+ 1  // the id park() is about to take
        readerTimer = try? loop.callLater(timeout) { [self] in readTimerFired(id) }
    }

    /// Ends wait `id` as timed out. A caller on an actor records its wait a
    /// few loop steps after it looked (see park()), and a short timeout can
    /// come in between: then it looks again each step until the wait is
    /// recorded or has ended, rather than be lost and leave the read
    /// waiting with no timeout.
    private func readTimerFired(_ id: UInt32) {
        guard readerID == id else { return }
        if reader != nil {
            wakeReader(.timedOut)
        } else {
            try? loop.callSoon { [self] in readTimerFired(id) }
        }
    }

    private func wakeReader(_ wake: Wake) {
        guard let continuation = reader else { return }
        reader = nil
        readerID = 0
        if let timer = readerTimer {
            readerTimer = nil
            timer.cancel()
        }
        continuation.resume(returning: wake)
    }

    /// Throws `.closed` after a local close, or the connection's error once,
    /// to the first caller after it failed.
    func throwFailure(_ operation: String = "read") throws {
        if closedLocally {
            throw IOError(operation: operation, errno: Errno(EBADF), detail: IOError.closedDetail)
        }
        if let failure {
            self.failure = nil
            throw failure
        }
    }

    // MARK: Writing and closing

    /// Suspends while the transport's queue is above its high-water mark.
    nonisolated(nonsending) func drain() async throws {
        if writePaused { try await waitAsWriter { writePaused } }
    }

    /// Suspends while another task's write of more than one chunk is under
    /// way. Cancelled here, a write has queued nothing: the stream stays intact.
    nonisolated(nonsending) func waitForWriteTurn() async throws {
        guard bulkWriting else { return }
        turnWaiters += 1
        defer { turnWaiters -= 1 }
        try await waitAsWriter { bulkWriting }
    }

    /// Takes the write side for a write of more than one chunk; the caller
    /// has waited for its turn and calls ``endBulkWrite()`` when done.
    func beginBulkWrite() { bulkWriting = true }

    /// Gives the write side back; true when writers were waiting for it
    /// (they are woken, or were already, and should get their turn before
    /// the same task takes it again).
    @discardableResult
    func endBulkWrite() -> Bool {
        bulkWriting = false
        wakeWriters()
        return turnWaiters > 0
    }

    /// Suspends while `blocked` holds and the connection lives; every change
    /// a writer may wait for wakes all of them to look again.
    private nonisolated(nonsending) func waitAsWriter(while blocked: () -> Bool) async throws {
        while blocked(), !lost {
            if Task.isCancelled { throw CancellationError() }
            nextID &+= 1
            let id = nextID
            let wake = await loop.suspend(cancelling: self, id: id) { (continuation: UnsafeContinuation<Wake, Never>) in
                // Cancelled before the wait was recorded, or unblocked
                // meanwhile: see park().
                if Task.isCancelled {
                    continuation.resume(returning: .cancelled)
                } else if !blocked() || lost {
                    continuation.resume(returning: .ready)
                } else {
                    drainWaiters.append((id, continuation))
                }
            }
            if wake == .cancelled { throw CancellationError() }
        }
    }

    /// Suspends until `connectionLost`. Not cancellable by itself: the caller
    /// turns cancellation into an abort, which ends the wait promptly.
    nonisolated(nonsending) func waitUntilLost() async {
        if lost { return }
        await loop.suspendUncancellably { if lost { $0.resume() } else { lostWaiters.append($0) } }
    }

    /// Gives back what the queue holds (the stream is gone).
    func discard() {
        inbound.removeAll(pool: loop.blocks)
    }
}
