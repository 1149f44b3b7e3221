import DequeModule
import Synchronization

/// What other threads hand to the loop: a callback or a Swift job.
enum InboxItem {
    case callback(@Sendable () throws -> Void)
    case job(UnownedJob, SpawnRecord?)
    case actorJob(UnownedJob)

    var readyItem: ReadyItem {
        switch self {
        case .callback(let callback): .callback(callback)
        case .job(let job, let record): .job(job, record)
        case .actorJob(let job): .actorJob(job)
        }
    }
}

/// What the inbox's mutex guards.
struct InboxState: @unchecked Sendable {
    var items = Deque<InboxItem>()
    var closed = false
}

/// The cross-thread queue into a loop.
///
/// Producers append under a mutex. The loop drains it once per iteration by
/// swapping buffers, and checks an atomic flag first so an empty inbox costs
/// no lock.
///
/// Wakeups: a producer writes the eventfd only when the loop is parked
/// (about to block, or blocked, in the backend) and no wakeup is already on
/// its way. That is the empty-to-non-empty transition of the inbox as seen
/// by a sleeping loop; a loop that is busy running callbacks sees the flag at
/// its next iteration and needs no syscall at all.
///
/// Parking takes no lock: the loop parks and unparks around every blocking
/// wait, so on a lightly loaded server that is twice per request, and two
/// mutex round trips there were measured at about 5% of the loop thread's
/// user time on a one-connection echo. It is the store-then-load handshake
/// of a parker: the loop stores "parked" and then loads `nonEmpty`; a
/// producer stores `nonEmpty` and then loads the parking state. Both pairs
/// are sequentially consistent, so at least one side sees the other: either
/// the loop does not block, or the producer wakes it.
final class Inbox: Sendable {
    private let state = Locked(InboxState())
    private let nonEmpty = Atomic<Bool>(false)
    /// 0 while the loop runs; ``parkedBit`` while it is about to block or
    /// blocked, plus ``wokenBit`` once a producer has written the eventfd.
    private let parking = Atomic<UInt8>(0)
    private static let parkedBit: UInt8 = 1
    private static let wokenBit: UInt8 = 2

    /// Appends `item`; returns false when the inbox is closed. `wake` runs
    /// under the lock so it can never race with the loop closing its eventfd.
    func push(_ item: InboxItem, wake: () -> Void) -> Bool {
        state.withLock { s in
            guard !s.closed else { return false }
            s.items.append(item)
            nonEmpty.store(true, ordering: .sequentiallyConsistent)
            // Only the first producer to see the loop parked wakes it.
            if parking.compareExchange(expected: Self.parkedBit, desired: Self.parkedBit | Self.wokenBit,
                                       ordering: .sequentiallyConsistent).exchanged {
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
    /// case the loop must not block. (A producer may then still write the
    /// eventfd once: a spurious wakeup, which costs an iteration, not a hang.)
    func park() -> Bool {
        parking.store(Self.parkedBit, ordering: .sequentiallyConsistent)
        if nonEmpty.load(ordering: .sequentiallyConsistent) {
            parking.store(0, ordering: .relaxed)
            return false
        }
        return true
    }

    /// Called after the blocking poll returns.
    func unpark() {
        parking.store(0, ordering: .relaxed)
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
