import Foundation

/// The ratios as a bar chart: one group per workload, one bar per contestant,
/// growing from 1× (RingLoop io_uring) on a log scale: right of the line costs
/// more than io_uring, left of it less. SVG always; PNG too when rsvg-convert
/// or ImageMagick is installed.
public enum Chart {
    public static func svg(for report: Report) -> String {
        let width = 980.0, labelWidth = 330.0, right = 60.0, barHeight = 11.0, barGap = 3.0
        let plotLeft = labelWidth, plotRight = width - right
        let ratios = report.workloads.flatMap { $0.entries.compactMap(\.ratio).flatMap { [$0.low, $0.high] } }
        let low = pow(10, min(-1, floor(log10(ratios.min() ?? 1)))), high = pow(10, max(1, ceil(log10(ratios.max() ?? 1))))
        func x(_ ratio: Double) -> Double {
            let clamped = Swift.min(Swift.max(ratio, low), high)
            return plotLeft + (log10(clamped) - log10(low)) / (log10(high) - log10(low)) * (plotRight - plotLeft)
        }
        let contestants = Contestant.allCases.filter { c in report.workloads.contains { $0.entry(c)?.ratio != nil } }
        var body: [String] = []
        var y = 92.0
        for result in report.workloads where result.entries.contains(where: { $0.ratio != nil }) {
            body.append(text(8, y + 10, "\(result.title)", size: 12, weight: "bold"))
            y += 16
            for entry in result.entries {
                guard let interval = entry.ratio else { continue }
                let ratio = interval.median
                let start = x(1), end = x(ratio)
                let starved = entry.flags.contains { $0.hasPrefix("STARVED") }
                body.append(text(labelWidth - 8, y + barHeight - 1.5, entry.name + (starved ? " ⚠ starved" : ""), size: 10.5,
                                 anchor: "end", colour: starved ? "#c00" : "#000"))
                body.append(String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"%@/>",
                                   Swift.min(start, end), y, Swift.max(abs(end - start), 1.5), barHeight, entry.contestant.colour,
                                   starved ? " stroke=\"#c00\" stroke-width=\"1.5\"" : ""))
                // The 95% interval as a whisker across the bar's end.
                if interval.count > 1 {
                    let low = x(interval.low), high = x(interval.high), middle = y + barHeight / 2
                    body.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1\"/>",
                                       low, middle, high, middle))
                    for edge in [low, high] {
                        body.append(String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#000\" stroke-width=\"1\"/>",
                                           edge, y + 2, edge, y + barHeight - 2))
                    }
                }
                let label = Tables.ratioCell(interval)
                let labelX = ratio >= 1 ? Swift.max(end, x(interval.high)) + 4 : Swift.min(end, x(interval.low)) - 4
                body.append(text(labelX, y + barHeight - 1.5, label, size: 10, anchor: ratio >= 1 ? "start" : "end"))
                y += barHeight + barGap
            }
            y += 10
        }
        let height = y + 30
        var grid: [String] = []
        var tick = low
        while tick <= high * 1.0001 {
            for multiple in [1.0, 2, 5] where tick * multiple <= high * 1.0001 {
                let position = x(tick * multiple)
                let major = multiple == 1
                grid.append(String(format: "<line x1=\"%.1f\" y1=\"84\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"%@\"/>",
                                   position, position, height - 24, tick * multiple == 1 ? "#333" : (major ? "#bbb" : "#e4e4e4"),
                                   tick * multiple == 1 ? "1.5" : "1"))
                grid.append(text(position, height - 10, String(format: tick * multiple < 1 ? "%.1f×" : "%.0f×", tick * multiple),
                                 size: 10, anchor: "middle"))
            }
            tick *= 10
        }
        var legend: [String] = []
        var lx = 8.0
        for contestant in contestants {
            legend.append(String(format: "<rect x=\"%.1f\" y=\"56\" width=\"12\" height=\"12\" fill=\"%@\"/>", lx, contestant.colour))
            legend.append(text(lx + 16, 66, contestant.displayName, size: 11))
            lx += 24 + Double(contestant.displayName.count) * 6.6
        }
        let machine = report.machine.filter { ["cores", "kernel"].contains($0.name) }.map { "\($0.name) \($0.value)" }.joined(separator: ", ")
        let header = [
            text(8, 22, "Cost relative to RingLoop io_uring (log scale): right of 1× is slower or costlier", size: 15, weight: "bold"),
            text(8, 42, "\(report.date), \(report.settings.mode) run, paired medians of \(report.settings.rounds) rounds with 95% intervals "
                 + "(whiskers); \(machine). Socket rows: server CPU per request (latency rows: p50/p99; memory: bytes per idle "
                 + "connection); file rows: 1/throughput.", size: 11),
        ]
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">
            <rect width="100%" height="100%" fill="white"/>
            \((header + legend + grid + body).joined(separator: "\n"))
            </svg>

            """
    }

    /// Writes `svg` and, where a renderer exists, a PNG beside it; returns the paths written.
    public static func write(_ svg: String, to path: String, render: (([String]) -> Bool)? = nil) throws -> [String] {
        try svg.write(toFile: path, atomically: true, encoding: .utf8)
        let png = String(path.dropLast(4)) + ".png"
        let renderers: [[String]] = [["rsvg-convert", "--width", "1960", "-o", png, path], ["convert", "-density", "192", path, png]]
        if let render {
            for command in renderers where render(command) { return [path, png] }
        }
        return [path]
    }

    private static func text(_ x: Double, _ y: Double, _ content: String, size: Double, anchor: String = "start",
                             weight: String = "normal", colour: String = "#000") -> String {
        let escaped = content.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        return String(format: "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%.1f\" text-anchor=\"%@\" font-weight=\"%@\" fill=\"%@\">%@</text>",
                      x, y, size, anchor, weight, colour, escaped)
    }
}
