import CompareCore
import Testing

@Suite("Statistics: medians, paired ratios, bootstrap intervals, the ≈ rule", .timeLimit(.minutes(1)))
struct StatisticsTests {
    @Test("median of odd and even counts, nil when empty")
    func medians() {
        #expect(Statistics.median([3, 1, 2]) == 2)
        #expect(Statistics.median([4, 1, 3, 2]) == 2.5)
        #expect(Statistics.median([]) == nil)
    }

    @Test("paired ratios divide round by round and skip rounds one side missed")
    func pairing() {
        let subject = [0: 10.0, 1: 12, 2: 30, 4: 5]
        let baseline = [0: 5.0, 1: 6, 2: 10, 3: 7]
        #expect(Statistics.pairedRatios(subject, over: baseline, lowerIsBetter: true) == [2, 2, 3])
        // A rate (higher is better) is inverted, so above 1 still means costlier.
        #expect(Statistics.pairedRatios([0: 50], over: [0: 100], lowerIsBetter: false) == [2])
    }

    @Test("pairing removes drift that hits a whole round")
    func pairingCancelsDrift() throws {
        // Every round, the subject costs exactly 1.2x the baseline, but the
        // rounds themselves drift by a factor of 3.
        let drift = [1.0, 3.0, 1.5, 2.2, 0.9, 2.8, 1.1, 1.9, 2.5, 1.3]
        let baseline = Dictionary(uniqueKeysWithValues: drift.enumerated().map { ($0.offset, 100 * $0.element) })
        let subject = baseline.mapValues { $0 * 1.2 }
        let ratios = Statistics.pairedRatios(subject, over: baseline, lowerIsBetter: true)
        let interval = try #require(Statistics.bootstrapMedian(ratios))
        #expect(abs(interval.low - 1.2) < 1e-9 && abs(interval.high - 1.2) < 1e-9)
    }

    @Test("the bootstrap interval holds the median, is reproducible, and narrows with more rounds")
    func bootstrap() throws {
        var random = SplitMix64(seed: 7)
        func noisy(_ n: Int) -> [Double] { (0..<n).map { _ in 1.1 + Double(random.next() % 1000) / 5000 - 0.1 } }
        let few = noisy(5), many = noisy(200)
        let a = try #require(Statistics.bootstrapMedian(few, seed: 3))
        let b = try #require(Statistics.bootstrapMedian(few, seed: 3))
        #expect(a == b)
        #expect(a.low <= a.median && a.median <= a.high)
        let wide = try #require(Statistics.bootstrapMedian(many))
        #expect(wide.high - wide.low < a.high - a.low)
        #expect(wide.count == 200)
    }

    @Test("one value gives a zero-width interval")
    func single() throws {
        let interval = try #require(Statistics.bootstrapMedian([1.4]))
        #expect(interval == Statistics.Interval(median: 1.4, low: 1.4, high: 1.4, count: 1))
    }

    @Test("≈ marks exactly the ratios whose interval holds 1.00")
    func approximatelyRule() {
        let straddles = Statistics.Interval(median: 1.03, low: 0.97, high: 1.08, count: 10)
        let above = Statistics.Interval(median: 1.20, low: 1.10, high: 1.31, count: 10)
        let below = Statistics.Interval(median: 0.80, low: 0.70, high: 0.99, count: 10)
        #expect(Tables.ratioCell(straddles) == "≈1.03×")
        #expect(Tables.ratioCell(above) == "1.20×")
        #expect(Tables.ratioCell(below) == "0.80×")
        #expect(Tables.ratioCell(above, withInterval: true) == "1.20× [1.10–1.31]")
        #expect(Tables.ratioCell(nil) == "—")
    }

    @Test("target verdicts come from the interval, not the median")
    func verdicts() {
        let limit = 1.0
        #expect(TargetCheck.verdict(.init(median: 0.9, low: 0.85, high: 0.95, count: 10), .atMost, limit) == .met)
        #expect(TargetCheck.verdict(.init(median: 0.98, low: 0.9, high: 1.05, count: 10), .atMost, limit) == .undecided)
        #expect(TargetCheck.verdict(.init(median: 1.2, low: 1.1, high: 1.3, count: 10), .atMost, limit) == .missed)
        #expect(TargetCheck.verdict(.init(median: 0.96, low: 0.93, high: 0.99, count: 10), .atLeast, 0.9) == .met)
    }

    @Test("the run order is shuffled per round, reproducibly, and covers every pair once per round")
    func shuffle() {
        var a = SplitMix64(seed: 11), b = SplitMix64(seed: 11), c = SplitMix64(seed: 12)
        var x = Array(0..<50), y = Array(0..<50), z = Array(0..<50)
        a.shuffle(&x)
        b.shuffle(&y)
        c.shuffle(&z)
        #expect(x == y)
        #expect(x != z)
        #expect(x.sorted() == Array(0..<50))
    }
}
