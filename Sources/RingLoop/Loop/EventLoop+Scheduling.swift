import Glibc

extension EventLoop {
    /// Schedules `callback` to run in the next iteration, after everything
    /// already queued: asyncio's `call_soon`. Callbacks run in FIFO order.
    ///
    /// An error the callback throws goes to the exception handler; the loop
    /// keeps running.
    ///
    /// ```swift
    /// try loop.callSoon { print("first") }
    /// try loop.callSoon { print("second") }
    /// ```
    ///
    /// - Throws: ``EventLoopError/closed(operation:)`` after ``close()``;
    ///   ``EventLoopError/wrongThread(operation:)`` from a thread other than
    ///   the running loop's (use ``callSoonThreadsafe(_:)`` there).
    public func callSoon(
        file: StaticString = #fileID, line: UInt = #line,
        _ callback: @escaping () throws -> Void
    ) throws(EventLoopError) {
        try checkLoopThread("callSoon")
        ready.append(debug ? .tracedCallback(callback, CallSite(file: file, line: line)) : .callback(callback))
    }

    /// Schedules `callback` from any thread and wakes the loop if it sleeps:
    /// asyncio's `call_soon_threadsafe`.
    ///
    /// ```swift
    /// let pool = try ThreadPool(threads: 1)   // any other thread will do
    /// pool.submit { try? loop.callSoonThreadsafe { print("on the loop") } }
    /// ```
    ///
    /// - Throws: ``EventLoopError/closed(operation:)`` after ``close()``.
    public func callSoonThreadsafe(_ callback: @escaping @Sendable () throws -> Void) throws(EventLoopError) {
        guard inbox.push(.callback(callback), wake: { io.wake() }) else {
            throw .closed(operation: "callSoonThreadsafe")
        }
    }

    /// Schedules `callback` to run once `delay` has passed: asyncio's
    /// `call_later`. A zero or negative delay runs it in the next iteration,
    /// in deadline order with other overdue timers.
    ///
    /// Timers with equal deadlines run in the order they were scheduled.
    ///
    /// ```swift
    /// let handle = try loop.callLater(.milliseconds(100)) { print("100 ms later") }
    /// ```
    @discardableResult
    public func callLater(
        _ delay: Duration,
        file: StaticString = #fileID, line: UInt = #line,
        _ callback: @escaping () throws -> Void
    ) throws(EventLoopError) -> TimerHandle {
        try checkLoopThread("callLater")
        return scheduleTimer(at: .now + delay, callback)
    }

    /// Schedules `callback` at `instant` on the loop's clock (``time``):
    /// asyncio's `call_at`. An instant in the past runs it in the next iteration.
    @discardableResult
    public func callAt(
        _ instant: LoopInstant,
        file: StaticString = #fileID, line: UInt = #line,
        _ callback: @escaping () throws -> Void
    ) throws(EventLoopError) -> TimerHandle {
        try checkLoopThread("callAt")
        return scheduleTimer(at: instant, callback)
    }

    private func scheduleTimer(at instant: LoopInstant, _ callback: @escaping () throws -> Void) -> TimerHandle {
        let id = timers.reserve()
        let handle = TimerHandle(loop: self, id: id, when: instant)
        _ = timers.arm(id, deadline: instant.nanoseconds, .callback(callback, handle))
        return handle
    }

    /// Cancels a timer from any thread (see ``TimerHandle/cancel()``).
    func cancelTimer(_ id: TimerID) {
        if closedFlag.load(ordering: .relaxed) { return }
        onLoopThread { [self] in _ = timers.cancel(id) }
    }

    /// Number of live timers and of heap entries (cancelled ones included):
    /// lets tests watch the cleanup threshold.
    var timerCounts: (live: Int, queued: Int) { (timers.liveCount, timers.queuedCount) }
}
