import Foundation

/// Everything one comparison run found: what `--json` writes, and what the
/// tables and the chart are drawn from.
struct Report: Codable {
    struct Fact: Codable {
        var name: String
        var value: String
    }

    struct Entry: Codable {
        var contestant: Contestant
        var name: String
        /// One metrics object per successful run.
        var samples: [[String: Double]]
        /// Why runs failed, one line each.
        var failures: [String]
        /// Median, minimum and maximum of the primary metric, in its shown unit.
        var median: Double?
        var min: Double?
        var max: Double?
        /// Cost relative to RingLoop/io_uring on the primary metric; above 1 is slower.
        var relativeCost: Double?
        /// Medians of the extra metrics, by key, in their shown units.
        var extraMedians: [String: Double]
    }

    struct WorkloadResult: Codable {
        var id: String
        var title: String
        var metric: Metric
        var extras: [Metric]
        var entries: [Entry]

        func entry(_ contestant: Contestant) -> Entry? { entries.first { $0.contestant == contestant } }
    }

    var date: String
    var command: String
    var settings: Settings
    var machine: [Fact]
    var versions: [Fact]
    var workloads: [WorkloadResult]
    /// Contestants that could not run here, and why.
    var skipped: [Fact]
    var targets: [TargetCheck]

    /// Condenses raw samples into medians, ranges and ratios.
    static func summarize(_ workload: Workload, contestants: [Contestant],
                          samples: [Contestant: [[String: Double]]], failures: [Contestant: [String]]) -> WorkloadResult {
        var entries = contestants.map { contestant -> Entry in
            let runs = samples[contestant] ?? []
            let values = runs.compactMap { workload.primary.value(in: $0) }.sorted()
            var extras: [String: Double] = [:]
            for metric in workload.extras {
                if let median = median(runs.compactMap { metric.value(in: $0) }) { extras[metric.key] = median }
            }
            return Entry(contestant: contestant, name: contestant.displayName, samples: runs, failures: failures[contestant] ?? [],
                         median: median(values), min: values.first, max: values.last, relativeCost: nil, extraMedians: extras)
        }
        let baseline = entries.first { $0.contestant == .baseline }?.median
        for index in entries.indices {
            if let value = entries[index].median, let baseline {
                entries[index].relativeCost = workload.primary.relativeCost(value, baseline: baseline)
            }
        }
        return WorkloadResult(id: workload.id, title: workload.title, metric: workload.primary, extras: workload.extras, entries: entries)
    }
}

func median(_ values: [Double]) -> Double? {
    guard !values.isEmpty else { return nil }
    let sorted = values.sorted(), middle = sorted.count / 2
    return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
}
