/// A wait on the loop that its task's cancellation can end: a parked stream
/// reader or writer, a pending operation, a waiter in a list.
protocol CancellableWait: AnyObject, Sendable {
    /// Loop thread: ends wait `id` as cancelled if it is still the current
    /// one. A late call (the wait already ended) must do nothing.
    func cancelWait(_ id: UInt32)
}

/// One cancellation handler for the whole life of a task the loop spawned,
/// instead of one per suspension: the task's route, kept in its
/// ``SpawnRecord``.
///
/// `withTaskCancellationHandler` around every wait costs a stream read more
/// than the rest of its work on the loop: adding and removing the handler
/// each take the task's status-record lock, and the function's isolation
/// parameter and `@concurrent` operation cost four executor switches, each
/// of which takes the same lock again to look up the task's executor
/// preference (Docs/Transports.md, "Why there are no executor hops").
/// ``EventLoop/spawn(name:_:)`` installs one handler around the task's body
/// instead; a wait then only records itself in the task's record
/// (``arm(_:_:)``) while it is suspended, and the handler, when the task is
/// cancelled, ends whichever wait is recorded.
///
/// The loop knows the record of the step it runs: the record is the task's
/// preferred executor (SpawnRecord+Executor.swift). Child tasks inherit that
/// preference but not the task's cancellation, so the record also keeps its
/// task's identity, the job the loop runs for it (``EventLoop/runningJob``;
/// every step of a task is the same job, the task itself). A wait in any
/// other task (a child, an actor's job, one made with
/// `Task(executorPreference: loop)`) finds no route of its own and installs
/// its own handler, as before.
extension SpawnRecord {
    /// Runs `operation`, the body of this record's task, with its route.
    func serving<T>(_ operation: () async throws -> T) async throws -> T {
        // A task that starts off the loop (one the closed loop handed off)
        // gets no route; its waits, if any, install their own handler.
        guard loop.isOnLoopThread, loop.runningRecord === self else { return try await operation() }
        owner = loop.runningJob
        return try await withTaskCancellationHandler(operation: operation) { cancelWaiting() }
    }

    /// The route of the task the loop is running, if it has one.
    @inline(__always)
    static func route(on loop: EventLoop) -> SpawnRecord? {
        guard let record = loop.runningRecord, record.owner == loop.runningJob else { return nil }
        return record
    }

    /// Records the wait the task is about to suspend in.
    @inline(__always)
    func arm(_ target: some CancellableWait, _ id: UInt32) {
        waitTarget = target
        waitID = id
    }

    /// The wait ended: a cancel from now on must not reach it (a pending
    /// operation's slot, say, is recycled).
    @inline(__always)
    func disarm() { waitTarget = nil }

    /// The task's cancellation handler, on any thread.
    private func cancelWaiting() {
        _ = loop.onLoopThread { [self] in
            guard let target = waitTarget as? any CancellableWait else { return }
            waitTarget = nil
            target.cancelWait(waitID)
        }
    }
}

extension UnownedJob {
    /// The job's address, as a number to compare. A task's job is the task
    /// itself, the same object at every step.
    var identity: UInt { unsafeBitCast(self, to: UInt.self) }
}

extension EventLoop {
    /// Suspends the calling task in `body`'s continuation, with its
    /// cancellation routed to `target.cancelWait(id)` on the loop thread.
    ///
    /// `body` must resume at once when `Task.isCancelled` is already set: a
    /// cancel that ran before the wait was recorded does not come again.
    nonisolated(nonsending) func suspend<T>(
        cancelling target: some CancellableWait,
        id: UInt32,
        _ body: (UnsafeContinuation<T, Never>) -> Void
    ) async -> T {
        // Through a local: tested in place, Swift 6.3's debug build emits a
        // broken phi and the compiler aborts.
        let isolation = #isolation
        if let route = SpawnRecord.route(on: self) {
            routedWaits &+= 1
            route.arm(target, id)
            // `withUnsafeContinuation` first hops to the caller's isolation,
            // and every hop of a task with an executor preference takes its
            // status-record lock to look the preference up: 280 user-space
            // instructions of a 6,400-instruction echo. A nonisolated caller
            // (the usual one: a spawned task's own code) is already where
            // that hop would go, so it awaits without it. The hop back after
            // the resume is the caller's own and stays: code isolated to an
            // actor takes the ordinary path and gets both hops.
            let value: T
            if isolation == nil {
                value = await _unsafeInheritExecutor_withUnsafeContinuation(body)
            } else {
                value = await suspendUncancellably(body)
            }
            route.disarm()
            return value
        }
        if isolation == nil { return await suspendWithPlainHandler(cancelling: target, id: id, body) }
        return await suspendWithHandler(cancelling: target, id: id, body)
    }

    /// Suspends in `body`'s continuation with no cancellation handler of its
    /// own, and comes back to the loop thread before returning. For a close
    /// or a drain that must not be cut short, and for
    /// ``suspend(cancelling:id:_:)``'s routed wait from an actor, whose
    /// cancellation the route carries.
    ///
    /// Out of line, as the return to the loop thread is: every parked stream
    /// task holds `suspend`'s frame, and one more await in it pushed an idle
    /// stream connection past the task allocator's first slab (2,008 →
    /// 3,031 bytes; Docs/Transports.md, "Memory per idle connection").
    @inline(never)
    nonisolated(nonsending) func suspendUncancellably<T>(_ body: (UnsafeContinuation<T, Never>) -> Void) async -> T {
        let value = await withUnsafeContinuation(body)
        await returnToLoopThread()
        return value
    }

    /// Brings a caller isolated to an actor back to the loop thread after a
    /// wait, before it touches the loop's state again.
    ///
    /// A default actor entered from a loop task runs its jobs on the loop
    /// (the task's executor preference) while it is idle; but a task resumed
    /// while another thread is running the actor continues on that thread,
    /// and what a stream or a waiter keeps belongs to the loop thread alone
    /// (ThreadSanitizer caught a stream read's tail consuming its queue on a
    /// global-executor thread while the loop used the same block pool). Each
    /// round trip through the inbox resumes the task again; it is back on the
    /// loop once the actor is idle when the resume comes. A closed loop has no
    /// thread left to race with. A nonisolated caller (a loop task's own
    /// code) resumes on its executor preference, the loop: nothing to do,
    /// and that check is inlined.
    @inline(__always)
    nonisolated(nonsending) func returnToLoopThread() async {
        let isolation = #isolation
        if isolation != nil { await comeBackToLoopThread() }
    }

    /// ``returnToLoopThread()``'s round trips through the inbox.
    @inline(never)
    private nonisolated(nonsending) func comeBackToLoopThread() async {
        while !isOnLoopThread {
            let posted: Bool = await withUnsafeContinuation { continuation in
                do {
                    try callSoonThreadsafe { [self] in
                        loopReturns &+= 1
                        continuation.resume(returning: true)
                    }
                } catch {
                    continuation.resume(returning: false)
                }
            }
            if !posted { return }
        }
    }

    /// ``suspend(cancelling:id:_:)`` for a caller isolated to an actor, with
    /// no route: a handler of its own. Out of line, as the other waits are, so
    /// that the frame of every wait, parked in each idle connection's task,
    /// stays small (Docs/Transports.md, "Memory per idle connection").
    ///
    /// `isolation` is a parameter, not inherited (`nonisolated(nonsending)`):
    /// a closure that uses an `isolated` parameter is isolated to it
    /// (SE-0420), so the handler's operation, which the standard library
    /// declares `@concurrent`, runs `body` in the caller's isolation, on the
    /// loop thread. (``withLoopCancellationHandler(operation:onCancel:)``
    /// cannot serve here: `body` belongs to the caller, and the compiler
    /// cannot tell that the isolation it would run in is the caller's.)
    @inline(never)
    private func suspendWithHandler<T>(
        cancelling target: some CancellableWait,
        id: UInt32,
        isolation: isolated (any Actor)? = #isolation,
        _ body: (UnsafeContinuation<T, Never>) -> Void
    ) async -> T {
        let value = await withTaskCancellationHandler(operation: {
            _ = isolation
            return await withUnsafeContinuation(body)
        }, onCancel: { [self] in
            _ = onLoopThread { target.cancelWait(id) }
        }, isolation: isolation)
        await returnToLoopThread()
        return value
    }

    /// ``suspend(cancelling:id:_:)`` for a nonisolated caller with no route
    /// (a child task of a loop task: `async let`, `withTimeout`'s operation):
    /// the handler's `@concurrent` operation lands on the task's preference,
    /// the loop, so the plain handler serves, one executor switch cheaper
    /// than the isolated one. Out of line, as the others.
    @inline(never)
    private nonisolated(nonsending) func suspendWithPlainHandler<T>(
        cancelling target: some CancellableWait,
        id: UInt32,
        _ body: (UnsafeContinuation<T, Never>) -> Void
    ) async -> T {
        await withTaskCancellationHandler {
            await withUnsafeContinuation(body)
        } onCancel: { [self] in
            _ = onLoopThread { target.cancelWait(id) }
        }
    }
}

/// `withTaskCancellationHandler` whose operation runs in the caller's
/// isolation: the waits that install a handler of their own around a wait
/// of their own (`sleep`, `offload`, a stream's close, the servers' waits)
/// go through it.
///
/// Why not `withTaskCancellationHandler` alone: its operation closure is
/// `@concurrent`, so the runtime runs it on the generic executor. A loop task
/// prefers the loop, which keeps it there; but for a caller on an actor whose
/// task does not prefer the loop (the main actor served by
/// ``MainActorBridge``, a loop-bound actor called from a plain `Task { }`)
/// that is a thread of Swift's global pool, where the operation touched loop
/// state (`sleep` armed its timer there: ThreadSanitizer caught it). Here
/// the operation takes the caller's isolation as its `isolated` parameter:
/// the handler's closure only calls it, and the call goes to the caller's
/// isolation, the loop thread, before any of its code runs. A loop task pays
/// what the plain handler cost (the shim spares the handler's own hop in;
/// `count-instructions.sh --workload accept` counts the same as before).
nonisolated(nonsending) func withLoopCancellationHandler<T: Sendable>(
    operation: (isolated (any Actor)?) async throws -> T,
    onCancel: @Sendable () -> Void
) async rethrows -> T {
    let isolation = #isolation
    return try await _unsafeInheritExecutor_withTaskCancellationHandler(operation: { try await operation(isolation) }, onCancel: onCancel)
}

