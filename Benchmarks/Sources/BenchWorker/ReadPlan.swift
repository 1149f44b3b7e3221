import ArgumentParser
import LoopWorkloads
import Synchronization

/// Which blocks of a file the readers read, shared by every contestant's
/// readers so they all do exactly the same work: random blocks until a
/// deadline, or every block once, front to back.
final class ReadPlan: Sendable {
    enum Pattern: String, ExpressibleByArgument, CaseIterable {
        case random, sequential
    }

    let pattern: Pattern
    let blockSize: Int
    let blocks: Int64
    private let deadline: Double
    private let nextBlock = Atomic<Int64>(0)

    init(pattern: Pattern, blockSize: Int, fileSize: Int64, seconds: Double) {
        self.pattern = pattern
        self.blockSize = blockSize
        self.blocks = fileSize / Int64(blockSize)
        self.deadline = monotonicNanoseconds() + seconds * 1e9
    }

    /// The offset a reader reads next, or nil when it is done.
    func nextOffset(_ random: inout SplitMix64) -> Int64? {
        switch pattern {
        case .random:
            guard monotonicNanoseconds() < deadline else { return nil }
            return Int64(random.next() % UInt64(blocks)) * Int64(blockSize)
        case .sequential:
            let block = nextBlock.add(1, ordering: .relaxed).oldValue
            return block < blocks ? block * Int64(blockSize) : nil
        }
    }
}

/// What a set of readers did.
struct ReadTally: Sendable {
    var reads = 0
    var bytes = 0

    static func + (a: ReadTally, b: ReadTally) -> ReadTally {
        ReadTally(reads: a.reads + b.reads, bytes: a.bytes + b.bytes)
    }
}
