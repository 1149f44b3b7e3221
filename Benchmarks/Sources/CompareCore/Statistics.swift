/// The comparison's statistics: medians, paired ratios and bootstrap
/// confidence intervals.
///
/// Every ratio in the report is *paired*: each round measures every
/// contestant once, in a random order, so round r's figure of a contestant is
/// divided by round r's figure of the baseline. Drift that hits a whole round
/// (another tenant on the VM, a warm or cold cache) cancels in the ratio
/// instead of widening it. The interval around the median of those per-round
/// ratios is a percentile bootstrap over the rounds.
public enum Statistics {
    /// A median with its 95% bootstrap confidence interval.
    public struct Interval: Codable, Sendable, Equatable {
        public var median: Double
        public var low: Double
        public var high: Double
        /// How many paired values it rests on.
        public var count: Int

        public init(median: Double, low: Double, high: Double, count: Int) {
            self.median = median
            self.low = low
            self.high = high
            self.count = count
        }

        /// True when the interval holds `value`: the data cannot tell the
        /// two apart (the table shows such a ratio as "≈").
        public func covers(_ value: Double) -> Bool { low <= value && value <= high }
    }

    public static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted(), middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

    /// The `p` quantile (0...1) of already sorted values, by linear interpolation.
    public static func quantile(sorted values: [Double], _ p: Double) -> Double {
        precondition(!values.isEmpty, "quantile of no values")
        let position = p * Double(values.count - 1)
        let below = Int(position.rounded(.down)), above = Swift.min(below + 1, values.count - 1)
        let fraction = position - Double(below)
        return values[below] + (values[above] - values[below]) * fraction
    }

    /// Per-round cost ratios of `subject` over `baseline`, for the rounds both
    /// measured. With `lowerIsBetter` false (a rate), the ratio is inverted so
    /// that above 1 always means "costs more than the baseline".
    public static func pairedRatios(_ subject: [Int: Double], over baseline: [Int: Double], lowerIsBetter: Bool) -> [Double] {
        subject.keys.sorted().compactMap { round in
            guard let a = subject[round], let b = baseline[round], a > 0, b > 0 else { return nil }
            return lowerIsBetter ? a / b : b / a
        }
    }

    /// The median of `values` with a 95% percentile-bootstrap interval:
    /// `resamples` times, draw `values.count` values with replacement and
    /// take their median; the interval spans the 2.5th to the 97.5th
    /// percentile of those medians. Deterministic for a given `seed`.
    public static func bootstrapMedian(_ values: [Double], resamples: Int = 4000, seed: UInt64 = 0x5EED) -> Interval? {
        guard let center = median(values) else { return nil }
        guard values.count > 1 else { return Interval(median: center, low: center, high: center, count: 1) }
        var random = SplitMix64(seed: seed)
        var medians: [Double] = []
        medians.reserveCapacity(resamples)
        var draw = [Double](repeating: 0, count: values.count)
        for _ in 0..<resamples {
            for i in draw.indices { draw[i] = values[Int(random.next() % UInt64(values.count))] }
            medians.append(median(draw)!)
        }
        medians.sort()
        return Interval(median: center, low: quantile(sorted: medians, 0.025), high: quantile(sorted: medians, 0.975),
                        count: values.count)
    }
}
