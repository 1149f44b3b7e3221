/// One number a workload reports: the key in the JSON line a worker or the
/// load client prints, and how to show it.
public struct Metric: Sendable, Codable, Equatable, Hashable {
    /// The key in the worker's JSON line.
    public var key: String
    /// Column heading, unit included: "server CPU µs/op".
    public var label: String
    /// Multiplies the raw value into the shown unit (ns to µs is 0.001).
    public var scale: Double = 1
    /// True for costs (time, CPU, bytes), false for rates (operations per second).
    public var lowerIsBetter: Bool
    /// Digits after the point when shown.
    public var digits: Int = 1

    public init(key: String, label: String, scale: Double = 1, lowerIsBetter: Bool, digits: Int = 1) {
        self.key = key
        self.label = label
        self.scale = scale
        self.lowerIsBetter = lowerIsBetter
        self.digits = digits
    }

    public func value(in sample: [String: Double]) -> Double? { sample[key].map { $0 * scale } }

    /// The cost of `value` relative to `baseline`: above 1 is slower or costlier,
    /// whichever way the metric points, so every ratio in the report reads alike.
    public func relativeCost(_ value: Double, baseline: Double) -> Double? {
        guard value > 0, baseline > 0 else { return nil }
        return lowerIsBetter ? value / baseline : baseline / value
    }

    // Loop micro-workloads.
    public static let cpuPerOp = Metric(key: "cpu_ns_per_op", label: "CPU ns/op", lowerIsBetter: true, digits: 0)
    public static let wallPerOp = Metric(key: "wall_ns_per_op", label: "wall ns/op", lowerIsBetter: true, digits: 0)

    // Sockets. Server CPU is the cgroup's figure where the runner could make
    // one, otherwise the schedstat sum over the server's threads.
    public static let serverCPU = Metric(key: "server_cpu_ns_per_op", label: "server CPU µs/op", scale: 0.001, lowerIsBetter: true, digits: 2)
    public static let schedstatCPU = Metric(key: "schedstat_cpu_ns_per_op", label: "schedstat µs/op", scale: 0.001, lowerIsBetter: true, digits: 2)
    public static let systemBusy = Metric(key: "system_busy_ns_per_op", label: "machine busy µs/op", scale: 0.001, lowerIsBetter: true, digits: 2)
    public static let clientCPU = Metric(key: "client_cpu_ns_per_op", label: "client CPU µs/op", scale: 0.001, lowerIsBetter: true, digits: 2)
    public static let opsPerSecond = Metric(key: "ops_per_s", label: "ops/s", lowerIsBetter: false, digits: 0)
    public static let p50 = Metric(key: "p50_us", label: "p50 µs", lowerIsBetter: true)
    public static let p99 = Metric(key: "p99_us", label: "p99 µs", lowerIsBetter: true)
    public static let p999 = Metric(key: "p999_us", label: "p99.9 µs", lowerIsBetter: true)
    public static let maxLatency = Metric(key: "max_us", label: "max µs", lowerIsBetter: true)
    public static let meanLatency = Metric(key: "mean_us", label: "mean µs", lowerIsBetter: true)
    public static let connMin = Metric(key: "conn_min", label: "min/conn", lowerIsBetter: false, digits: 0)
    public static let connMedian = Metric(key: "conn_median", label: "median/conn", lowerIsBetter: false, digits: 0)
    public static let connMax = Metric(key: "conn_max", label: "max/conn", lowerIsBetter: false, digits: 0)
    public static let connStarved = Metric(key: "conn_starved", label: "starved conns", lowerIsBetter: true, digits: 0)
    public static let syscallsPerOp = Metric(key: "syscalls_per_op", label: "syscalls/op", lowerIsBetter: true, digits: 2)
    public static let bytesPerConnection = Metric(key: "bytes_per_conn", label: "bytes/conn", lowerIsBetter: true, digits: 0)
    /// Large messages: payload gigabytes echoed per second, and server CPU
    /// milliseconds per gigabyte (computed by the runner from the client's line).
    public static let gigabytesPerSecond = Metric(key: "gb_per_s", label: "GB/s", lowerIsBetter: false, digits: 2)
    public static let cpuPerGigabyte = Metric(key: "cpu_ms_per_gb", label: "server CPU ms/GB", lowerIsBetter: true, digits: 1)

    // Files.
    public static let mibPerSecond = Metric(key: "mib_per_s", label: "MiB/s", lowerIsBetter: false, digits: 0)
    public static let readCPU = Metric(key: "cpu_us_per_op", label: "CPU µs/read", lowerIsBetter: true, digits: 2)
    public static let readsPerCPUSecond = Metric(key: "ops_per_cpu_s", label: "reads/CPU-s", lowerIsBetter: false, digits: 0)
    public static let residentBefore = Metric(key: "resident_before", label: "cached before", lowerIsBetter: false, digits: 2)
    public static let copySeconds = Metric(key: "seconds", label: "seconds", lowerIsBetter: true, digits: 3)
}
