@_spi(ExperimentalScheduling) import _Concurrency
import Glibc

extension EventLoop: SerialExecutor, TaskExecutor {
    /// Takes a Swift job. On the loop thread it goes straight onto the ready
    /// queue, with no lock; from another thread it goes through the inbox,
    /// which wakes the loop only if it sleeps.
    ///
    /// A job enqueued after ``close()`` cannot run; it is logged and dropped.
    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        if isOnLoopThread {
            ready.append(.job(job))
            return
        }
        if !inbox.push(.job(job), wake: { io.wake() }) {
            logger.error("A task was scheduled on a closed event loop; it will never run.")
        }
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Actors whose executor is this loop are isolated exactly when the
    /// caller runs on the loop thread.
    public func checkIsolated() {
        precondition(isOnLoopThread, "Expected to run on the event loop's thread")
    }

    public func isIsolatingCurrentContext() -> Bool? { isOnLoopThread }

    public func isSameExclusiveExecutionContext(other: EventLoop) -> Bool { self === other }
}

@_spi(ExperimentalScheduling)
extension EventLoop: SchedulingExecutor {
    /// `Task.sleep` on the loop lands here (Swift 6.3's experimental
    /// scheduling executor): the job goes into the loop's own timer heap
    /// instead of a global timer thread.
    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C
    ) {
        let job = UnownedJob(job)
        guard let delay = delay as? Duration else {
            // A clock whose durations are not Swift.Duration: convert through
            // the clock's own arithmetic.
            scheduleJob(job, at: .now)
            return
        }
        scheduleJob(job, at: .now + delay)
    }

    public func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C
    ) {
        let job = UnownedJob(job)
        let delay = clock.now.duration(to: instant)
        scheduleJob(job, at: .now + ((delay as? Duration) ?? .zero))
    }

    private func scheduleJob(_ job: UnownedJob, at instant: LoopInstant) {
        if isOnLoopThread {
            _ = timers.schedule(deadline: instant.nanoseconds, .job(job))
        } else {
            let sendable = UnsafeSendable(job)
            let pushed = inbox.push(.callback { [self] in
                _ = timers.schedule(deadline: instant.nanoseconds, .job(sendable.value))
            }, wake: { io.wake() })
            if !pushed { logger.error("A task was scheduled on a closed event loop; it will never run.") }
        }
    }
}
