import Benchmark
import NIOCore
import NIOPosix
import LoopWorkloads
import RingLoop

/// The loop micro-benchmarks, on both RingLoop backends and on SwiftNIO, in one
/// suite so one run compares them side by side.
///
/// Every benchmark runs its whole workload once per iteration; the
/// `scalingFactor` tells package-benchmark how many operations that is, so
/// `--scale` reports per-operation numbers (ns/op, mallocs/op).
let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .cpuTotal, .mallocCountTotal, .throughput]

    func config(_ scale: BenchmarkScalingFactor, iterations: Int = 5) -> Benchmark.Configuration {
        .init(metrics: metrics, timeUnits: .nanoseconds, warmupIterations: 1, scalingFactor: scale,
              maxDuration: .seconds(20), maxIterations: iterations)
    }

    // One loop per backend for the whole suite, as a server would keep it.
    let loops: [(String, RingLoop.EventLoop)] = [Backend.uring, .epoll].map { backend in
        (backend.rawValue, try! RingLoop.EventLoop(backend: backend))
    }
    let nio = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let nioLoop = nio.next()

    IOWorkloads.makeFile()

    for (name, loop) in loops {
        // Steady-state I/O: mallocs/op is the number to watch (0 on io_uring).
        Benchmark("file read 4 KiB, 1k (\(name))", configuration: config(.kilo)) { benchmark in
            try IOWorkloads.fileReads(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("file write 4 KiB, 1k (\(name))", configuration: config(.kilo)) { benchmark in
            try IOWorkloads.fileWrites(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("TCP 64 B ping-pong, 1k (\(name))", configuration: config(.kilo)) { benchmark in
            try IOWorkloads.tcpPingPong(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("callSoon chain 1M (\(name))", configuration: config(.mega)) { benchmark in
            try RingLoopWorkloads.callSoonChain(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("timers 1M random 0-500ms, schedule+fire (\(name))", configuration: config(.mega, iterations: 3)) { benchmark in
            try RingLoopWorkloads.timersFire(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("timers 1M schedule+cancel (\(name))", configuration: config(.mega)) { benchmark in
            try RingLoopWorkloads.timersCancel(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("timers schedule+cancel, 10k live, 1M total (\(name))", configuration: config(.mega)) { benchmark in
            for _ in 0..<(benchmark.scaledIterations.count / 10_000) {
                try RingLoopWorkloads.timersCancel(loop, count: 10_000)
            }
        }
        Benchmark("Task.yield hop 1M (\(name))", configuration: config(.mega)) { benchmark in
            try RingLoopWorkloads.taskYield(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("continuation resume 1M (\(name))", configuration: config(.mega)) { benchmark in
            try RingLoopWorkloads.continuations(loop, count: benchmark.scaledIterations.count)
        }
        Benchmark("callSoonThreadsafe from another thread 1M (\(name))", configuration: config(.mega)) { benchmark in
            try RingLoopWorkloads.crossThread(loop, count: benchmark.scaledIterations.count)
        }
    }

    Benchmark("execute chain 1M (NIO)", configuration: config(.mega)) { benchmark in
        try NIOWorkloads.executeChain(nioLoop, count: benchmark.scaledIterations.count)
    }
    Benchmark("timers 1M random 0-500ms, schedule+fire (NIO)", configuration: config(.mega, iterations: 3)) { benchmark in
        try NIOWorkloads.timersFire(nioLoop, count: benchmark.scaledIterations.count)
    }
    // NIO cancels a scheduled task by a linear search of its heap, so 1M
    // schedule+cancel is quadratic there (hours); the side-by-side row is 10k.
    Benchmark("timers schedule+cancel, 10k live, 1M total (NIO)", configuration: config(.mega)) { benchmark in
        for _ in 0..<(benchmark.scaledIterations.count / 10_000) {
            try NIOWorkloads.timersCancel(nioLoop, count: 10_000)
        }
    }
    Benchmark("actor Task.yield hop 1M (NIO)", configuration: config(.mega)) { benchmark in
        await NIOWorkloads.actorYield(nioLoop, count: benchmark.scaledIterations.count)
    }
    Benchmark("execute from another thread 1M (NIO)", configuration: config(.mega)) { benchmark in
        try NIOWorkloads.crossThreadExecute(nioLoop, count: benchmark.scaledIterations.count)
    }
}
