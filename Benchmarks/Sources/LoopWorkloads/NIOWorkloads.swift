import CompareCore
import NIOCore
import NIOPosix

/// SwiftNIO's equivalents of the loop workloads, written the idiomatic NIO way.
public enum NIOWorkloads {
    /// `execute` chain: each task submits the next.
    public static func executeChain(_ loop: any EventLoop, count: Int) throws {
        let promise = loop.makePromise(of: Void.self)
        let remaining = NIOLoopBoundBox.makeBoxSendingValue(count, eventLoop: loop)
        @Sendable func step() {
            remaining.value -= 1
            if remaining.value == 0 { promise.succeed() } else { loop.execute(step) }
        }
        loop.execute(step)
        try promise.futureResult.wait()
    }

    /// Timers already due: `batch` at a time scheduled with no delay, all
    /// fired, then the next batch (RingLoopWorkloads.timersDue's twin).
    public static func timersDue(_ loop: any EventLoop, count: Int, batch: Int) throws {
        let promise = loop.makePromise(of: Void.self)
        let state = NIOLoopBoundBox.makeBoxSendingValue((fired: 0, left: 0), eventLoop: loop)
        @Sendable func schedule() {
            let size = min(batch, count - state.value.fired)
            state.value.left = size
            for _ in 0..<size {
                loop.scheduleTask(in: .zero) {
                    state.value.fired += 1
                    state.value.left -= 1
                    if state.value.left == 0 {
                        if state.value.fired >= count { promise.succeed() } else { schedule() }
                    }
                }
            }
        }
        loop.execute(schedule)
        try promise.futureResult.wait()
    }

    /// Timers spread over time: `batch` live, `perMillisecond` due per ms,
    /// each firing one schedules its successor a period later
    /// (RingLoopWorkloads.timersSpread's twin).
    public static func timersSpread(_ loop: any EventLoop, count: Int, batch: Int, perMillisecond: Int) throws {
        let period = Int64(batch) * 1_000_000 / Int64(perMillisecond)
        let promise = loop.makePromise(of: Void.self)
        let state = NIOLoopBoundBox.makeBoxSendingValue((fired: 0, scheduled: 0), eventLoop: loop)
        @Sendable func fire() {
            state.value.fired += 1
            if state.value.fired == count { promise.succeed(); return }
            if state.value.scheduled < count {
                state.value.scheduled += 1
                loop.scheduleTask(in: .nanoseconds(period), fire)
            }
        }
        loop.execute {
            var rng = SplitMix64(seed: 42)
            for _ in 0..<min(batch, count) {
                state.value.scheduled += 1
                loop.scheduleTask(in: .nanoseconds(Int64(rng.next() % UInt64(period))), fire)
            }
        }
        try promise.futureResult.wait()
    }

    /// `scheduleTask` with random 0-500 ms deadlines, all fired.
    public static func timersFire(_ loop: any EventLoop, count: Int) throws {
        let promise = loop.makePromise(of: Void.self)
        loop.execute {
            var rng = SplitMix64(seed: 42)
            let fired = NIOLoopBoundBox.makeBoxSendingValue(0, eventLoop: loop)
            for _ in 0..<count {
                loop.scheduleTask(in: .microseconds(Int64(rng.next() % 500_000))) {
                    fired.value += 1
                    if fired.value == count { promise.succeed() }
                }
            }
        }
        try promise.futureResult.wait()
    }

    /// `scheduleTask` then `cancel`, `liveTimers` at a time, `count` in all.
    public static func timersCancelBatched(_ loop: any EventLoop, count: Int, liveTimers: Int = 10_000) throws {
        for _ in 0..<max(1, count / liveTimers) { try timersCancel(loop, count: min(count, liveTimers)) }
    }

    /// `scheduleTask` then `cancel` for every task.
    public static func timersCancel(_ loop: any EventLoop, count: Int) throws {
        try loop.submit {
            var tasks: [Scheduled<Void>] = []
            tasks.reserveCapacity(count)
            for i in 0..<count { tasks.append(loop.scheduleTask(in: .seconds(10 + Int64(i % 1000))) {}) }
            for task in tasks { task.cancel() }
        }.wait()
    }

    /// An actor whose executor is the NIO loop awaiting `count` continuations,
    /// each resumed by an `execute` callback on that loop: every hop stays on
    /// the loop's thread, as RingLoop's does (`Task.yield` would go through
    /// NIO's global executor and back: a cross-thread round trip).
    public static func actorContinuations(_ loop: any EventLoop, count: Int) async {
        let actor = NIOBoundActor(loop: loop)
        await actor.resumeMany(count)
    }

    /// An actor whose executor is the NIO loop, yielding `count` times.
    public static func actorYield(_ loop: any EventLoop, count: Int) async {
        let actor = NIOBoundActor(loop: loop)
        await actor.yieldMany(count)
    }

    /// `execute` from another thread, `count` times.
    public static func crossThreadExecute(_ loop: any EventLoop, count: Int) throws {
        let promise = loop.makePromise(of: Void.self)
        let done = NIOLoopBoundBox.makeBoxSendingValue(0, eventLoop: loop)
        for _ in 0..<count {
            loop.execute {
                done.value += 1
                if done.value == count { promise.succeed() }
            }
        }
        try promise.futureResult.wait()
    }
}

actor NIOBoundActor {
    let loop: any EventLoop
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.executor.asUnownedSerialExecutor() }
    init(loop: any EventLoop) { self.loop = loop }
    func yieldMany(_ count: Int) async {
        for _ in 0..<count { await Task.yield() }
    }
    func resumeMany(_ count: Int) async {
        for _ in 0..<count {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                loop.execute { continuation.resume() }
            }
        }
    }
}
