import HeapModule

/// The epoll backend's stand-ins for io_uring's timers: `TIMEOUT`
/// operations, and the link timeouts (`LINK_TIMEOUT`) that cancel another
/// operation if it is still waiting when they pass.
///
/// One deadline heap holds both, with lazy deletion: an entry whose
/// operation ended first stays until its deadline, and the heap is rebuilt
/// once such stale entries outnumber the live ones (as the loop's own timer
/// queue does), so thousands of cancelled timeouts cannot pile up.
struct EpollTimeouts {
    private struct Entry: Comparable {
        var deadline: UInt64
        var token: OperationToken
        static func < (a: Self, b: Self) -> Bool { a.deadline < b.deadline }
    }

    private var heap = Heap<Entry>()
    /// Timeout operations: token → deadline.
    private var live: [OperationToken: UInt64] = [:]
    /// Operations with a link timeout: token → deadline.
    private var linked: [OperationToken: UInt64] = [:]

    var isEmpty: Bool { heap.isEmpty }
    /// The earliest deadline, stale entries included (waking early is harmless).
    var nextDeadline: UInt64? { heap.min?.deadline }
    /// Entries in the heap, stale ones included (tests watch the bound).
    var heapCount: Int { heap.count }
    var hasLinks: Bool { !linked.isEmpty }

    /// A `TIMEOUT` operation that completes at `deadline`.
    mutating func addTimeout(_ token: OperationToken, deadline: UInt64) {
        heap.insert(Entry(deadline: deadline, token: token))
        live[token] = deadline
    }

    /// A link timeout: at `deadline`, operation `token` is cancelled if it still waits.
    mutating func addLink(_ token: OperationToken, deadline: UInt64) {
        heap.insert(Entry(deadline: deadline, token: token))
        linked[token] = deadline
    }

    /// Cancels the timeout operation `token`; false when it is not one, or has fired.
    mutating func cancelTimeout(_ token: OperationToken) -> Bool {
        live.removeValue(forKey: token) != nil
    }

    /// Operation `token` completed: its link timeout, if any, has nothing left to cancel.
    mutating func operationEnded(_ token: OperationToken) {
        linked[token] = nil
    }

    /// Takes every entry due by `now`: `fired` gets each timeout operation
    /// that completes (`isLink` false) and each operation whose link timeout
    /// passed (`isLink` true).
    mutating func expire(now: UInt64, _ fired: (OperationToken, _ isLink: Bool) -> Void) {
        while let top = heap.min, top.deadline <= now {
            _ = heap.removeMin()
            if live[top.token] == top.deadline {
                live[top.token] = nil
                fired(top.token, false)
            } else if linked[top.token] == top.deadline {
                linked[top.token] = nil
                fired(top.token, true)
            }
        }
        if heap.count > 64, heap.count > 2 * (live.count + linked.count) {
            heap = Heap(heap.unordered.filter { live[$0.token] == $0.deadline || linked[$0.token] == $0.deadline })
        }
    }
}
