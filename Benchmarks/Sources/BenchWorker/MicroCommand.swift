import ArgumentParser
import LoopWorkloads
import NIOCore
import NIOPosix
import RingLoop

/// One loop micro-workload on one contestant: a warm-up of a tenth of the
/// count, then the measured run. Reports CPU and wall nanoseconds per
/// operation; CPU is the headline because the spread timers' deadlines span
/// wall time that is not work.
struct MicroCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "micro", abstract: "Run one loop micro-workload and print ns/op.")

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case callSoon, timersDue, timersSpread, cancel, hop, crossThread
    }

    @Option(help: "uring, epoll or nio.") var contestant: SwiftContestant
    @Option(help: "callSoon, timersDue, timersSpread, cancel, hop or crossThread.") var workload: Workload
    @Option(help: "Operations in the measured run.") var count: Int = 1_000_000
    @Option(help: "Live timers at a time (timersDue, timersSpread, cancel).") var batch: Int = 10_000
    @Option(help: "Spread timers coming due per millisecond.") var perMillisecond: Int = 100

    func validate() throws {
        guard count >= 10_000 else { throw ValidationError("--count must be at least 10000 (got \(count))") }
        guard batch > 0, perMillisecond > 0 else { throw ValidationError("--batch and --per-millisecond must be positive") }
        if workload == .timersSpread, batch < perMillisecond {
            throw ValidationError("--batch must be at least --per-millisecond (one millisecond's worth of timers)")
        }
    }

    func run() throws {
        let body: (Int) throws -> Void
        switch contestant {
        case .uring, .epoll:
            let loop = try RingLoop.EventLoop(backend: contestant == .uring ? .uring : .epoll)
            body = { count in try ringLoop(loop, count) }
        case .nio:
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            body = { count in try nio(group.next(), count) }
        }
        // The warm-up keeps the batch, so it touches the same heap sizes.
        try body(max(count / 10, min(count, batch)))
        let cpu = processCPUNanoseconds(), wall = monotonicNanoseconds()
        try body(count)
        printMetrics([
            "cpu_ns_per_op": (processCPUNanoseconds() - cpu) / Double(count),
            "wall_ns_per_op": (monotonicNanoseconds() - wall) / Double(count),
        ])
    }

    private func ringLoop(_ loop: RingLoop.EventLoop, _ count: Int) throws {
        switch workload {
        case .callSoon: try RingLoopWorkloads.callSoonChain(loop, count: count)
        case .timersDue: try RingLoopWorkloads.timersDue(loop, count: count, batch: batch)
        case .timersSpread: try RingLoopWorkloads.timersSpread(loop, count: count, batch: batch, perMillisecond: perMillisecond)
        case .cancel: try RingLoopWorkloads.timersCancelBatched(loop, count: count, liveTimers: batch)
        case .hop: try RingLoopWorkloads.actorContinuations(loop, count: count)
        case .crossThread: try RingLoopWorkloads.crossThread(loop, count: count)
        }
    }

    private func nio(_ loop: any NIOCore.EventLoop, _ count: Int) throws {
        switch workload {
        case .callSoon: try NIOWorkloads.executeChain(loop, count: count)
        case .timersDue: try NIOWorkloads.timersDue(loop, count: count, batch: batch)
        case .timersSpread: try NIOWorkloads.timersSpread(loop, count: count, batch: batch, perMillisecond: perMillisecond)
        case .cancel: try NIOWorkloads.timersCancelBatched(loop, count: count, liveTimers: batch)
        case .hop: try loop.makeFutureWithTask { await NIOWorkloads.actorContinuations(loop, count: count) }.wait()
        case .crossThread: try NIOWorkloads.crossThreadExecute(loop, count: count)
        }
    }
}
