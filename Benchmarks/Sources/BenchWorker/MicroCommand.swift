import ArgumentParser
import LoopWorkloads
import NIOCore
import NIOPosix
import RingLoop

/// One loop micro-workload on one contestant: a warm-up of a tenth of the
/// count, then the measured run. Reports CPU and wall nanoseconds per
/// operation; CPU is the headline because the timer workload's deadlines
/// spread over 500 ms, which the wall clock would count as work.
struct MicroCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "micro", abstract: "Run one loop micro-workload and print ns/op.")

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case callSoon, timers, cancel, hop, crossThread
    }

    @Option(help: "uring, epoll or nio.") var contestant: SwiftContestant
    @Option(help: "callSoon, timers, cancel, hop or crossThread.") var workload: Workload
    @Option(help: "Operations in the measured run.") var count: Int = 1_000_000

    func validate() throws {
        guard count >= 10_000 else { throw ValidationError("--count must be at least 10000 (got \(count))") }
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
        try body(count / 10)
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
        case .timers: try RingLoopWorkloads.timersFire(loop, count: count)
        case .cancel: try RingLoopWorkloads.timersCancelBatched(loop, count: count)
        case .hop: try RingLoopWorkloads.taskYield(loop, count: count)
        case .crossThread: try RingLoopWorkloads.crossThread(loop, count: count)
        }
    }

    private func nio(_ loop: any NIOCore.EventLoop, _ count: Int) throws {
        switch workload {
        case .callSoon: try NIOWorkloads.executeChain(loop, count: count)
        case .timers: try NIOWorkloads.timersFire(loop, count: count)
        case .cancel: try NIOWorkloads.timersCancelBatched(loop, count: count)
        case .hop: try loop.makeFutureWithTask { await NIOWorkloads.actorYield(loop, count: count) }.wait()
        case .crossThread: try NIOWorkloads.crossThreadExecute(loop, count: count)
        }
    }
}
