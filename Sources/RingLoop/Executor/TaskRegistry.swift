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
///
/// A dense table whose slot index is the task's id, with a free list: an
/// idle server keeps one entry per connection, and a hash table's spread
/// buckets touched about twice the memory (87 against 48 bytes per task at
/// 9,000 tasks).
struct TaskRegistry {
    private enum Slot {
        case free(next: Int)
        /// Id handed out; `register` has not run yet.
        case reserved
        /// The task finished before `register` ran (possible when `spawn`
        /// is called from another thread while the loop runs).
        case finishedEarly
        case task(any PendingTask)
    }
    private var slots: [Slot] = []
    private var freeHead = -1
    private(set) var count = 0

    mutating func makeID() -> UInt64 {
        if freeHead >= 0 {
            let id = freeHead
            if case .free(let next) = slots[id] { freeHead = next }
            slots[id] = .reserved
            return UInt64(id)
        }
        slots.append(.reserved)
        return UInt64(slots.count - 1)
    }

    mutating func register(_ id: UInt64, _ task: any PendingTask) {
        let index = Int(id)
        if case .finishedEarly = slots[index] {
            release(index)
        } else {
            slots[index] = .task(task)
            count += 1
        }
    }

    mutating func finish(_ id: UInt64) {
        let index = Int(id)
        switch slots[index] {
        case .task:
            count -= 1
            release(index)
        case .reserved:
            slots[index] = .finishedEarly
        case .free, .finishedEarly:
            break
        }
    }

    private mutating func release(_ index: Int) {
        slots[index] = .free(next: freeHead)
        freeHead = index
    }

    var all: [any PendingTask] {
        slots.compactMap { if case .task(let task) = $0 { task } else { nil } }
    }
}
