import Foundation

/// The report as tables: aligned text for the terminal, Markdown for the
/// README and BENCHMARKS.md. Both come from the same rows.
public enum Tables {
    public struct Table {
        public var title: String
        public var header: [String]
        public var rows: [[String]]
        public var notes: [String] = []
    }

    public static let ratioLegend = "vs io_uring: cost relative to RingLoop io_uring (stream API) on the headline metric "
        + "(time, CPU or bytes per operation, or 1/rate), paired by round, median with its 95% bootstrap interval: "
        + "1.50× costs 50% more, 0.80× costs 20% less; ≈ marks a ratio whose interval holds 1.00 (no measurable difference); "
        + "⚠ marks a contestant that starved connections."

    /// The design trades and the method points a reader must know to read the ratios.
    public static let disclosures = [
        "Servers run pinned to CPU 1 and the load client to CPU 0 (taskset); micro and file workloads are not pinned.",
        "RingLoop enters the kernel on a non-blocking poll only when it has something to submit, when completions are "
            + "already visible, or every 64 iterations or callbacks; asyncio and uvloop poll on every iteration. "
            + "The syscalls/op column shows what each contestant pays.",
        "Server CPU is read from a cgroup made for each server run (cpu.stat, which keeps exited threads such as io-wq "
            + "workers) where the machine allows it, else from /proc/PID/task/*/schedstat; \"machine busy\" is the whole "
            + "machine's /proc/stat delta (softirq and the client included).",
        "Socket windows open only after every connection has had one reply; unanswered requests at the close count as "
            + "latency samples of their age so far.",
    ]

    public static func tables(for report: Report) -> [Table] {
        var tables = [summary(for: report)] + report.workloads.map(table(for:))
        if !report.targets.isEmpty { tables.append(targets(for: report)) }
        return tables
    }

    /// A cost ratio as a cell: "1.23×", "≈1.02×" when the interval holds 1.
    public static func ratioCell(_ interval: Statistics.Interval?, withInterval: Bool = false) -> String {
        guard let interval else { return "—" }
        let approximately = interval.count > 1 && interval.covers(1) ? "≈" : ""
        var cell = approximately + String(format: "%.2f×", interval.median)
        if withInterval && interval.count > 1 { cell += String(format: " [%.2f–%.2f]", interval.low, interval.high) }
        return cell
    }

    /// Every workload's ratios on one screen: a row per workload, a column per contestant.
    public static func summary(for report: Report) -> Table {
        let contestants = Contestant.allCases.filter { c in report.workloads.contains { $0.entry(c) != nil } }
        return Table(
            title: "Summary: cost relative to RingLoop io_uring (paired medians; below 1.00× is cheaper; ≈: no measurable difference)",
            header: ["workload", "headline metric"] + contestants.map(\.displayName),
            rows: report.workloads.map { result in
                [result.id, result.metric.label] + contestants.map { contestant in
                    guard let entry = result.entry(contestant) else { return "" }
                    let starved = entry.flags.contains { $0.hasPrefix("STARVED") } ? " ⚠" : ""
                    return ratioCell(entry.ratio) + starved
                }
            })
    }

    public static func table(for result: Report.WorkloadResult) -> Table {
        let direction = result.metric.lowerIsBetter ? "lower is better" : "higher is better"
        let runs = result.entries.map(\.samples.count).max() ?? 0
        var table = Table(
            title: "\(result.title): \(result.metric.label), \(direction); median of \(runs) run\(runs == 1 ? "" : "s")",
            header: ["contestant", "median", "min–max", "vs io_uring [95% CI]"] + result.extras.map(\.label),
            rows: [])
        for entry in result.entries {
            guard let median = entry.median, let low = entry.min, let high = entry.max else {
                table.rows.append([entry.name, "—", "—", "—"] + result.extras.map { _ in "—" })
                table.notes.append("\(entry.name): \(entry.failures.first ?? "no result")")
                continue
            }
            let marker = entry.flags.contains { $0.hasPrefix("STARVED") } ? " ⚠" : ""
            table.rows.append([
                entry.name + marker, format(median, result.metric),
                "\(format(low, result.metric))–\(format(high, result.metric))",
                ratioCell(entry.ratio, withInterval: true),
            ] + result.extras.map { metric in entry.extraMedians[metric.key].map { format($0, metric) } ?? "—" })
            if !entry.failures.isEmpty {
                table.notes.append("\(entry.name): \(entry.failures.count) run(s) failed: \(entry.failures[0])")
            }
            table.notes += entry.flags.map { "\(entry.name): \($0)" }
        }
        table.notes += result.notes
        return table
    }

    public static func targets(for report: Report) -> Table {
        Table(
            title: "Targets (verdict from the 95% interval: met if all of it satisfies the limit, missed if none does)",
            header: ["issue", "target", "workload", "value [95% CI]", "limit", "verdict"],
            rows: report.targets.map { check in
                let value = check.value.map { v in
                    v.count > 1 ? String(format: "%.2f [%.2f–%.2f]", v.median, v.low, v.high) : String(format: "%.2f", v.median)
                } ?? "—"
                return ["#\(check.issue)", check.target, check.workload, value, check.limit,
                        check.verdict == .missed ? "MISSED" : check.verdict.rawValue]
            })
    }

    public static func format(_ value: Double, _ metric: Metric) -> String {
        String(format: "%.\(metric.digits)f", value)
    }

    public static func header(for report: Report) -> [String] {
        let facts = { (facts: [Report.Fact]) in facts.map { "\($0.name) \($0.value)" }.joined(separator: "; ") }
        let s = report.settings
        var lines = [
            "RingLoop comparison, \(report.date), \(s.mode) run: `\(report.command)`",
            "Machine: \(facts(report.machine))",
            "Versions: \(facts(report.versions))",
            "Reproducibility: \(facts(report.reproducibility))",
            "Each contestant: \(s.rounds) round\(s.rounds == 1 ? "" : "s"), every round in a new random order (seed \(s.seed)); "
                + String(format: "socket runs %.2g s after the first replies and %.2g s warm-up; micro-workloads %d operations; "
                         + "file reads %.2g s; %d idle connections.",
                         s.socketSeconds, s.socketWarmup, s.microCount, s.fileSeconds, s.idleConnections),
            ratioLegend,
        ]
        lines += disclosures
        lines += report.skipped.map { "Skipped \($0.name): \($0.value)" }
        return lines
    }

    /// Columns padded to their widest cell; numbers right-aligned.
    public static func text(_ table: Table) -> String {
        let widths = table.header.indices.map { column in
            ([table.header[column]] + table.rows.map { $0[column] }).map(\.count).max() ?? 0
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let pad = String(repeating: " ", count: widths[column] - cell.count)
                return column == 0 ? cell + pad : pad + cell
            }.joined(separator: "  ")
        }
        var lines = [table.title, line(table.header), String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))]
        lines += table.rows.map(line)
        lines += table.notes.map { "  note: \($0)" }
        return lines.joined(separator: "\n")
    }

    public static func markdown(_ table: Table) -> String {
        let row = { (cells: [String]) in "| " + cells.joined(separator: " | ") + " |" }
        var lines = ["**\(table.title)**", "", row(table.header),
                     "|" + table.header.indices.map { $0 == 0 ? "---|" : "---:|" }.joined()]
        lines += table.rows.map(row)
        if !table.notes.isEmpty { lines += [""] + table.notes.map { "- \($0)" } }
        return lines.joined(separator: "\n")
    }

    public static func markdownDocument(for report: Report, chart: String) -> String {
        var parts = header(for: report).map { $0 + "  " }.joined(separator: "\n")
        parts += "\n\n![ratios to RingLoop io_uring](\(chart))\n\n"
        parts += tables(for: report).map(markdown).joined(separator: "\n\n")
        return parts + "\n"
    }
}
