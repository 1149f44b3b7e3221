import DequeModule
import Glibc
import Synchronization

/// Runs the jobs of actors whose loop has closed, one at a time.
///
/// An actor whose executor is a loop can still be called after the loop
/// closes: a caller on another thread does not know. Swift's global
/// executor would run two of its jobs at once and break the actor's
/// isolation, so they queue here and a short-lived thread runs them in
/// order (calls they make on the loop throw `.closed`). The thread ends
/// when the queue is empty; the next job starts another.
final class OrphanedActorJobs: Sendable {
    private struct State {
        var jobs = Deque<UnownedJob>()
        var draining = false
    }
    private let state = Locked(State())
    /// The thread draining the queue, 0 when none: the actors' isolation
    /// checks accept it as their executor's thread.
    private let drainer = Atomic<UInt>(0)

    /// True on the thread that runs the orphaned jobs, while it runs them.
    var runsOnCurrentThread: Bool { drainer.load(ordering: .acquiring) == UInt(pthread_self()) }

    func enqueue(_ job: UnownedJob, executor: UnownedSerialExecutor) {
        let start = state.withLock { state -> Bool in
            state.jobs.append(job)
            guard !state.draining else { return false }
            state.draining = true
            return true
        }
        guard start else { return }
        do {
            pthread_detach(try NativeThread.start(name: "RingLoop-orphan") { [self] in drain(executor) })
        } catch {
            // No thread to be had: the jobs still run, on the global
            // executor, rather than never (their awaiters would hang).
            let jobs = state.withLock { state -> Deque<UnownedJob> in
                let jobs = state.jobs
                state.jobs = []
                state.draining = false
                return jobs
            }
            for job in jobs { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
        }
    }

    private func drain(_ executor: UnownedSerialExecutor) {
        drainer.store(UInt(pthread_self()), ordering: .releasing)
        while let job = state.withLock({ state -> UnownedJob? in
            if let job = state.jobs.popFirst() { return job }
            drainer.store(0, ordering: .releasing)
            state.draining = false
            return nil
        }) {
            job.runSynchronously(on: executor)
        }
    }
}
