import ArgumentParser
import CompareCore
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

    @Flag(help: "A few minutes: 3 rounds of short runs; results go to <results>/quick/, never over a full run's.") var quick = false
    @Flag(help: "About an hour: 10 rounds (the default), the run BENCHMARKS.md records.") var full = false
    @Option(help: "Run only these workloads, groups or contestants.") var only: [String] = []
    @Option(help: "Leave out these workloads, groups or contestants.") var skip: [String] = []
    @Option(help: "Rounds (runs per contestant), instead of the mode's.") var rounds: Int?
    @Option(help: "Where to write the JSON report (default: <results>/latest.json).") var json: String?
    @Option(help: "Event-loop threads for the RingLoop (LoopGroup, SO_REUSEPORT) and SwiftNIO servers; pin nothing else to draw a scaling curve.")
    var threads: Int = 1
    @Option(help: "Directory for the chart, JSON and Markdown (default: benchmark-results/ in the repository, quick/ below it for --quick).") var results: String?
    @Option(help: "Seed for the run order and the bootstrap.") var seed: UInt64?
    @Flag(help: "Skip the syscall-counting pass (perf) after the timed rounds.") var noSyscallCounts = false
    @Option(help: "The 1 GiB file the file workloads read (written when missing).") var dataFile = "/var/tmp/ringloop-compare.dat"
    @Flag(help: "List the workloads and contestants, then exit.") var list = false
    @Option(help: "Measure nothing: print the tables and redraw the chart of a saved JSON report.") var render: String?

    func validate() throws {
        if quick && full { throw ValidationError("--quick and --full are exclusive") }
        if let rounds, rounds < 1 { throw ValidationError("--rounds must be at least 1 (got \(rounds))") }
        if threads < 1 { throw ValidationError("--threads must be at least 1 (got \(threads))") }
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
            guard report.schemaVersion == Report.currentSchemaVersion else {
                throw CompareError("\(render) has schema version \(report.schemaVersion); this runner reads \(Report.currentSchemaVersion)")
            }
            try write(report, benchmarks: try Toolbox.locateBenchmarks(), saveJSON: false)
            return
        }
        Children.killAllOnInterrupt()
        raiseDescriptorLimit()
        var settings = quick ? Settings.quick : Settings.full
        if let rounds { settings.rounds = rounds }
        if let seed { settings.seed = seed }
        if threads != 1 { settings.serverThreads = threads }
        var (workloads, contestants) = selection()
        let log = { (line: String) in FileHandle.standardError.write(Data("==> \(line)\n".utf8)) }

        let benchmarks = try Toolbox.locateBenchmarks()
        // Found unwritable now, not after an hour of measuring.
        _ = try outputDirectory(benchmarks: benchmarks, mode: settings.mode)
        let needsEchoServer = workloads.contains { $0.isSocket } && contestants.contains { $0.isRingLoop }
        let tools = try Toolbox(benchmarks: benchmarks, contestants: Set(contestants), needsEchoServer: needsEchoServer, log: log)
        var skipped: [Report.Fact] = tools.unavailable.filter { contestants.contains($0.key) }
            .sorted { $0.key.rawValue < $1.key.rawValue }.map { Report.Fact(name: $0.key.displayName, value: $0.value) }
        // Several server threads need several CPUs: a scaling run is not pinned.
        let accounting = CPUAccounting.detect(), pinning = threads > 1 ? nil : Pinning.detect()
        if accounting == nil { skipped.append(Report.Fact(name: "cgroup CPU accounting", value: "no writable cgroup; server CPU from schedstat")) }
        if pinning == nil {
            skipped.append(Report.Fact(name: "CPU pinning", value: threads > 1 ? "--threads \(threads): servers and client unpinned"
                                                                              : "fewer than 2 CPUs or no taskset; unpinned"))
        }
        defer { accounting?.removeAll() }
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

        if workloads.contains(where: { if case .http = $0.kind { true } else { false } }), which("wrk") == nil {
            log("skipping http-hello: wrk is not installed (apt-get install wrk)")
            skipped.append(Report.Fact(name: "http-hello", value: "wrk is not installed (apt-get install wrk)"))
            workloads.removeAll { if case .http = $0.kind { true } else { false } }
        }

        let taking = { (workload: Workload) in workload.contestants.filter { contestants.contains($0) && tools.unavailable[$0] == nil } }
        let plan = Runner.plan(workloads, rounds: settings.rounds, seed: settings.seed, taking: taking)
        // One more run per socket contestant with perf counting its syscalls.
        var countingPass: [Runner.Run] = []
        if !noSyscallCounts, perfCanCountSyscalls() {
            for workload in workloads where workload.extras.contains(.syscallsPerOp) {
                countingPass += taking(workload).map { Runner.Run(round: -1, workload: workload, contestant: $0) }
            }
        } else if !noSyscallCounts {
            skipped.append(Report.Fact(name: "syscalls/op", value: "perf cannot count raw_syscalls:sys_enter here (apt-get install linux-perf; root)"))
        }
        log("\(settings.mode) run: \(plan.count) runs of \(workloads.count) workloads, then \(countingPass.count) syscall-counting runs")
        let reproducibility = MachineInfo.reproducibility(tools: tools, dataFile: dataFile)
        let stealBefore = MachineInfo.stealSeconds(), started = Date()
        var runner = Runner(measurement: Measurement(tools: tools, settings: settings, dataFile: dataFile,
                                                     accounting: accounting, pinning: pinning), settings: settings)
        runner.execute(plan, countingPass: countingPass)
        let elapsed = Date().timeIntervalSince(started)

        let results = workloads.map { workload in
            var result = Report.summarize(workload, contestants: taking(workload), samples: runner.samples[workload.id] ?? [:],
                                          failures: runner.failures[workload.id] ?? [:], notes: notes(for: workload, taking(workload)),
                                          seed: settings.seed)
            for index in result.entries.indices {
                if let count = runner.counts[workload.id]?[result.entries[index].contestant]?["syscalls_per_op"] {
                    result.entries[index].extraMedians["syscalls_per_op"] = count
                }
            }
            return result
        }
        let steal = MachineInfo.stealSeconds() - stealBefore
        let report = Report(
            date: ISO8601DateFormatter().string(from: Date()),
            command: (["Compare"] + CommandLine.arguments.dropFirst()).joined(separator: " "),
            settings: settings, machine: MachineInfo.machine(), versions: MachineInfo.versions(tools: tools),
            reproducibility: reproducibility + [
                Report.Fact(name: "steal", value: String(format: "%.1f s of CPU stolen over the %.0f s run", steal, elapsed)),
            ],
            workloads: results,
            skipped: skipped,
            targets: TargetCheck.all(in: results, seed: settings.seed))
        try write(report, benchmarks: benchmarks, saveJSON: true)
    }

    private func write(_ report: Report, benchmarks: String, saveJSON: Bool) throws {
        print(Tables.header(for: report).joined(separator: "\n"))
        for table in Tables.tables(for: report) { print("\n" + Tables.text(table)) }

        let directory = try outputDirectory(benchmarks: benchmarks, mode: report.settings.mode)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let jsonPath = json ?? "\(directory)/latest.json"
        if saveJSON { try encoder.encode(report).write(to: URL(fileURLWithPath: jsonPath)) }
        let charts = try Chart.write(Chart.svg(for: report), to: "\(directory)/ratios.svg") { command in
            which(command[0]) != nil && (try? execute(command, timeout: 60))?.succeeded == true
        }
        let markdownPath = "\(directory)/latest.md"
        try Tables.markdownDocument(for: report, chart: "ratios.svg").write(toFile: markdownPath, atomically: true, encoding: .utf8)
        print("\nWrote \(((saveJSON ? [jsonPath] : []) + [markdownPath] + charts).joined(separator: ", "))")
    }

    /// Where the chart, JSON and Markdown go, made if missing; an error
    /// naming it when it (or `--json`'s directory) cannot be written.
    private func outputDirectory(benchmarks: String, mode: String) throws -> String {
        var directory = results ?? URL(fileURLWithPath: benchmarks).deletingLastPathComponent().appendingPathComponent("benchmark-results").path
        // Quick runs never overwrite the full run the README and BENCHMARKS.md cite.
        if results == nil && mode != "full" { directory += "/quick" }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CompareError("cannot create the results directory \(directory): \(error.localizedDescription)")
        }
        let jsonDirectory = json.map { URL(fileURLWithPath: $0).deletingLastPathComponent().path }
        for place in [directory] + (jsonDirectory.map { [$0] } ?? []) where access(place, W_OK) != 0 {
            throw CompareError("cannot write to \(place): \(String(cString: strerror(errno)))")
        }
        return directory
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

    /// Per-workload notes: each file contestant's real concurrency.
    private func notes(for workload: Workload, _ contestants: [Contestant]) -> [String] {
        guard case .file(_, _, let depth, _) = workload.kind else { return [] }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        return contestants.map { "\($0.displayName) concurrency: \($0.fileConcurrency(depth: depth, cores: cores))" }
    }

    private func perfCanCountSyscalls() -> Bool {
        guard which("perf") != nil else { return false }
        return (try? execute(["perf", "stat", "-e", "raw_syscalls:sys_enter", "-x", ",", "true"], timeout: 30))?.succeeded == true
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
