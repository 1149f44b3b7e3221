import CompareCore
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
    private let seconds: Double
    private let nextBlock = Atomic<Int64>(0)
    /// Set by ``start()`` once the contestant has set up (loop, pool, open
    /// file), so neither the clocks nor the deadline count set-up.
    private let started = Mutex<(cpu: Double, wall: Double, deadline: Double)?>(nil)

    init(pattern: Pattern, blockSize: Int, fileSize: Int64, seconds: Double) {
        self.pattern = pattern
        self.blockSize = blockSize
        self.blocks = fileSize / Int64(blockSize)
        self.seconds = seconds
    }

    /// Starts the clocks; the readers call it after set-up, before the first read.
    func start() {
        let wall = monotonicNanoseconds()
        started.withLock { $0 = (processCPUNanoseconds(), wall, wall + seconds * 1e9) }
    }

    /// CPU and wall nanoseconds at ``start()``.
    var startTimes: (cpu: Double, wall: Double) {
        started.withLock { value in value.map { ($0.cpu, $0.wall) } ?? (processCPUNanoseconds(), monotonicNanoseconds()) }
    }

    /// The offset a reader reads next, or nil when it is done.
    func nextOffset(_ random: inout SplitMix64) -> Int64? {
        switch pattern {
        case .random:
            let deadline = started.withLock { $0?.deadline } ?? 0
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
