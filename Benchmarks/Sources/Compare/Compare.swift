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
    @Option(help: "Measure nothing: print the tables and redraw the chart of a saved JSON report.") var render: String?

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
        if let render {
            let report: Report
            do {
                report = try JSONDecoder().decode(Report.self, from: Data(contentsOf: URL(fileURLWithPath: render)))
            } catch {
                throw CompareError("cannot read the report \(render): \(error.localizedDescription)")
            }
            try write(report, benchmarks: try Toolbox.locateBenchmarks(), saveJSON: false)
            return
        }
        Children.killAllOnInterrupt()
        raiseDescriptorLimit()
        var settings = quick ? Settings.quick : Settings.full
        if let rounds { settings.rounds = rounds }
        var (workloads, contestants) = selection()
        let log = { (line: String) in FileHandle.standardError.write(Data("==> \(line)\n".utf8)) }

        let benchmarks = try Toolbox.locateBenchmarks()
        let needsEchoServer = workloads.contains { $0.isSocket } && contestants.contains { [.ringloopURing, .ringloopEpoll].contains($0) }
        let tools = try Toolbox(benchmarks: benchmarks, contestants: Set(contestants), needsEchoServer: needsEchoServer, log: log)
        var skipped: [Report.Fact] = tools.unavailable.filter { contestants.contains($0.key) }
            .sorted { $0.key.rawValue < $1.key.rawValue }.map { Report.Fact(name: $0.key.displayName, value: $0.value) }
        if workloads.contains(where: { $0.group == .file }) {
            do {
                try DataFile.prepare(at: dataFile, log: log)
            } catch {
                // No room for the file is no reason to lose the other workloads.
                log("skipping the file workloads: \(error)")
                skipped.append(Report.Fact(name: "file workloads", value: "\(error)"))
                workloads.removeAll { $0.group == .file }
            }
        }

        let taking = { (workload: Workload) in workload.contestants.filter { contestants.contains($0) && tools.unavailable[$0] == nil } }
        let plan = Runner.plan(workloads, rounds: settings.rounds, taking: taking)
        log("\(settings.mode) run: \(plan.count) runs of \(workloads.count) workloads")
        var runner = Runner(tools: tools, settings: settings, dataFile: dataFile)
        runner.execute(plan)

        let results = workloads.map { workload in
            Report.summarize(workload, contestants: taking(workload),
                             samples: runner.samples[workload.id] ?? [:], failures: runner.failures[workload.id] ?? [:])
        }
        let report = Report(
            date: ISO8601DateFormatter().string(from: Date()),
            command: (["Compare"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            settings: settings, machine: MachineInfo.machine(), versions: MachineInfo.versions(tools: tools),
            workloads: results,
            skipped: skipped,
            targets: TargetCheck.all(in: results))
        try write(report, benchmarks: benchmarks, saveJSON: true)
    }

    private func write(_ report: Report, benchmarks: String, saveJSON: Bool) throws {
        print(Tables.header(for: report).joined(separator: "\n"))
        for table in Tables.tables(for: report) { print("\n" + Tables.text(table)) }

        let directory = results ?? URL(fileURLWithPath: benchmarks).deletingLastPathComponent().appendingPathComponent("benchmark-results").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let jsonPath = json ?? "\(directory)/latest.json"
        if saveJSON { try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath)) }
        let charts = try Chart.write(Chart.svg(for: report), to: "\(directory)/ratios.svg")
        let markdownPath = "\(directory)/latest.md"
        try Tables.markdownDocument(for: report, chart: "ratios.svg").write(toFile: markdownPath, atomically: true, encoding: .utf8)
        print("\nWrote \(((saveJSON ? [jsonPath] : []) + [markdownPath] + charts).joined(separator: ", "))")
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

    /// 1,000 connections need more descriptors than a default soft limit of 1,024 leaves;
    /// children (servers, the load client) inherit the raised limit.
    private func raiseDescriptorLimit() {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        limit.rlim_cur = min(limit.rlim_max, 65_536)
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
}
