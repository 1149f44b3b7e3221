import ArgumentParser
import Foundation

/// The comparison runner: every workload over every contestant, alternating,
/// with tables, a chart and JSON at the end.
///
///     swift build -c release && .build/release/Compare --quick
///     .build/release/Compare --only echo-64x64,accept --skip asyncio
@main
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare RingLoop (io_uring, epoll) with SwiftNIO, asyncio, uvloop, C and fio, side by side.",
        discussion: """
            Names for --only and --skip (comma-separated or repeated):
              workloads:   \(Workload.all.map(\.id).joined(separator: ", "))
              groups:      \(Workload.Group.allCases.map(\.rawValue).joined(separator: ", "))
              contestants: \(Contestant.allCases.map(\.rawValue).joined(separator: ", "))
            --only keeps RingLoop io_uring, the baseline of every ratio, unless --skip names it.
            """)

    @Flag(help: "About two minutes: 3 short rounds.") var quick = false
    @Flag(help: "About fifteen minutes: 5 rounds (the default).") var full = false
    @Option(help: "Run only these workloads, groups or contestants.") var only: [String] = []
    @Option(help: "Leave out these workloads, groups or contestants.") var skip: [String] = []
    @Option(help: "Rounds (runs per contestant), instead of the mode's.") var rounds: Int?
    @Option(help: "Where to write the JSON report (default: <results>/latest.json).") var json: String?
    @Option(help: "Directory for the chart, JSON and Markdown (default: benchmark-results/ in the repository).") var results: String?
    @Option(help: "The 1 GiB file the file workloads read (written when missing).") var dataFile = "/var/tmp/ringloop-compare.dat"
    @Flag(help: "List the workloads and contestants, then exit.") var list = false

    func validate() throws {
        if quick && full { throw ValidationError("--quick and --full are exclusive") }
        if let rounds, rounds < 1 { throw ValidationError("--rounds must be at least 1 (got \(rounds))") }
        let known = Set(Workload.all.map(\.id) + Workload.Group.allCases.map(\.rawValue) + Contestant.allCases.map(\.rawValue))
        for name in names(only) + names(skip) where !known.contains(name) {
            throw ValidationError("unknown name '\(name)'; known: \(known.sorted().joined(separator: ", "))")
        }
    }

    func run() throws {
        if list {
            for workload in Workload.all { print("\(workload.id)  [\(workload.group.rawValue)]  \(workload.title)") }
            for contestant in Contestant.allCases { print("\(contestant.rawValue)  \(contestant.displayName)") }
            return
        }
        Children.killAllOnInterrupt()
        raiseDescriptorLimit()
        var settings = quick ? Settings.quick : Settings.full
        if let rounds { settings.rounds = rounds }
        let (workloads, contestants) = selection()
        let log = { (line: String) in FileHandle.standardError.write(Data("==> \(line)\n".utf8)) }

        let benchmarks = try Toolbox.locateBenchmarks()
        let needsEchoServer = workloads.contains { $0.isSocket } && contestants.contains { [.ringloopURing, .ringloopEpoll].contains($0) }
        let tools = try Toolbox(benchmarks: benchmarks, contestants: Set(contestants), needsEchoServer: needsEchoServer, log: log)
        if workloads.contains(where: { $0.group == .file }) { try DataFile.prepare(at: dataFile, log: log) }

        // The plan: every round visits every workload, and within a workload every
        // contestant, starting one further along each round, so drift and a warm
        // cache favour no one.
        var plan: [(round: Int, workload: Workload, contestant: Contestant)] = []
        for round in 0..<settings.rounds {
            for workload in workloads {
                let taking = workload.contestants.filter { contestants.contains($0) && tools.unavailable[$0] == nil }
                guard !taking.isEmpty else { continue }
                for index in taking.indices { plan.append((round, workload, taking[(index + round) % taking.count])) }
            }
        }
        log("\(settings.mode) run: \(plan.count) runs of \(workloads.count) workloads")
        var measurement = Measurement(tools: tools, settings: settings, dataFile: dataFile)
        var samples: [String: [Contestant: [[String: Double]]]] = [:]
        var failures: [String: [Contestant: [String]]] = [:]
        let progress = Progress(total: plan.count)
        var warmedRound = -1
        for (index, run) in plan.enumerated() {
            if case .file(_, false, _, _) = run.workload.kind, warmedRound != run.round {
                DataFile.warm(dataFile)
                warmedRound = run.round
            }
            progress.begin(round: run.round + 1, rounds: settings.rounds, workload: run.workload, contestant: run.contestant,
                           remaining: plan[(index + 1)...].map { (key(of: $0.workload, $0.contestant), estimate($0.workload, settings)) })
            let started = Date()
            do {
                samples[run.workload.id, default: [:]][run.contestant, default: []].append(try measurement.run(run.workload, run.contestant))
            } catch {
                failures[run.workload.id, default: [:]][run.contestant, default: []].append("\(error)")
                progress.note("failed: \(run.workload.id) · \(run.contestant.displayName): \(error)")
            }
            progress.end(key: key(of: run.workload, run.contestant), seconds: Date().timeIntervalSince(started))
        }
        progress.finish()

        let results = workloads.map { workload in
            Report.summarize(workload, contestants: workload.contestants.filter { contestants.contains($0) && tools.unavailable[$0] == nil },
                             samples: samples[workload.id] ?? [:], failures: failures[workload.id] ?? [:])
        }
        let report = Report(
            date: ISO8601DateFormatter().string(from: Date()),
            command: (["Compare"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            settings: settings, machine: MachineInfo.machine(), versions: MachineInfo.versions(tools: tools),
            workloads: results,
            skipped: tools.unavailable.filter { contestants.contains($0.key) }.sorted { $0.key.rawValue < $1.key.rawValue }
                .map { Report.Fact(name: $0.key.displayName, value: $0.value) },
            targets: TargetCheck.all(in: results))
        try write(report, benchmarks: benchmarks, log: log)
    }

    private func write(_ report: Report, benchmarks: String, log: (String) -> Void) throws {
        print(Tables.header(for: report).joined(separator: "\n"))
        for table in Tables.tables(for: report) { print("\n" + Tables.text(table)) }

        let directory = results ?? URL(fileURLWithPath: benchmarks).deletingLastPathComponent().appendingPathComponent("benchmark-results").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let jsonPath = json ?? "\(directory)/latest.json"
        try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath))
        let charts = try Chart.write(Chart.svg(for: report), to: "\(directory)/ratios.svg")
        let markdownPath = "\(directory)/latest.md"
        try Tables.markdownDocument(for: report, chart: "ratios.svg").write(toFile: markdownPath, atomically: true, encoding: .utf8)
        print("\nWrote \(([jsonPath, markdownPath] + charts).joined(separator: ", "))")
    }

    /// The workloads and contestants `--only` and `--skip` leave.
    private func selection() -> ([Workload], [Contestant]) {
        let only = Set(names(only)), skip = Set(names(skip))
        func chosen(_ names: [String], among universe: Set<String>) -> Bool {
            let asked = only.intersection(universe)
            return (asked.isEmpty || names.contains(where: asked.contains)) && !names.contains(where: skip.contains)
        }
        let workloadNames = Set(Workload.all.flatMap { [$0.id, $0.group.rawValue] })
        let workloads = Workload.all.filter { chosen([$0.id, $0.group.rawValue], among: workloadNames) }
        var contestants = Contestant.allCases.filter { chosen([$0.rawValue], among: Set(Contestant.allCases.map(\.rawValue))) }
        if !contestants.contains(.baseline) && !skip.contains(Contestant.baseline.rawValue) {
            contestants.insert(.baseline, at: 0)
        }
        return (workloads, contestants)
    }

    private func names(_ values: [String]) -> [String] {
        values.flatMap { $0.split(separator: ",").map { $0.trimmed } }.filter { !$0.isEmpty }
    }

    private func key(of workload: Workload, _ contestant: Contestant) -> String { "\(workload.id)/\(contestant.rawValue)" }

    /// A first guess at a run's seconds, until the pair has run once.
    private func estimate(_ workload: Workload, _ settings: Settings) -> Double {
        switch workload.kind {
        case .micro: Double(settings.microCount) * 3e-6 + 0.2
        case .echo, .accept: settings.socketSeconds + settings.socketWarmup + 0.4
        case .file(let pattern, _, _, _): pattern == "random" ? settings.fileSeconds + 0.3 : 1
        }
    }

    /// 1,000 connections need more descriptors than a default soft limit of 1,024 leaves;
    /// children (servers, the load client) inherit the raised limit.
    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 65_536)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
