import Foundation

/// The report as tables: aligned text for the terminal, Markdown for the
/// README and BENCHMARKS.md. Both come from the same rows.
enum Tables {
    struct Table {
        var title: String
        var header: [String]
        var rows: [[String]]
        var notes: [String] = []
    }

    static let ratioLegend = "vs io_uring: cost relative to RingLoop/io_uring on the headline metric "
        + "(time or CPU per operation, or 1/rate): 1.50× costs 50% more, 0.80× costs 20% less."

    static func tables(for report: Report) -> [Table] {
        var tables = [summary(for: report)] + report.workloads.map(table(for:))
        if !report.targets.isEmpty {
            tables.append(Table(
                title: "Targets (RingLoop io_uring over the peer)",
                header: ["target", "workload", "ratio", "limit", "result"],
                rows: report.targets.map { check in
                    [check.target, check.workload, check.ratio.map { String(format: "%.2f", $0) } ?? "—", check.limit,
                     check.met.map { $0 ? "met" : "MISSED" } ?? "not measured"]
                }))
        }
        return tables
    }

    /// Every workload's ratios on one screen: a row per workload, a column per contestant.
    static func summary(for report: Report) -> Table {
        let contestants = Contestant.allCases.filter { c in report.workloads.contains { $0.entry(c) != nil } }
        return Table(
            title: "Summary: cost relative to RingLoop io_uring (medians; below 1.00× is cheaper than io_uring)",
            header: ["workload", "headline metric"] + contestants.map(\.displayName),
            rows: report.workloads.map { result in
                [result.id, result.metric.label] + contestants.map { contestant in
                    guard let entry = result.entry(contestant) else { return "" }
                    return entry.relativeCost.map { String(format: "%.2f×", $0) } ?? "—"
                }
            })
    }

    static func table(for result: Report.WorkloadResult) -> Table {
        let direction = result.metric.lowerIsBetter ? "lower is better" : "higher is better"
        let runs = result.entries.map(\.samples.count).max() ?? 0
        var table = Table(
            title: "\(result.title): \(result.metric.label), \(direction); median of \(runs) run\(runs == 1 ? "" : "s")",
            header: ["contestant", "median", "min–max", "vs io_uring"] + result.extras.map(\.label),
            rows: [])
        for entry in result.entries {
            guard let median = entry.median, let low = entry.min, let high = entry.max else {
                table.rows.append([entry.name, "—", "—", "—"] + result.extras.map { _ in "—" })
                table.notes.append("\(entry.name): \(entry.failures.first ?? "no result")")
                continue
            }
            table.rows.append([
                entry.name, format(median, result.metric), "\(format(low, result.metric))–\(format(high, result.metric))",
                entry.relativeCost.map { String(format: "%.2f×", $0) } ?? "—",
            ] + result.extras.map { metric in entry.extraMedians[metric.key].map { format($0, metric) } ?? "—" })
            if !entry.failures.isEmpty {
                table.notes.append("\(entry.name): \(entry.failures.count) run(s) failed: \(entry.failures[0])")
            }
        }
        return table
    }

    static func format(_ value: Double, _ metric: Metric) -> String {
        String(format: "%.\(metric.digits)f", value)
    }

    static func header(for report: Report) -> [String] {
        let facts = { (facts: [Report.Fact]) in facts.map { "\($0.name) \($0.value)" }.joined(separator: "; ") }
        var lines = [
            "RingLoop comparison, \(report.date), \(report.settings.mode) run: `\(report.command)`",
            "Machine: \(facts(report.machine))",
            "Versions: \(facts(report.versions))",
            "Each contestant: \(report.settings.rounds) round\(report.settings.rounds == 1 ? "" : "s"), alternating; "
                + String(format: "socket runs %.2g s after %.2g s warm-up; micro-workloads %d operations; random file reads %.2g s.",
                         report.settings.socketSeconds, report.settings.socketWarmup, report.settings.microCount, report.settings.fileSeconds),
            ratioLegend,
        ]
        lines += report.skipped.map { "Skipped \($0.name): \($0.value)" }
        return lines
    }

    /// Columns padded to their widest cell; numbers right-aligned.
    static func text(_ table: Table) -> String {
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

    static func markdown(_ table: Table) -> String {
        let row = { (cells: [String]) in "| " + cells.joined(separator: " | ") + " |" }
        var lines = ["**\(table.title)**", "", row(table.header),
                     "|" + table.header.indices.map { $0 == 0 ? "---|" : "---:|" }.joined()]
        lines += table.rows.map(row)
        if !table.notes.isEmpty { lines += [""] + table.notes.map { "- \($0)" } }
        return lines.joined(separator: "\n")
    }

    static func markdownDocument(for report: Report, chart: String) -> String {
        var parts = header(for: report).map { $0 + "  " }.joined(separator: "\n")
        parts += "\n\n![ratios to RingLoop io_uring](\(chart))\n\n"
        parts += tables(for: report).map(markdown).joined(separator: "\n\n")
        return parts + "\n"
    }
}
