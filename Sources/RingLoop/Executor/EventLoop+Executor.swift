@_spi(ExperimentalScheduling) import _Concurrency
import Glibc

/// The loop's two executor roles.
///
/// - **Task executor** (the `EventLoop` itself): tasks started with
///   `Task(executorPreference: loop)` send their steps here, and tasks
///   started with ``EventLoop/spawn(name:_:)`` through their spawn record, a
///   per-task executor that forwards to the loop (SpawnRecord+Executor.swift).
///   Such a step is run as a task-executor job
///   (`runSynchronously(on: UnownedTaskExecutor)`): it is on the generic
///   executor with the loop as preference, so a call into nonisolated `async`
///   code (RingLoop's own I/O, or any helper) needs no executor switch and
///   costs no trip through the ready queue.
/// - **Serial executor** (``LoopSerialExecutor``): actors whose executor is
///   the loop send their jobs there; those run isolated to it.
///
/// One object cannot play both roles distinguishably: `SerialExecutor` and
/// `TaskExecutor` share the one `enqueue(_:)` signature. Running every job as
/// isolated to the serial executor (the earlier design) made the runtime
/// switch away and back at each nonisolated async call: 12 enqueues per echo.
extension EventLoop: TaskExecutor {
    /// Takes a step of a task that prefers this loop. On the loop thread it
    /// goes straight onto the ready queue with no lock; from another thread it
    /// goes through the inbox, which wakes the loop only if it sleeps.
    ///
    /// A job enqueued after ``close()`` cannot run; it is logged and dropped.
    public func enqueue(_ job: consuming ExecutorJob) {
        enqueueJob(UnownedJob(job), actor: false, record: nil)
    }

    public func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }

    /// The serial executor for actors that run on this loop:
    ///
    /// ```swift
    /// actor Cache {
    ///     let loop: EventLoop
    ///     var entries: [String: [UInt8]] = [:]
    ///     init(loop: EventLoop) { self.loop = loop }
    ///     nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    /// }
    /// let cache = Cache(loop: loop)   // its methods run on the loop's thread, no hop from a loop task
    /// ```
    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        serialExecutor.asUnownedSerialExecutor()
    }

    /// Queues a Swift job: `actor` for an actor's job, `record` for a step of
    /// a task the loop spawned (it runs on that record's executor).
    func enqueueJob(_ job: UnownedJob, actor: Bool, record: SpawnRecord?) {
        if isOnLoopThread {
            ready.append(actor ? .actorJob(job) : .job(job, record))
            return
        }
        let item: InboxItem = actor ? .actorJob(job) : .job(job, record)
        if !inbox.push(item, wake: { io.wake() }) {
            // The loop is closed: the job runs elsewhere, where every call it
            // makes on this loop throws `.closed`, so it unwinds instead of
            // hanging.
            handOff(item.readyItem)
        }
    }
}

/// The serial executor of actors that run on an ``EventLoop``: get it with
/// ``EventLoop/asUnownedSerialExecutor()`` or ``EventLoop/serialExecutor``.
///
/// Its jobs run on the loop thread, isolated to it. An actor on it is
/// isolated exactly when the caller runs on the loop thread.
public final class LoopSerialExecutor: SerialExecutor, @unchecked Sendable {
    /// Unowned: the loop owns this object; actors keep their loop alive.
    unowned let loop: EventLoop

    init(loop: EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueueJob(UnownedJob(job), actor: true, record: nil)
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    public func checkIsolated() {
        precondition(isolatesCurrentThread, "Expected to run on the event loop's thread")
    }

    public func isIsolatingCurrentContext() -> Bool? { isolatesCurrentThread }

    /// The loop's thread, or after the loop closed the thread that runs its
    /// actors' remaining jobs.
    private var isolatesCurrentThread: Bool { loop.isOnLoopThread || loop.orphanedActorJobs.runsOnCurrentThread }

    public func isSameExclusiveExecutionContext(other: LoopSerialExecutor) -> Bool { self === other }
}

// `Task.sleep` on the loop lands here (Swift 6.3's experimental scheduling
// executor): the job goes into the loop's own timer heap instead of a global
// timer thread. Both roles conform: the runtime asks the actor's executor
// first, then the task's preferred one.
@_spi(ExperimentalScheduling)
extension EventLoop: SchedulingExecutor {
    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        scheduleJob(UnownedJob(job), actor: false, record: nil, after: delay, clock: clock)
    }

    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        scheduleJob(UnownedJob(job), actor: false, record: nil, at: instant, clock: clock)
    }
}

@_spi(ExperimentalScheduling)
extension LoopSerialExecutor: SchedulingExecutor {
    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        loop.scheduleJob(UnownedJob(job), actor: true, record: nil, after: delay, clock: clock)
    }

    public func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        loop.scheduleJob(UnownedJob(job), actor: true, record: nil, at: instant, clock: clock)
    }
}

extension EventLoop {
    func scheduleJob<C: Clock>(_ job: UnownedJob, actor: Bool, record: SpawnRecord?, after delay: C.Duration, clock: C) {
        if let delay = delay as? Duration {
            scheduleJob(job, actor: actor, record: record, at: .now + delay)
        } else {
            scheduleJob(job, actor: actor, record: record, at: clock.now.advanced(by: delay), clock: clock)
        }
    }

    func scheduleJob<C: Clock>(_ job: UnownedJob, actor: Bool, record: SpawnRecord?, at instant: C.Instant, clock: C) {
        let remaining = clock.now.duration(to: instant)
        if let remaining = remaining as? Duration {
            scheduleJob(job, actor: actor, record: record, at: .now + remaining)
            return
        }
        // A clock whose durations are not Swift.Duration: the loop cannot
        // convert its time, so let the clock itself wait, on a task of its
        // own off the loop, and hand the job back when the instant comes.
        let sendable = UnsafeSendable(job)
        Task.detached { [self] in
            try? await clock.sleep(until: instant, tolerance: nil)
            enqueueJob(sendable.value, actor: actor, record: record)
        }
    }

    private func scheduleJob(_ job: UnownedJob, actor: Bool, record: SpawnRecord?, at instant: LoopInstant) {
        if isOnLoopThread {
            _ = timers.schedule(deadline: instant.nanoseconds, .job(actor ? .actorJob(job) : .job(job, record)))
            return
        }
        let sendable = UnsafeSendable(job)
        let pushed = inbox.push(.callback { [self] in
            _ = timers.schedule(deadline: instant.nanoseconds, .job(actor ? .actorJob(sendable.value) : .job(sendable.value, record)))
        }, wake: { io.wake() })
        if !pushed { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }
}
