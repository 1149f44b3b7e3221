import Synchronization

/// A scheduled `callLater` / `callAt` callback: asyncio's `TimerHandle`.
///
/// ```swift
/// let handle = try loop.callLater(.seconds(5)) { print("too late") }
/// handle.cancel()          // the callback never runs
/// print(handle.isCancelled) // true
/// ```
///
/// ``cancel()`` may be called from any thread; from a foreign thread while the
/// loop runs it takes effect through ``EventLoop/callSoonThreadsafe(_:)``.
public final class TimerHandle: @unchecked Sendable, CustomStringConvertible {
    /// When the callback is due on the loop's clock.
    public let when: LoopInstant
    let id: TimerID
    // Strong: the loop never references its handles (the timer slot holds
    // only the callback), so there is no cycle.
    private let loop: EventLoop
    private let cancelled = Atomic<Bool>(false)

    init(loop: EventLoop, id: TimerID, when: LoopInstant) {
        self.loop = loop
        self.id = id
        self.when = when
    }

    /// True once ``cancel()`` was called, whether or not the callback had run.
    public var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    /// Cancels the callback if it has not run yet. O(1) and idempotent; the
    /// callback and what it captured are released at once.
    public func cancel() {
        guard !cancelled.exchange(true, ordering: .relaxed) else { return }
        loop.cancelTimer(id)
    }

    public var description: String { "TimerHandle(when: \(when)\(isCancelled ? ", cancelled" : ""))" }
}
