/// One row group of the report: what runs, with which parameters, over which
/// contestants, and which metric the ratios are taken on.
struct Workload: Sendable {
    enum Kind: Sendable {
        /// A loop micro-workload, by its name in BenchWorker and asyncio_micro.py.
        case micro(name: String)
        /// TCP echo through the C load client.
        case echo(connections: Int, size: Int)
        /// Connect, echo 1 byte, close, `concurrency` at a time.
        case accept(concurrency: Int)
        /// File reads, `depth` in flight.
        case file(pattern: String, direct: Bool, depth: Int, blockSize: Int)
    }

    enum Group: String, CaseIterable, Sendable { case micro, socket, file }

    let id: String
    let title: String
    let kind: Kind
    /// The metric medians, ranges and ratios are taken on.
    let primary: Metric
    /// Shown beside it, medians only.
    let extras: [Metric]
    let contestants: [Contestant]

    var group: Group {
        switch kind {
        case .micro: .micro
        case .echo, .accept: .socket
        case .file: .file
        }
    }

    var isSocket: Bool { group == .socket }

    /// Every workload, in report order.
    static let all: [Workload] = {
        let loops: [Contestant] = [.ringloopURing, .ringloopEpoll, .nio, .asyncio, .uvloop]
        let servers: [Contestant] = loops + [.cLiburing, .cEpoll]
        let readers: [Contestant] = loops + [.fio]
        let socketExtras: [Metric] = [.opsPerSecond, .p50, .p99]
        func micro(_ id: String, _ name: String, _ title: String) -> Workload {
            Workload(id: id, title: title, kind: .micro(name: name), primary: .cpuPerOp, extras: [.wallPerOp], contestants: loops)
        }
        return [
            micro("callsoon", "callSoon", "callSoon chain (each callback schedules the next)"),
            micro("timers", "timers", "timers: schedule at random 0-500 ms, all fire"),
            micro("cancel", "cancel", "timers: schedule then cancel, 10k live"),
            micro("hop", "hop", "task hop (Task.yield / NIO-bound actor / await sleep(0))"),
            micro("cross-thread", "crossThread", "cross-thread call (callSoonThreadsafe / execute)"),
            Workload(id: "echo-latency", title: "TCP echo, 1 connection × 64 B (latency)", kind: .echo(connections: 1, size: 64),
                     primary: .p50, extras: [.p99, .serverCPU, .opsPerSecond], contestants: servers),
            Workload(id: "echo-64x64", title: "TCP echo, 64 connections × 64 B", kind: .echo(connections: 64, size: 64),
                     primary: .serverCPU, extras: socketExtras, contestants: servers),
            Workload(id: "echo-1000x4k", title: "TCP echo, 1,000 connections × 4 KiB", kind: .echo(connections: 1000, size: 4096),
                     primary: .serverCPU, extras: socketExtras, contestants: servers),
            Workload(id: "accept", title: "accept rate: connect, echo 1 B, close (16 at a time)", kind: .accept(concurrency: 16),
                     primary: .serverCPU, extras: socketExtras, contestants: servers),
            Workload(id: "file-random", title: "file: random 4 KiB reads, 32 in flight, buffered (page cache)",
                     kind: .file(pattern: "random", direct: false, depth: 32, blockSize: 4096),
                     primary: .opsPerSecond, extras: [.readCPU], contestants: readers),
            Workload(id: "file-random-direct", title: "file: random 4 KiB reads, 32 in flight, O_DIRECT",
                     kind: .file(pattern: "random", direct: true, depth: 32, blockSize: 4096),
                     primary: .opsPerSecond, extras: [.readCPU], contestants: readers.filter { $0 != .nio }),
            Workload(id: "file-sequential", title: "file: sequential 1 GiB read, 1 MiB blocks, 4 in flight, buffered",
                     kind: .file(pattern: "sequential", direct: false, depth: 4, blockSize: 1 << 20),
                     primary: .mibPerSecond, extras: [.readCPU], contestants: readers),
        ]
    }()
}
