import CompareCore
import Glibc
import RingLoop

/// The loop micro-workloads, written once and run on each RingLoop backend.
/// Each returns after `count` operations; the benchmark divides by `count`.
/// `NIOWorkloads` and `Python/asyncio_micro.py` do exactly the same work.
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

    /// Timers already due: `batch` timers scheduled at once with no delay,
    /// all fired, then the next batch, until `count` have fired.
    public static func timersDue(_ loop: EventLoop, count: Int, batch: Int) throws {
        var fired = 0
        func schedule() throws {
            let size = min(batch, count - fired)
            var left = size
            for _ in 0..<size {
                try loop.callLater(.zero) {
                    fired += 1
                    left -= 1
                    if left == 0 { if fired >= count { loop.stop() } else { try schedule() } }
                }
            }
        }
        try loop.callSoon(schedule)
        try loop.runForever()
    }

    /// Timers spread over time: `batch` timers live at once, coming due at
    /// `perMillisecond` per millisecond. Each one, when it fires, schedules
    /// its successor one period (`batch / perMillisecond` ms) later, until
    /// `count` have fired.
    public static func timersSpread(_ loop: EventLoop, count: Int, batch: Int, perMillisecond: Int) throws {
        let periodNanoseconds = Int64(batch) * 1_000_000 / Int64(perMillisecond)
        var rng = SplitMix64(seed: 42)
        var fired = 0, scheduled = 0
        func fire() throws {
            fired += 1
            if fired == count { loop.stop(); return }
            if scheduled < count {
                scheduled += 1
                try loop.callLater(.nanoseconds(periodNanoseconds), fire)
            }
        }
        try loop.callSoon {
            for _ in 0..<min(batch, count) {
                scheduled += 1
                try loop.callLater(.nanoseconds(Int64(rng.next() % UInt64(periodNanoseconds))), fire)
            }
        }
        try loop.runForever()
    }

    /// `count` timers with deadlines spread over 0-500 ms, scheduled, then all
    /// fired (the package-benchmark suite's row).
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

    /// Timers scheduled then cancelled, `liveTimers` at a time, `count` in all
    /// (NIO cancels by a linear search of its heap, so cancelling a million
    /// live timers there is quadratic).
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

    /// An actor whose executor is the loop awaiting `count` continuations,
    /// each resumed by a `callSoon` callback: the comparison's hop row, the
    /// same code NIOWorkloads.actorContinuations runs on a NIO loop.
    public static func actorContinuations(_ loop: EventLoop, count: Int) throws {
        let actor = LoopBoundActor(loop: loop)
        try loop.runUntilComplete { await actor.resumeMany(count) }
    }

    /// `count` continuations resumed by loop callbacks, from a task on the loop.
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

/// An actor isolated to a RingLoop loop.
actor LoopBoundActor {
    let loop: EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    init(loop: EventLoop) { self.loop = loop }

    func resumeMany(_ count: Int) async {
        for _ in 0..<count {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                try? loop.callSoon { continuation.resume() }
            }
        }
    }
}

/// A counter the loop thread increments; read by nobody else.
final class Counter: @unchecked Sendable {
    private var value = 0
    func increment() -> Int {
        value += 1
        return value
    }
}
