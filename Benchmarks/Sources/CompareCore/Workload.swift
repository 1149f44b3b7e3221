/// One row group of the report: what runs, with which parameters, over which
/// contestants, and which metric the ratios are taken on.
public struct Workload: Sendable {
    public enum Kind: Sendable, Equatable {
        /// A loop micro-workload, by its name in BenchWorker and
        /// asyncio_micro.py; `batch` is its live-timer count where it has one.
        case micro(name: String, batch: Int)
        /// TCP echo through the C load client, closed loop.
        case echo(connections: Int, size: Int)
        /// TCP echo at a fixed offered rate (open loop, coordinated omission corrected).
        case rate(connections: Int, size: Int, perSecond: Int)
        /// Connect, echo 1 byte, close, `concurrency` at a time.
        case accept(concurrency: Int)
        /// Resident memory per idle connection (the connection count is a setting).
        case idle(size: Int)
        /// File reads, `depth` in flight.
        case file(pattern: String, direct: Bool, depth: Int, blockSize: Int)
        /// Copy the 1 GiB data file.
        case copy
        /// HTTP/1.1 hello under wrk (`-t1 -c<connections>`), keep-alive.
        case http(connections: Int)
    }

    public enum Group: String, CaseIterable, Sendable { case micro, socket, file }

    public let id: String
    public let title: String
    public let kind: Kind
    /// The metric medians, ranges and ratios are taken on.
    public let primary: Metric
    /// Shown beside it, medians only.
    public let extras: [Metric]
    public let contestants: [Contestant]

    public var group: Group {
        switch kind {
        case .micro: .micro
        case .echo, .rate, .accept, .idle, .http: .socket
        case .file, .copy: .file
        }
    }

    public var isSocket: Bool { group == .socket }

    /// Timers fire at this density in the spread-timer rows in every mode,
    /// so their wake-up batching is the same whatever the timer count.
    public static let spreadTimersPerMillisecond = 100

    /// Every workload, in report order.
    public static let all: [Workload] = {
        let loops: [Contestant] = [.ringloopURing, .ringloopEpoll, .nio, .asyncio, .uvloop]
        let servers: [Contestant] = [
            .ringloopURing, .ringloopEpoll, .ringloopURingProtocol, .ringloopEpollProtocol, .nio, .nioAsync,
            .asyncio, .asyncioStreams, .uvloop, .uvloopStreams, .cLiburing, .cLiburingTuned, .cEpoll, .libuv, .go,
        ]
        let readers: [Contestant] = loops + [.fio, .fioFixed]
        let latency: [Metric] = [.p50, .p99, .p999, .maxLatency, .meanLatency]
        let fairness: [Metric] = [.connMin, .connMedian, .connMax, .connStarved]
        let cost: [Metric] = [.schedstatCPU, .systemBusy, .clientCPU, .syscallsPerOp]
        func micro(_ id: String, _ name: String, batch: Int = 0, _ title: String) -> Workload {
            Workload(id: id, title: title, kind: .micro(name: name, batch: batch), primary: .cpuPerOp, extras: [.wallPerOp],
                     contestants: loops)
        }
        var workloads: [Workload] = [micro("callsoon", "callSoon", "callSoon chain (each callback schedules the next)")]
        for (suffix, batch) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
            workloads.append(micro("timers-due-\(suffix)", "timersDue", batch: batch,
                                   "timers already due: schedule \(suffix) at deadline now, fire them all"))
        }
        for (suffix, batch) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
            workloads.append(micro("timers-spread-\(suffix)", "timersSpread", batch: batch,
                                   "timers spread over time: \(suffix) live, \(spreadTimersPerMillisecond) due per ms, all fire"))
        }
        for (suffix, batch) in [("1k", 1_000), ("10k", 10_000), ("100k", 100_000)] {
            workloads.append(micro("cancel-\(suffix)", "cancel", batch: batch, "timers: schedule \(suffix), cancel them all"))
        }
        workloads += [
            micro("hop", "hop", "hop: a continuation resumed by a loop callback, on the loop's thread"),
            micro("cross-thread", "crossThread", "cross-thread call (callSoonThreadsafe / execute)"),
            Workload(id: "echo-latency", title: "TCP echo, 1 connection × 64 B (latency)", kind: .echo(connections: 1, size: 64),
                     primary: .p50, extras: [.p99, .p999, .maxLatency, .serverCPU, .opsPerSecond, .syscallsPerOp], contestants: servers),
            Workload(id: "echo-64x64", title: "TCP echo, 64 connections × 64 B", kind: .echo(connections: 64, size: 64),
                     primary: .serverCPU, extras: [.opsPerSecond] + latency + fairness + cost, contestants: servers),
            Workload(id: "echo-1000x4k", title: "TCP echo, 1,000 connections × 4 KiB", kind: .echo(connections: 1000, size: 4096),
                     primary: .serverCPU, extras: [.opsPerSecond] + latency + fairness + cost, contestants: servers),
            Workload(id: "echo-256k", title: "TCP echo, 4 connections × 256 KiB messages (throughput)",
                     kind: .echo(connections: 4, size: 256 * 1024),
                     primary: .cpuPerGigabyte, extras: [.gigabytesPerSecond, .p50, .p99, .connMin, .connStarved], contestants: servers),
            Workload(id: "echo-rate", title: "TCP echo, 64 connections × 64 B at a fixed 20,000 requests/s (open loop)",
                     kind: .rate(connections: 64, size: 64, perSecond: 20_000),
                     primary: .p99, extras: [.p50, .p999, .maxLatency, .opsPerSecond, .serverCPU, .connStarved], contestants: servers),
            Workload(id: "accept", title: "accept rate: connect, echo 1 B, close (16 at a time)", kind: .accept(concurrency: 16),
                     primary: .serverCPU, extras: [.opsPerSecond, .p50, .p99, .p999, .syscallsPerOp, .clientCPU], contestants: servers),
            Workload(id: "idle-memory", title: "memory per idle connection (RSS growth over the idle connections)",
                     kind: .idle(size: 64), primary: .bytesPerConnection, extras: [], contestants: servers),
            Workload(id: "http-hello", title: "HTTP/1.1 hello, wrk -t1 -c64, keep-alive (server CPU per request)",
                     kind: .http(connections: 64), primary: .serverCPU, extras: [.opsPerSecond, .p50, .p99],
                     contestants: [.ringloopURing, .ringloopEpoll, .nio, .uvloop]),
            Workload(id: "file-random", title: "file: random 4 KiB reads, 32 in flight, buffered (page cache)",
                     kind: .file(pattern: "random", direct: false, depth: 32, blockSize: 4096),
                     primary: .opsPerSecond, extras: [.readsPerCPUSecond, .readCPU, .residentBefore], contestants: readers),
            Workload(id: "file-random-direct", title: "file: random 4 KiB reads, 32 in flight, O_DIRECT",
                     kind: .file(pattern: "random", direct: true, depth: 32, blockSize: 4096),
                     primary: .opsPerSecond, extras: [.readsPerCPUSecond, .readCPU], contestants: readers.filter { $0 != .nio }),
            Workload(id: "file-sequential", title: "file: sequential 1 GiB read, 1 MiB blocks, 4 in flight, buffered",
                     kind: .file(pattern: "sequential", direct: false, depth: 4, blockSize: 1 << 20),
                     primary: .mibPerSecond, extras: [.readsPerCPUSecond, .readCPU, .residentBefore], contestants: readers),
            Workload(id: "copy-file", title: "copy the 1 GiB file (copyFile against cp)", kind: .copy,
                     primary: .copySeconds, extras: [], contestants: [.ringloopURing, .ringloopEpoll, .cp]),
        ]
        return workloads
    }()
}
