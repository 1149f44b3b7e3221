/// Tasks suspended on the loop until something they wait for happens, each
/// free to leave on its own cancellation: what a listener's `accept`,
/// `waitClosed` on both servers and `Subprocess.wait` are built on.
///
/// Loop-thread only, except the cancellation handler, which hops to the loop.
/// (A stream's drain waiters keep their own list: one per connection, where
/// an object each would cost idle memory.)
final class Waiters<Value: Sendable>: CancellableWait, @unchecked Sendable {
    private let loop: EventLoop
    private var list: [(id: UInt32, continuation: UnsafeContinuation<Value, Never>, cancelled: Value)] = []
    private var nextID: UInt32 = 0
    /// How many times ``resumeAll(_:)`` ran, and with what last: for a
    /// waiter that looked before one and is recorded after it.
    private var resumes: UInt32 = 0
    private var lastValue: Value?

    init(loop: EventLoop) { self.loop = loop }

    var isEmpty: Bool { list.isEmpty }

    /// Suspends until ``resumeAll(_:)`` and returns its value; returns
    /// `cancelled` instead once the task is cancelled.
    nonisolated(nonsending) func wait(cancelled: Value) async -> Value {
        nextID &+= 1
        let id = nextID
        let seen = resumes
        return await loop.suspend(cancelling: self, id: id) { continuation in
            // A cancel that ran before this waiter existed has set the flag:
            // do not wait for it. Nor for what was resumed in between: for a
            // caller on an actor the waiter may be recorded a few loop steps
            // after the caller looked (an executor switch goes round the
            // ready queue, or the main queue), and that resume found no one.
            if Task.isCancelled {
                continuation.resume(returning: cancelled)
            } else if resumes != seen, let lastValue {
                continuation.resume(returning: lastValue)
            } else {
                list.append((id, continuation, cancelled))
            }
        }
    }

    func cancelWait(_ id: UInt32) {
        guard let index = list.firstIndex(where: { $0.id == id }) else { return }
        let waiter = list.remove(at: index)
        waiter.continuation.resume(returning: waiter.cancelled)
    }

    /// Resumes every waiter with `value`.
    func resumeAll(_ value: Value) {
        resumes &+= 1
        lastValue = value
        guard !list.isEmpty else { return }
        let resumed = list
        list = []
        for waiter in resumed { waiter.continuation.resume(returning: value) }
    }
}
