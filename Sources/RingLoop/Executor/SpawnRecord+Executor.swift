@_spi(ExperimentalScheduling) import _Concurrency

/// Each task the loop spawns prefers its own record as task executor, a
/// thin one that hands every job to the loop with the record beside it.
///
/// So when the loop runs a step it knows, with no lookup, which spawned
/// task it belongs to (``EventLoop/runningRecord``), and a wait finds the
/// task's cancellation route there (CancellationRoute.swift). The steps run
/// exactly as on the loop's own task executor: on the loop thread, with the
/// record as the current task executor, which is the task's preference, so
/// nonisolated async calls stay put. Child tasks inherit the preference and
/// run on the loop too; they are other jobs, and take no route that is not
/// theirs (``SpawnRecord/route(on:)`` checks the job).
extension SpawnRecord: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        loop.enqueueJob(UnownedJob(job), actor: false, record: self)
    }

    func asUnownedTaskExecutor() -> UnownedTaskExecutor {
        UnownedTaskExecutor(ordinary: self)
    }
}

// `Task.sleep` in a spawned task lands here, as it lands on the loop for
// other tasks that prefer it: into the loop's own timer heap.
@_spi(ExperimentalScheduling)
extension SpawnRecord: SchedulingExecutor {
    func enqueue<C: Clock>(_ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration?, clock: C) {
        loop.scheduleJob(UnownedJob(job), actor: false, record: self, after: delay, clock: clock)
    }

    func enqueue<C: Clock>(_ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration?, clock: C) {
        loop.scheduleJob(UnownedJob(job), actor: false, record: self, at: instant, clock: clock)
    }
}
