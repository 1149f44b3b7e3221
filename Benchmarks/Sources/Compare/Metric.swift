/// One number a workload reports: the key in the JSON line a worker or the
/// load client prints, and how to show it.
struct Metric: Sendable, Codable, Equatable {
    /// The key in the worker's JSON line.
    var key: String
    /// Column heading, unit included: "server CPU µs/op".
    var label: String
    /// Multiplies the raw value into the shown unit (ns to µs is 0.001).
    var scale: Double = 1
    /// True for costs (time, CPU), false for rates (operations per second).
    var lowerIsBetter: Bool
    /// Digits after the point when shown.
    var digits: Int = 1

    func value(in sample: [String: Double]) -> Double? { sample[key].map { $0 * scale } }

    /// The cost of `value` relative to `baseline`: above 1 is slower or costlier,
    /// whichever way the metric points, so every ratio in the report reads alike.
    func relativeCost(_ value: Double, baseline: Double) -> Double? {
        guard value > 0, baseline > 0 else { return nil }
        return lowerIsBetter ? value / baseline : baseline / value
    }

    static let cpuPerOp = Metric(key: "cpu_ns_per_op", label: "CPU ns/op", lowerIsBetter: true, digits: 0)
    static let wallPerOp = Metric(key: "wall_ns_per_op", label: "wall ns/op", lowerIsBetter: true, digits: 0)
    static let serverCPU = Metric(key: "server_cpu_ns_per_op", label: "server CPU µs/op", scale: 0.001, lowerIsBetter: true, digits: 2)
    static let opsPerSecond = Metric(key: "ops_per_s", label: "ops/s", lowerIsBetter: false, digits: 0)
    static let p50 = Metric(key: "p50_us", label: "p50 µs", lowerIsBetter: true)
    static let p99 = Metric(key: "p99_us", label: "p99 µs", lowerIsBetter: true)
    static let mibPerSecond = Metric(key: "mib_per_s", label: "MiB/s", lowerIsBetter: false, digits: 0)
    static let readCPU = Metric(key: "cpu_us_per_op", label: "CPU µs/read", lowerIsBetter: true, digits: 2)
}
