/// One of the project's performance targets, checked against this run.
struct TargetCheck: Codable {
    var target: String
    var workload: String
    /// RingLoop/io_uring's figure over the peer's, as the target states it.
    var ratio: Double?
    var limit: String
    /// nil when a contestant it needs did not run.
    var met: Bool?

    /// The targets of the core and I/O issues:
    /// - server CPU per request below SwiftNIO's on every socket workload;
    /// - server CPU per request within 10% of the C liburing server's;
    /// - random file reads at 0.9× fio's rate or better.
    static func all(in workloads: [Report.WorkloadResult]) -> [TargetCheck] {
        var checks: [TargetCheck] = []
        for result in workloads {
            if result.metric == .serverCPU || result.extras.contains(.serverCPU) {
                let ours = value(result, .ringloopURing, .serverCPU)
                let nio = ratio(ours, value(result, .nio, .serverCPU))
                checks.append(TargetCheck(target: "server CPU/request vs SwiftNIO", workload: result.id,
                                          ratio: nio, limit: "< 1.00", met: nio.map { $0 < 1 }))
                let c = ratio(ours, value(result, .cLiburing, .serverCPU))
                checks.append(TargetCheck(target: "server CPU/request vs C liburing", workload: result.id,
                                          ratio: c, limit: "≤ 1.10", met: c.map { $0 <= 1.10 }))
            }
            if result.id.hasPrefix("file-random") {
                let rate = ratio(value(result, .ringloopURing, .opsPerSecond), value(result, .fio, .opsPerSecond))
                checks.append(TargetCheck(target: "random reads/s vs fio", workload: result.id,
                                          ratio: rate, limit: "≥ 0.90", met: rate.map { $0 >= 0.9 }))
            }
        }
        return checks
    }

    private static func value(_ result: Report.WorkloadResult, _ contestant: Contestant, _ metric: Metric) -> Double? {
        guard let entry = result.entry(contestant) else { return nil }
        return result.metric == metric ? entry.median : entry.extraMedians[metric.key]
    }

    private static func ratio(_ a: Double?, _ b: Double?) -> Double? {
        guard let a, let b, b > 0 else { return nil }
        return a / b
    }
}
