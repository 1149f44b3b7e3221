import DequeModule
import Synchronization

/// What other threads hand to the loop: a callback or a Swift job.
enum InboxItem {
    case callback(@Sendable () throws -> Void)
    case job(UnownedJob)
    case actorJob(UnownedJob)

    var readyItem: ReadyItem {
        switch self {
        case .callback(let callback): .callback(callback)
        case .job(let job): .job(job)
        case .actorJob(let job): .actorJob(job)
        }
    }
}

/// What the inbox's mutex guards.
struct InboxState: @unchecked Sendable {
    var items = Deque<InboxItem>()
    var parked = false
    var wakeSent = false
    var closed = false
}

/// The cross-thread queue into a loop.
///
/// Producers append under a mutex. The loop drains it once per iteration by
/// swapping buffers, and checks an atomic flag first so an empty inbox costs
/// no lock.
///
/// Wakeups: the loop writes the eventfd only when it is parked (about to
/// block, or blocked, in the backend) and no wakeup is already on its way.
/// That is the empty-to-non-empty transition of the inbox as seen by a
/// sleeping loop; a loop that is busy running callbacks sees the flag at its
/// next iteration and needs no syscall at all.
final class Inbox: Sendable {
    private let state = Locked(InboxState())
    private let nonEmpty = Atomic<Bool>(false)

    /// Appends `item`; returns false when the inbox is closed. `wake` runs
    /// under the lock so it can never race with the loop closing its eventfd.
    func push(_ item: InboxItem, wake: () -> Void) -> Bool {
        state.withLock { s in
            guard !s.closed else { return false }
            s.items.append(item)
            nonEmpty.store(true, ordering: .releasing)
            if s.parked, !s.wakeSent {
                s.wakeSent = true
                wake()
            }
            return true
        }
    }

    /// True once ``close()`` ran.
    var isClosed: Bool { state.withLock { $0.closed } }

    /// Cheap check used by the loop before taking the lock.
    var mayHaveItems: Bool { nonEmpty.load(ordering: .acquiring) }

    /// Moves everything into `into` (which the loop keeps for reuse).
    func drain(into buffer: inout Deque<InboxItem>) {
        state.withLock { s in
            swap(&s.items, &buffer)
            nonEmpty.store(false, ordering: .relaxed)
        }
    }

    /// Called before a blocking poll. Returns false if items arrived, in which
    /// case the loop must not block.
    func park() -> Bool {
        state.withLock { s in
            if !s.items.isEmpty { return false }
            s.parked = true
            s.wakeSent = false
            return true
        }
    }

    /// Called after the blocking poll returns.
    func unpark() {
        state.withLock { s in
            s.parked = false
            s.wakeSent = false
        }
    }

    /// Refuses further items; returns what was left so the caller can dispose of it.
    func close() -> Deque<InboxItem> {
        state.withLock { s in
            s.closed = true
            let left = s.items
            s.items.removeAll()
            nonEmpty.store(false, ordering: .relaxed)
            return left
        }
    }
}
