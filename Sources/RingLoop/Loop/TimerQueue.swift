/// Identifies a scheduled timer: its slab slot and that slot's generation.
struct TimerID: Hashable, Sendable {
    var slot: UInt32
    var generation: UInt32
}

/// The loop's scheduled queue: a min-heap of small value entries over a slab
/// of timer slots.
///
/// - Ordering: by deadline, then by scheduling order, so timers with equal
///   deadlines fire first-in first-out and overdue timers fire in deadline order.
/// - Cancellation is O(1): the slot is freed at once (dropping its callback
///   or continuation) and its generation bumped; the heap entry becomes garbage
///   that is skipped when it reaches the top.
/// - Garbage is bounded as in asyncio: when more than 100 entries are queued and
///   more than half of them are cancelled, the heap is rebuilt from the live ones.
/// - No allocation per timer in steady state (the `TimerHandle` returned by
///   `callLater` is the one allocation a public timer costs): slots are recycled through a
///   free list and heap entries are plain integers.
struct TimerQueue {
    enum Action {
        /// A `callLater` / `callAt` callback and its handle, which the ready
        /// queue checks again just before running it.
        case callback(() throws -> Void, TimerHandle)
        /// A sleeping task's continuation.
        case resume(UnsafeContinuation<Void, any Error>)
        /// A job from `Task.sleep` through a scheduling executor: a task's
        /// step or an actor's job, as the ready queue will run it.
        case job(ReadyItem)
    }

    private struct Entry: Comparable {
        var deadline: UInt64
        var sequence: UInt64
        var slot: UInt32
        var generation: UInt32
        static func < (a: Entry, b: Entry) -> Bool {
            a.deadline != b.deadline ? a.deadline < b.deadline : a.sequence < b.sequence
        }
        static func == (a: Entry, b: Entry) -> Bool { a.sequence == b.sequence }
    }

    private struct Slot {
        var generation: UInt32 = 1
        var action: Action?
        /// Reserved for a sleep whose continuation is not stored yet.
        var reserved = false
        var cancelledWhileReserved = false
        var nextFree: UInt32 = .max
    }

    /// asyncio's `_MIN_SCHEDULED_TIMER_HANDLES`.
    static let compactionMinimum = 100

    private var heap = TimerHeap<Entry>()
    private var slots: [Slot] = []
    private var freeHead: UInt32 = .max
    private var sequence: UInt64 = 0
    /// Timers scheduled and neither fired nor cancelled.
    private(set) var liveCount = 0
    /// Entries in the heap, cancelled ones included.
    var queuedCount: Int { heap.count }
    var isEmpty: Bool { liveCount == 0 }

    private mutating func takeSlot() -> UInt32 {
        if freeHead != .max {
            let index = freeHead
            freeHead = slots[Int(index)].nextFree
            return index
        }
        slots.append(Slot())
        return UInt32(slots.count - 1)
    }

    private mutating func freeSlot(_ index: UInt32) {
        slots[Int(index)].action = nil
        slots[Int(index)].reserved = false
        slots[Int(index)].cancelledWhileReserved = false
        slots[Int(index)].generation &+= 1
        slots[Int(index)].nextFree = freeHead
        freeHead = index
    }

    private func isLive(_ id: TimerID) -> Bool {
        Int(id.slot) < slots.count && slots[Int(id.slot)].generation == id.generation
    }

    /// Schedules `action` at `deadline` (monotonic nanoseconds).
    mutating func schedule(deadline: UInt64, _ action: Action) -> TimerID {
        let slot = takeSlot()
        slots[Int(slot)].action = action
        let id = TimerID(slot: slot, generation: slots[Int(slot)].generation)
        push(id, deadline: deadline)
        return id
    }

    private mutating func push(_ id: TimerID, deadline: UInt64) {
        sequence &+= 1
        heap.insert(Entry(deadline: deadline, sequence: sequence, slot: id.slot, generation: id.generation))
        liveCount += 1
    }

    /// Takes a slot for a sleep before its continuation exists, so a cancel
    /// handler that runs first has an id to act on.
    mutating func reserve() -> TimerID {
        let slot = takeSlot()
        slots[Int(slot)].reserved = true
        return TimerID(slot: slot, generation: slots[Int(slot)].generation)
    }

    /// Arms a reserved slot. Returns false (and frees it) if it was cancelled
    /// while reserved; the caller then resumes with CancellationError.
    mutating func arm(_ id: TimerID, deadline: UInt64, _ action: Action) -> Bool {
        guard isLive(id) else { return false }
        if slots[Int(id.slot)].cancelledWhileReserved {
            freeSlot(id.slot)
            return false
        }
        slots[Int(id.slot)].reserved = false
        slots[Int(id.slot)].action = action
        push(id, deadline: deadline)
        return true
    }

    /// Cancels `id` in O(1). Returns the dropped action so the caller can
    /// resume a sleeping continuation; `nil` if the timer already fired, was
    /// cancelled, or is only reserved (then it is marked so `arm` refuses).
    mutating func cancel(_ id: TimerID) -> Action? {
        guard isLive(id) else { return nil }
        if slots[Int(id.slot)].reserved {
            slots[Int(id.slot)].cancelledWhileReserved = true
            return nil
        }
        let action = slots[Int(id.slot)].action.take()
        freeSlot(id.slot)
        liveCount -= 1
        compactIfNeeded()
        return action
    }

    /// Rebuilds the heap without cancelled entries once they dominate it.
    /// The check is inlined into every loop iteration; the rebuild is not.
    @inline(__always)
    mutating func compactIfNeeded() {
        let cancelled = heap.count - liveCount
        guard heap.count > Self.compactionMinimum, cancelled * 2 > heap.count else { return }
        compact()
    }

    @inline(never)
    private mutating func compact() {
        let live = heap.storage.filter { isLive(TimerID(slot: $0.slot, generation: $0.generation)) }
        heap = TimerHeap(live)
    }

    /// The earliest live deadline, discarding cancelled entries on top.
    /// An empty heap, a server's usual state, is answered inline.
    @inline(__always)
    mutating func nextDeadline() -> UInt64? {
        heap.count == 0 ? nil : nextLiveDeadline()
    }

    @inline(never)
    private mutating func nextLiveDeadline() -> UInt64? {
        while let top = heap.min {
            if isLive(TimerID(slot: top.slot, generation: top.generation)) { return top.deadline }
            _ = heap.removeMin()
        }
        return nil
    }

    /// Removes and returns the next live timer due at `now`, or `nil`.
    mutating func popDue(now: UInt64) -> Action? {
        while let top = heap.min, top.deadline <= now {
            _ = heap.removeMin()
            let id = TimerID(slot: top.slot, generation: top.generation)
            guard isLive(id) else { continue }
            let action = slots[Int(id.slot)].action.take()
            freeSlot(id.slot)
            liveCount -= 1
            return action
        }
        return nil
    }

    /// Removes every live timer (loop teardown) and returns their actions.
    mutating func removeAll() -> [Action] {
        var actions: [Action] = []
        while let top = heap.removeMin() {
            let id = TimerID(slot: top.slot, generation: top.generation)
            guard isLive(id), let action = slots[Int(id.slot)].action else { continue }
            freeSlot(id.slot)
            actions.append(action)
        }
        liveCount = 0
        return actions
    }
}
