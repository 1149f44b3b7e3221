import Glibc
import RingLoop

/// The loop micro-workloads, written once and run on each RingLoop backend.
/// Each returns after `count` operations; the benchmark divides by `count`.
public enum RingLoopWorkloads {
    /// Each callback schedules the next: the ready queue's round trip.
    public static func callSoonChain(_ loop: EventLoop, count: Int) throws {
        var remaining = count
        func step() throws {
            remaining -= 1
            if remaining == 0 { loop.stop() } else { try loop.callSoon(step) }
        }
        try loop.callSoon(step)
        try loop.runForever()
    }

    /// `count` timers with deadlines spread over 0-500 ms, scheduled, then all fired.
    public static func timersFire(_ loop: EventLoop, count: Int) throws {
        var rng = SplitMix64(seed: 42)
        var fired = 0
        try loop.callSoon {
            for _ in 0..<count {
                try loop.callLater(.microseconds(Int64(rng.next() % 500_000))) {
                    fired += 1
                    if fired == count { loop.stop() }
                }
            }
        }
        try loop.runForever()
    }

    /// Timers scheduled then cancelled, `liveTimers` at a time, `count` in all:
    /// the comparison's cancel row (NIO cancels by a linear search of its
    /// heap, so cancelling a million live timers there is quadratic).
    public static func timersCancelBatched(_ loop: EventLoop, count: Int, liveTimers: Int = 10_000) throws {
        for _ in 0..<max(1, count / liveTimers) { try timersCancel(loop, count: min(count, liveTimers)) }
    }

    /// `count` timers scheduled, then every one cancelled.
    public static func timersCancel(_ loop: EventLoop, count: Int) throws {
        var handles: [TimerHandle] = []
        handles.reserveCapacity(count)
        try loop.callSoon {
            for i in 0..<count { handles.append(try loop.callLater(.seconds(10 + Int64(i % 1000))) {}) }
            for handle in handles { handle.cancel() }
            loop.stop()
        }
        try loop.runForever()
    }

    /// A task on the loop yielding `count` times: one executor hop each.
    public static func taskYield(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            for _ in 0..<count { await Task.yield() }
        }
    }

    /// `count` continuations resumed by loop callbacks.
    public static func continuations(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            for _ in 0..<count {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    try? loop.callSoon { continuation.resume() }
                }
            }
        }
    }

    /// `count` callSoonThreadsafe calls from another thread.
    public static func crossThread(_ loop: EventLoop, count: Int) throws {
        let done = Counter()
        let producer = try JoinableThread.start {
            for _ in 0..<count {
                try? loop.callSoonThreadsafe {
                    if done.increment() == count { loop.stop() }
                }
            }
        }
        try loop.runForever()
        producer.join()
    }
}

/// A counter touched only on the loop thread (the closures that use it are
/// `@Sendable` because they cross threads to get there).
final class Counter: @unchecked Sendable {
    private var value = 0
    func increment() -> Int {
        value += 1
        return value
    }
}
