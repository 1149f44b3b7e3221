import Glibc
import RingLoop

/// The loop micro-workloads, written once and run on each RingLoop backend.
/// Each returns after `count` operations; the benchmark divides by `count`.
enum RingLoopWorkloads {
    /// Each callback schedules the next: the ready queue's round trip.
    static func callSoonChain(_ loop: EventLoop, count: Int) throws {
        var remaining = count
        func step() throws {
            remaining -= 1
            if remaining == 0 { loop.stop() } else { try loop.callSoon(step) }
        }
        try loop.callSoon(step)
        try loop.runForever()
    }

    /// `count` timers with deadlines spread over 0-500 ms, scheduled, then all fired.
    static func timersFire(_ loop: EventLoop, count: Int) throws {
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

    /// `count` timers scheduled, then every one cancelled.
    static func timersCancel(_ loop: EventLoop, count: Int) throws {
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
    static func taskYield(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            for _ in 0..<count { await Task.yield() }
        }
    }

    /// `count` continuations resumed by loop callbacks.
    static func continuations(_ loop: EventLoop, count: Int) throws {
        try loop.runUntilComplete {
            for _ in 0..<count {
                await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                    try? loop.callSoon { continuation.resume() }
                }
            }
        }
    }

    /// `count` callSoonThreadsafe calls from another thread.
    static func crossThread(_ loop: EventLoop, count: Int) throws {
        let done = Counter()
        let producer = try Thread.start {
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

/// Deterministic, fast random numbers, so every run schedules the same timers.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A joinable pthread, without Foundation.
struct Thread {
    let handle: pthread_t

    final class Body: @unchecked Sendable {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    static func start(_ body: @escaping @Sendable () -> Void) throws -> Thread {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw Errno(rc)
        }
        return Thread(handle: thread)
    }

    func join() { pthread_join(handle, nil) }
}
