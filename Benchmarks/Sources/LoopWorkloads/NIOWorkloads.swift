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
}
