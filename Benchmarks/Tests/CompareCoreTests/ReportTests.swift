import CompareCore
import Foundation
import Testing

@Suite("The report: summaries, flags, targets and the JSON schema", .timeLimit(.minutes(1)))
struct ReportTests {
    static let echo = Workload.all.first { $0.id == "echo-1000x4k" }!

    static func sample(_ round: Int, cpu: Double, starved: Double = 0, minimum: Double = 200, median: Double = 220) -> Report.Sample {
        Report.Sample(round: round, timestamp: "2026-11-26T12:00:0\(round)Z",
                      values: ["server_cpu_ns_per_op": cpu, "conn_starved": starved, "conns": 1000,
                               "conn_min": minimum, "conn_median": median, "ops_per_s": 40_000])
    }

    static func report() -> Report {
        let samples: [Contestant: [Report.Sample]] = [
            .ringloopURing: (0..<6).map { sample($0, cpu: 20_000 + Double($0) * 100) },
            .nio: (0..<6).map { sample($0, cpu: 30_000 + Double($0) * 150) },
            .ringloopURingProtocol: (0..<6).map { sample($0, cpu: 12_000, starved: $0 == 2 ? 3 : 0) },
            .cLiburing: (0..<6).map { sample($0, cpu: 13_000) },
        ]
        let result = Report.summarize(echo, contestants: [.ringloopURing, .ringloopURingProtocol, .nio, .cLiburing],
                                      samples: samples, failures: [.nio: []])
        return Report(date: "2026-11-26T12:00:00Z", command: "Compare --full", settings: .full,
                      machine: [.init(name: "cores", value: "2")], versions: [], reproducibility: [.init(name: "tree", value: "clean")],
                      workloads: [result], skipped: [], targets: TargetCheck.all(in: [result]))
    }

    @Test("summaries pair each contestant's rounds with the baseline's")
    func pairedSummary() throws {
        let result = try #require(Self.report().workload("echo-1000x4k"))
        let nio = try #require(result.entry(.nio)?.ratio)
        #expect(nio.count == 6)
        #expect(nio.low > 1.45 && nio.high < 1.51)
        let baseline = try #require(result.entry(.ringloopURing)?.ratio)
        #expect(baseline.median == 1 && baseline.low == 1 && baseline.high == 1)
    }

    @Test("a contestant that starved connections in any round is flagged, in the tables too")
    func starvedFlag() throws {
        let report = Self.report()
        let result = try #require(report.workload("echo-1000x4k"))
        let flags = try #require(result.entry(.ringloopURingProtocol)?.flags)
        #expect(flags.contains { $0.hasPrefix("STARVED: 1 of 6 runs") && $0.contains("worst: 3 of 1000") })
        #expect(result.entry(.nio)?.flags.isEmpty == true)
        let summary = Tables.text(Tables.summary(for: report))
        #expect(summary.contains("⚠"))
        #expect(Chart.svg(for: report).contains("starved"))
    }

    @Test("targets check the starved count and the paired ratio's interval")
    func targets() throws {
        let report = Self.report()
        let starved = try #require(report.targets.first { $0.target.hasPrefix("RingLoop io_uring protocol: starved") })
        #expect(starved.verdict != .met)
        let vsNIO = try #require(report.targets.first { $0.target == "stream CPU/request vs SwiftNIO" && $0.workload == "echo-1000x4k" })
        // 20,000-20,500 against 30,000-30,750: about 0.67, under the 0.85 limit.
        #expect(vsNIO.verdict == .met)
        let missing = try #require(report.targets.first { $0.workload == "file-random" })
        #expect(missing.verdict == .notMeasured)
    }

    @Test("a report survives a JSON round trip with every field the tables read")
    func roundTrip() throws {
        let report = Self.report()
        let data = try JSONEncoder().encode(report)
        let decoded = try JSONDecoder().decode(Report.self, from: data)
        #expect(decoded.schemaVersion == Report.currentSchemaVersion)
        #expect(decoded.workloads.count == 1)
        let entry = try #require(decoded.workload("echo-1000x4k")?.entry(.nio))
        #expect(entry.samples.map(\.round) == Array(0..<6))
        #expect(entry.samples[0].timestamp == "2026-11-26T12:00:00Z")
        #expect(Tables.markdownDocument(for: decoded, chart: "c.svg") == Tables.markdownDocument(for: report, chart: "c.svg"))
        // The keys a reader of the JSON relies on.
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        for key in ["schemaVersion", "date", "command", "settings", "machine", "versions", "reproducibility", "workloads",
                    "skipped", "targets"] {
            #expect(object[key] != nil, "missing top-level key \(key)")
        }
    }

    @Test("the committed full-run report decodes with this schema")
    func committedReport() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("benchmark-results/latest.json")
        let data = try Data(contentsOf: path)
        let report = try JSONDecoder().decode(Report.self, from: data)
        #expect(report.schemaVersion == Report.currentSchemaVersion)
        #expect(report.settings.mode == "full")
        #expect(report.settings.rounds >= 10)
        #expect(!report.workloads.isEmpty)
        for workload in report.workloads {
            // A ratio needs a positive value to divide (C epoll's idle memory
            // growth can measure 0 bytes per connection).
            for entry in workload.entries where entry.samples.count > 1 && (entry.median ?? 0) > 0 {
                #expect(entry.ratio != nil, "\(workload.id)/\(entry.contestant): no paired ratio")
            }
        }
    }
}
