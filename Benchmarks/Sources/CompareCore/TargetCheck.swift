/// One of the project's performance targets, checked against this run.
///
/// The verdict uses the 95% interval, not the median alone: a target is
/// *met* when the whole interval satisfies it, *missed* when none of it does,
/// and *undecided* when the interval straddles the limit: the run cannot tell.
public struct TargetCheck: Codable, Sendable {
    public enum Verdict: String, Codable, Sendable { case met, missed, undecided, notMeasured = "not measured" }

    public var target: String
    public var workload: String
    /// The measured figure: a paired ratio (subject over peer, per round) or
    /// an absolute value, with its interval.
    public var value: Statistics.Interval?
    /// "≤ 1.00", "≥ 0.90", "≤ 512".
    public var limit: String
    public var verdict: Verdict
    /// Which issue set the target.
    public var issue: Int

    /// What a target compares.
    public struct Spec: Sendable {
        public enum Comparison: String, Sendable { case atMost = "≤", below = "<", atLeast = "≥" }
        public var title: String
        public var workload: String
        public var subject: Contestant
        /// nil: an absolute target on the subject's own figure.
        public var peer: Contestant?
        public var metric: Metric
        public var comparison: Comparison
        public var limit: Double
        public var issue: Int
    }

    /// The targets the issues set, on the report's workloads.
    public static let specs: [Spec] = {
        var specs: [Spec] = []
        func ratio(_ title: String, _ workload: String, _ subject: Contestant, _ peer: Contestant, _ metric: Metric,
                   _ comparison: Spec.Comparison, _ limit: Double, issue: Int) {
            specs.append(Spec(title: title, workload: workload, subject: subject, peer: peer, metric: metric,
                              comparison: comparison, limit: limit, issue: issue))
        }
        // Issue 9: the protocol path on io_uring.
        let proto = Contestant.ringloopURingProtocol, stream = Contestant.ringloopURing
        ratio("protocol CPU/request vs C liburing", "echo-64x64", proto, .cLiburing, .serverCPU, .atMost, 1.0, issue: 9)
        ratio("protocol CPU/request vs uvloop", "echo-64x64", proto, .uvloop, .serverCPU, .atMost, 0.8, issue: 9)
        ratio("protocol CPU/request vs C liburing", "echo-1000x4k", proto, .cLiburing, .serverCPU, .atMost, 1.0, issue: 9)
        ratio("protocol CPU/request vs SwiftNIO", "echo-1000x4k", proto, .nio, .serverCPU, .atMost, 0.7, issue: 9)
        ratio("protocol CPU/connection vs C liburing", "accept", proto, .cLiburing, .serverCPU, .atMost, 1.0, issue: 9)
        // Issue 9: the stream path on io_uring.
        ratio("stream CPU/request vs C liburing", "echo-64x64", stream, .cLiburing, .serverCPU, .atMost, 1.1, issue: 9)
        ratio("stream CPU/request vs uvloop", "echo-64x64", stream, .uvloop, .serverCPU, .atMost, 0.9, issue: 9)
        ratio("stream CPU/request vs SwiftNIO", "echo-64x64", stream, .nio, .serverCPU, .atMost, 0.75, issue: 9)
        ratio("stream CPU/request vs C liburing", "echo-1000x4k", stream, .cLiburing, .serverCPU, .atMost, 1.25, issue: 9)
        ratio("stream CPU/request vs SwiftNIO", "echo-1000x4k", stream, .nio, .serverCPU, .atMost, 0.85, issue: 9)
        // Issue 9: io_uring against RingLoop's own epoll, same API.
        for workload in ["echo-64x64", "echo-1000x4k"] {
            ratio("stream io_uring vs epoll CPU/request", workload, stream, .ringloopEpoll, .serverCPU, .atMost, 0.85, issue: 9)
            ratio("protocol io_uring vs epoll CPU/request", workload, proto, .ringloopEpollProtocol, .serverCPU, .atMost, 0.85, issue: 9)
        }
        ratio("latency p50 vs C liburing", "echo-latency", stream, .cLiburing, .p50, .atMost, 1.05, issue: 9)
        specs.append(Spec(title: "protocol bytes per idle connection", workload: "idle-memory", subject: proto, peer: nil,
                          metric: .bytesPerConnection, comparison: .atMost, limit: 512, issue: 9))
        specs.append(Spec(title: "stream bytes per idle connection", workload: "idle-memory", subject: stream, peer: nil,
                          metric: .bytesPerConnection, comparison: .atMost, limit: 2048, issue: 9))
        for subject in [stream, proto, .ringloopEpoll, .ringloopEpollProtocol] {
            specs.append(Spec(title: "\(subject.displayName): starved connections", workload: "echo-1000x4k", subject: subject,
                              peer: nil, metric: .connStarved, comparison: .atMost, limit: 0, issue: 9))
            specs.append(Spec(title: "\(subject.displayName): least-served / median connection", workload: "echo-1000x4k",
                              subject: subject, peer: nil, metric: fairness, comparison: .atLeast, limit: 0.5, issue: 9))
        }
        // Issue 12: files and timers.
        ratio("page-cache random reads/s vs fio", "file-random", stream, .fio, .opsPerSecond, .atLeast, 0.9, issue: 12)
        ratio("page-cache CPU/read vs fio", "file-random", stream, .fio, .readCPU, .atMost, 1.3, issue: 12)
        ratio("O_DIRECT random reads/s vs fio", "file-random-direct", stream, .fio, .opsPerSecond, .atLeast, 0.95, issue: 12)
        ratio("copyFile 1 GiB time vs cp", "copy-file", stream, .cp, .copySeconds, .atMost, 1.1, issue: 12)
        for suffix in ["1k", "10k", "100k"] {
            ratio("sparse timers: io_uring vs epoll CPU/timer", "timers-spread-\(suffix)", stream, .ringloopEpoll, .cpuPerOp,
                  .atMost, 1.0, issue: 12)
        }
        return specs
    }()

    /// Least-served connection over the median connection, per run.
    public static let fairness = Metric(key: "conn_fairness", label: "min/median", lowerIsBetter: false, digits: 2)

    public static func all(in workloads: [Report.WorkloadResult], seed: UInt64 = 0x5EED) -> [TargetCheck] {
        specs.map { check($0, in: workloads, seed: seed) }
    }

    public static func check(_ spec: Spec, in workloads: [Report.WorkloadResult], seed: UInt64 = 0x5EED) -> TargetCheck {
        let limitText = "\(spec.comparison.rawValue) " + (spec.peer == nil && spec.limit >= 10
            ? String(format: "%.0f", spec.limit) : String(format: "%.2f", spec.limit))
        var check = TargetCheck(target: spec.title, workload: spec.workload, value: nil, limit: limitText, verdict: .notMeasured,
                                issue: spec.issue)
        guard let result = workloads.first(where: { $0.id == spec.workload }),
              let subject = result.entry(spec.subject), !subject.samples.isEmpty else { return check }
        let values: [Double]
        if let peer = spec.peer {
            guard let other = result.entry(peer), !other.samples.isEmpty else { return check }
            // A raw ratio of the metric (not the cost orientation): the limit reads as the issue states it.
            let a = byRound(subject.samples, spec.metric), b = byRound(other.samples, spec.metric)
            values = a.keys.sorted().compactMap { round in
                guard let x = a[round], let y = b[round], y > 0 else { return nil }
                return x / y
            }
        } else {
            values = subject.samples.compactMap { value(of: spec.metric, in: $0.values) }
        }
        guard let interval = Statistics.bootstrapMedian(values, seed: seed) else { return check }
        check.value = interval
        check.verdict = verdict(interval, spec.comparison, spec.limit)
        return check
    }

    static func byRound(_ samples: [Report.Sample], _ metric: Metric) -> [Int: Double] {
        var values: [Int: Double] = [:]
        for sample in samples { if let v = value(of: metric, in: sample.values) { values[sample.round] = v } }
        return values
    }

    static func value(of metric: Metric, in values: [String: Double]) -> Double? {
        if metric == fairness {
            guard let low = values["conn_min"], let middle = values["conn_median"], middle > 0 else { return nil }
            return low / middle
        }
        return metric.value(in: values)
    }

    public static func verdict(_ interval: Statistics.Interval, _ comparison: Spec.Comparison, _ limit: Double) -> Verdict {
        func holds(_ x: Double) -> Bool {
            switch comparison {
            case .atMost: x <= limit
            case .below: x < limit
            case .atLeast: x >= limit
            }
        }
        if holds(interval.low) && holds(interval.high) { return .met }
        if !holds(interval.low) && !holds(interval.high) { return .missed }
        return .undecided
    }
}
