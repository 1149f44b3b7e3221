/// A spawned task as the loop tracks it, whatever its result type.
protocol PendingTask: Sendable {
    func cancel()
    nonisolated(nonsending) func wait() async
}

extension Task: PendingTask {
    nonisolated(nonsending) func wait() async { _ = await result }
}

/// The tasks started with ``EventLoop/spawn(name:_:)`` and not yet finished,
/// so ``EventLoop/run(backend:debug:_:)`` can cancel and await them at exit
/// (asyncio's `_cancel_all_tasks`). Guarded by the loop's mutex.
struct TaskRegistry {
    private var tasks: [UInt64: any PendingTask] = [:]
    private var nextID: UInt64 = 0

    mutating func makeID() -> UInt64 {
        nextID += 1
        return nextID
    }

    /// Ids of tasks that finished before `register` ran (possible when
    /// `spawn` is called from another thread while the loop runs).
    private var finishedEarly: Set<UInt64> = []

    mutating func register(_ id: UInt64, _ task: any PendingTask) {
        if finishedEarly.remove(id) == nil { tasks[id] = task }
    }

    mutating func finish(_ id: UInt64) {
        if tasks.removeValue(forKey: id) == nil { finishedEarly.insert(id) }
    }
    var all: [any PendingTask] { Array(tasks.values) }
    var count: Int { tasks.count }
}
