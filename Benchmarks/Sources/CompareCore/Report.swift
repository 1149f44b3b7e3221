/// Everything one comparison run found: what the runner writes as JSON, and
/// what the tables and the chart are drawn from.
///
/// The schema is versioned (``schemaVersion``); `Compare --render` reads a
/// saved report back, and a test decodes the committed one, so a change that
/// breaks old reports fails CI.
public struct Report: Codable, Sendable {
    public static let currentSchemaVersion = 2

    public struct Fact: Codable, Sendable, Equatable {
        public var name: String
        public var value: String
        public init(name: String, value: String) {
            self.name = name
            self.value = value
        }
    }

    /// One successful run of one contestant: its round, when it ran, and the
    /// metrics it reported.
    public struct Sample: Codable, Sendable {
        public var round: Int
        /// ISO 8601, UTC.
        public var timestamp: String
        public var values: [String: Double]
        public init(round: Int, timestamp: String, values: [String: Double]) {
            self.round = round
            self.timestamp = timestamp
            self.values = values
        }
    }

    public struct Entry: Codable, Sendable {
        public var contestant: Contestant
        public var name: String
        public var samples: [Sample]
        /// Why runs failed, one line each.
        public var failures: [String]
        /// Median, minimum and maximum of the primary metric, in its shown unit.
        public var median: Double?
        public var min: Double?
        public var max: Double?
        /// Cost relative to RingLoop/io_uring on the primary metric, paired
        /// by round, with its bootstrap interval; above 1 is costlier.
        public var ratio: Statistics.Interval?
        /// Medians of the extra metrics, by key, in their shown units.
        public var extraMedians: [String: Double]
        /// Warnings a reader must see beside the figures (starved connections,
        /// fio running shorter than asked, a cold page cache).
        public var flags: [String]
    }

    public struct WorkloadResult: Codable, Sendable {
        public var id: String
        public var title: String
        public var metric: Metric
        public var extras: [Metric]
        public var entries: [Entry]
        /// Per-workload notes: each contestant's real concurrency, for example.
        public var notes: [String]

        public func entry(_ contestant: Contestant) -> Entry? { entries.first { $0.contestant == contestant } }
    }

    public var schemaVersion: Int
    public var date: String
    public var command: String
    public var settings: Settings
    public var machine: [Fact]
    public var versions: [Fact]
    /// The RingLoop commit and tree state, virtualisation and steal time,
    /// the io_uring set-up the kernel accepted, the data file's filesystem.
    public var reproducibility: [Fact]
    public var workloads: [WorkloadResult]
    /// Contestants or workloads that could not run here, and why.
    public var skipped: [Fact]
    public var targets: [TargetCheck]

    public init(date: String, command: String, settings: Settings, machine: [Fact], versions: [Fact],
                reproducibility: [Fact], workloads: [WorkloadResult], skipped: [Fact], targets: [TargetCheck]) {
        schemaVersion = Self.currentSchemaVersion
        self.date = date
        self.command = command
        self.settings = settings
        self.machine = machine
        self.versions = versions
        self.reproducibility = reproducibility
        self.workloads = workloads
        self.skipped = skipped
        self.targets = targets
    }

    public func workload(_ id: String) -> WorkloadResult? { workloads.first { $0.id == id } }

    /// Condenses raw samples into medians, ranges, paired ratios and flags.
    public static func summarize(_ workload: Workload, contestants: [Contestant], samples: [Contestant: [Sample]],
                                 failures: [Contestant: [String]], notes: [String] = [], seed: UInt64 = 0x5EED) -> WorkloadResult {
        let baselineByRound = perRound(samples[.baseline] ?? [], workload.primary)
        let entries = contestants.map { contestant -> Entry in
            let runs = samples[contestant] ?? []
            let values = runs.compactMap { workload.primary.value(in: $0.values) }.sorted()
            var extras: [String: Double] = [:]
            for metric in workload.extras {
                if let median = Statistics.median(runs.compactMap { metric.value(in: $0.values) }) { extras[metric.key] = median }
            }
            let ratios = Statistics.pairedRatios(perRound(runs, workload.primary), over: baselineByRound,
                                                 lowerIsBetter: workload.primary.lowerIsBetter)
            return Entry(contestant: contestant, name: contestant.displayName, samples: runs, failures: failures[contestant] ?? [],
                         median: Statistics.median(values), min: values.first, max: values.last,
                         ratio: Statistics.bootstrapMedian(ratios, seed: seed), extraMedians: extras, flags: flags(runs))
        }
        return WorkloadResult(id: workload.id, title: workload.title, metric: workload.primary, extras: workload.extras,
                              entries: entries, notes: notes)
    }

    /// The primary metric by round.
    public static func perRound(_ samples: [Sample], _ metric: Metric) -> [Int: Double] {
        var values: [Int: Double] = [:]
        for sample in samples { if let value = metric.value(in: sample.values) { values[sample.round] = value } }
        return values
    }

    /// What a reader must not miss: connections that got no service, or far
    /// less than the others, in any round; runs the tool cut short.
    static func flags(_ samples: [Sample]) -> [String] {
        var flags: [String] = []
        let starved = samples.filter { ($0.values["conn_starved"] ?? 0) > 0 }
        if !starved.isEmpty {
            let worst = starved.map { Int($0.values["conn_starved"]!) }.max()!
            let conns = Int(starved[0].values["conns"] ?? 0)
            flags.append("STARVED: \(starved.count) of \(samples.count) runs left connections unserved "
                         + "(worst: \(worst) of \(conns) got no round trip in the window)")
        }
        let unfair = samples.filter { sample in
            guard let low = sample.values["conn_min"], let middle = sample.values["conn_median"], middle > 0 else { return false }
            return low > 0 && low < 0.5 * middle
        }
        if !unfair.isEmpty {
            flags.append("UNFAIR: in \(unfair.count) of \(samples.count) runs the least-served connection got under half the median")
        }
        let firstEcho = samples.filter { ($0.values["first_echo_timeout"] ?? 0) > 0 }
        if !firstEcho.isEmpty {
            flags.append("\(firstEcho.count) runs started measuring before every connection had its first reply (timeout)")
        }
        let short = samples.filter { ($0.values["runtime_shortfall"] ?? 0) > 0 }
        if !short.isEmpty { flags.append("\(short.count) runs ran shorter than requested") }
        let cold = samples.filter { ($0.values["resident_before"] ?? 1) < 0.99 }
        if !cold.isEmpty { flags.append("\(cold.count) runs started with part of the file out of the page cache") }
        return flags
    }
}
