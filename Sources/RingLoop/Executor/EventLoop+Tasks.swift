import CUring
import Synchronization

extension EventLoop {
    /// Starts `operation` as a task whose every nonisolated step runs on this
    /// loop: asyncio's `create_task`. Safe from any thread.
    ///
    /// ``run(backend:debug:_:)`` and ``close()`` cancel the spawned tasks
    /// still pending, and wait for them. An error a spawned task ends with
    /// that nobody retrieves goes to the exception handler (see ``LoopTask``).
    /// After ``close()`` the task fails at once with
    /// ``EventLoopError/closed(operation:)``.
    ///
    /// ```swift
    /// let task = loop.spawn { try await fetch() }
    /// let value = try await task.value
    /// ```
    @discardableResult
    public func spawn<T: Sendable>(
        name: String? = nil,
        _ operation: sending @escaping () async throws -> T
    ) -> LoopTask<T> {
        let record = SpawnRecord(loop: self)
        if isClosed {
            // Done before it starts; the error goes to whoever awaits it, and
            // is not reported to a closed loop.
            record.finish(nil)
            let task = Task<T, any Error> { throw EventLoopError.closed(operation: "spawn") }
            return LoopTask(task: task, record: record)
        }
        let id = tasks.withLock { $0.makeID() }
        let task = Task(name: name, executorPreference: record) { [self] in
            defer { taskFinished(id) }
            do {
                let value = try await record.serving(operation)
                record.finish(nil)
                return value
            } catch {
                record.finish(error)
                throw error
            }
        }
        tasks.withLock { $0.register(id, task) }
        return LoopTask(task: task, record: record)
    }

    /// Starts `operation` as a task on this loop from the loop thread, with a
    /// closure that may capture the loop thread's non-`Sendable` objects:
    /// tokio's `spawn_local`, or asyncio's `loop.create_task` called from a
    /// protocol callback.
    ///
    /// ``spawn(name:_:)`` takes a `sending` closure, which a callback cannot
    /// form around its own state (a proxy's connection objects, say): that
    /// state is reachable from the callback's `self`. Here the compiler's
    /// proof is replaced by a check at the call: the caller is on the
    /// running loop's thread, and the task runs every nonisolated step on that
    /// same thread, so the callback and the task take turns with the state
    /// and never touch it at once. The contract, as for ``callSoon(file:line:_:)``:
    /// what the closure captures belongs to the loop thread (its callbacks,
    /// tasks started on this loop), not to a task that only visits the loop
    /// (inside `withTaskExecutorPreference`) and goes on elsewhere. An
    /// actor-isolated closure still runs on its actor. Everything else is as
    /// ``spawn(name:_:)``: the loop cancels the task at close, and an error
    /// nobody retrieves is reported.
    ///
    /// ```swift
    /// func connectionMade(_ transport: Transport) {   // a proxy's downstream side
    ///     transport.pauseReading()
    ///     _ = try? transport.loop.spawnLocal { [self] in
    ///         upstream = try await transport.loop.createConnection(host: "10.0.0.2", port: 80) { Upstream(self) }.0
    ///         transport.resumeReading()
    ///     }
    /// }
    /// ```
    ///
    /// - Throws: ``EventLoopError/wrongThread(operation:)`` off the running
    ///   loop's thread (a loop that is not running yet included: use
    ///   ``spawn(name:_:)`` there), ``EventLoopError/closed(operation:)``
    ///   after ``close()``.
    @discardableResult
    public func spawnLocal<T: Sendable>(
        name: String? = nil,
        _ operation: @escaping () async throws -> T
    ) throws(EventLoopError) -> LoopTask<T> {
        try requireLoopThread("spawnLocal")
        // Safe to hand over: see above; the closure only ever runs on this
        // thread (or on its own actor).
        let local = UnsafeSendable(operation)
        return spawn(name: name) { try await local.value() }
    }

    /// Runs `operation` as a task on this loop and waits for it, passing the
    /// caller's cancellation on to it: how a server's `waitClosed` and
    /// `serveForever` serve a caller on another thread (another loop of a
    /// group, a task on Swift's global executor).
    ///
    /// - Throws: ``EventLoopError/closed(operation:)`` after ``close()``;
    ///   whatever `operation` throws.
    nonisolated(nonsending) func runOnLoop(_ name: String, _ operation: sending @escaping () async throws -> Void) async throws {
        let task = spawn(name: name, operation)
        try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    /// A spawned task ended. Not inlined: the task's outermost frame stays
    /// small, which keeps a parked task within the task allocator's first
    /// slab (see Docs/Transports.md, "Memory per idle connection").
    @inline(never)
    private func taskFinished(_ id: UInt64) {
        tasks.withLock { $0.finish(id) }
    }

    /// Hands `context` to the exception handler on the loop thread, or logs
    /// it when the loop is closed.
    func reportFromAnyThread(_ context: ExceptionContext) {
        if isOnLoopThread {
            pendingExceptions.append(context)
            return
        }
        do {
            try callSoonThreadsafe { [self] in callExceptionHandler(context) }
        } catch {
            defaultExceptionHandler(context)
        }
    }

    /// Number of spawned tasks not yet finished.
    public var pendingTaskCount: Int { tasks.withLock { $0.count } }

    // MARK: Sleeping

    /// Suspends the calling task for `duration` using the loop's timers.
    ///
    /// Cancellation frees the timer at once and throws `CancellationError`.
    /// Must be called from a task running on this loop.
    ///
    /// ```swift
    /// try await loop.sleep(for: .milliseconds(10))
    /// ```
    public nonisolated(nonsending) func sleep(for duration: Duration) async throws {
        try await sleep(until: .now + duration)
    }

    /// Suspends the calling task until `deadline` on the loop's clock.
    public nonisolated(nonsending) func sleep(until deadline: LoopInstant) async throws {
        try checkLoopThread("sleep")
        try Task.checkCancellation()
        let id = timers.reserve()
        try await withLoopCancellationHandler { _ in
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<Void, any Error>) in
                if !timers.arm(id, deadline: deadline.nanoseconds, .resume(continuation)) {
                    continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            onLoopThread { [self] in cancelSleepOnLoop(id) }
        }
        await returnToLoopThread()
    }

    /// Sleeps on the loop running the current task: `EventLoop.sleep(for:)`.
    ///
    /// - Throws: ``EventLoopError/noRunningLoop`` outside a loop, or
    ///   `CancellationError`.
    public static nonisolated(nonsending) func sleep(for duration: Duration) async throws {
        try await running().sleep(for: duration)
    }

    private func cancelSleepOnLoop(_ id: TimerID) {
        if case .resume(let continuation) = timers.cancel(id) {
            continuation.resume(throwing: CancellationError())
        }
    }

    // MARK: Offloading

    /// Runs blocking or CPU-bound `work` on the loop's thread pool and returns
    /// its result to the calling task: asyncio's `run_in_executor`.
    ///
    /// Cancelling the task before a worker picks the work up removes it from
    /// the queue and throws `CancellationError`; once started, it runs to the end.
    ///
    /// ```swift
    /// let digest = try await loop.offload { sha256(of: bigFile) }
    /// ```
    public nonisolated(nonsending) func offload<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await offload(to: threadPool, work)
    }

    /// The pool name resolution runs on: two threads of its own, made on
    /// first use, so a slow resolver cannot starve file I/O.
    var resolver: ThreadPool {
        get throws {
            try resolverPool.withLock { (pool: inout ThreadPool?) throws(EventLoopError) -> ThreadPool in
                if let pool { return pool }
                if isClosed { throw .closed(operation: "getaddrinfo") }
                do throws(Errno) {
                    let made = try ThreadPool(threads: 2, name: "RingLoop-dns")
                    pool = made
                    return made
                } catch {
                    throw .threadStartFailed(purpose: "the name resolver", errno: error)
                }
            }
        }
    }

    /// ``offload(_:)`` on a given pool.
    nonisolated(nonsending) func offload<T: Sendable>(to pool: ThreadPool, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        if closedFlag.load(ordering: .relaxed) { throw EventLoopError.closed(operation: "offload") }
        try Task.checkCancellation()
        let state = OffloadState<T>()
        let value = try await withLoopCancellationHandler { _ in
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<T, any Error>) in
                let item = ThreadPool.WorkItem { [self] in
                    let result = Result { try work() }
                    // Resumed on the loop's own thread (through the inbox), so
                    // the task never resumes while the worker still touches
                    // the continuation; after close, resumed here.
                    do { try callSoonThreadsafe { continuation.resume(with: result) } } catch { continuation.resume(with: result) }
                }
                state.install(item, continuation)
                if !pool.submit(item), item.cancel() {
                    continuation.resume(throwing: EventLoopError.closed(operation: "offload"))
                }
            }
        } onCancel: {
            state.cancel()
        }
        await returnToLoopThread()
        return value
    }

    /// Alias of ``offload(_:)`` with asyncio's name.
    public nonisolated(nonsending) func runInExecutor<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await offload(work)
    }
}

/// Connects an offloaded work item with its task's cancellation handler,
/// which may run on any thread and before the item exists.
private final class OffloadState<T>: Sendable {
    private struct State: @unchecked Sendable {
        var item: ThreadPool.WorkItem?
        var continuation: UnsafeContinuation<T, any Error>?
        var cancelled = false
    }
    private let state = Locked(State())

    func install(_ item: ThreadPool.WorkItem, _ continuation: UnsafeContinuation<T, any Error>) {
        let cancelNow = state.withLock { s in
            s.item = item
            s.continuation = continuation
            return s.cancelled
        }
        if cancelNow { cancel() }
    }

    func cancel() {
        let (item, continuation) = state.withLock { s in
            s.cancelled = true
            return (s.item, s.continuation)
        }
        // Only the side that wins the item's start/cancel race resumes.
        if let item, let continuation, item.cancel() {
            continuation.resume(throwing: CancellationError())
        }
    }
}
