/// The loop's pool of fixed-size blocks, from which every connection's send
/// queue and stream inbound queue take their memory.
///
/// A connection holds blocks only while it has bytes queued: an idle one
/// holds none. Blocks are recycled through a free list threaded through
/// their first word, so a steady state allocates nothing.
///
/// How many free blocks it keeps follows use, the way allocators decay
/// their caches: everything a busy period needed stays (up to
/// ``ceiling``), and blocks that sat unused through a whole ``period`` go
/// back to malloc, down to ``floor``. A fixed cap of 256 kept blocks made a
/// server with 1,000 connections give back and re-allocate hundreds of
/// 16 KiB blocks on every wave of replies (0.19 `posix_memalign` per echo at
/// 1,000 × 4 KiB), and the glibc heap fragmented under it: resident memory
/// crept up by megabytes over tens of thousands of connections, where a pool
/// that keeps what it uses stays flat (BENCHMARKS.md, "The block pool keeps what it uses").
///
/// Loop-thread only.
final class BlockPool {
    /// Bytes per block, header included.
    static let blockSize = 16 * 1024
    /// The first word links a block to the next one in a chain (or in the
    /// free list); the rest holds bytes.
    static let header = MemoryLayout<UnsafeMutableRawPointer?>.stride
    static let capacity = blockSize - header

    @exclusivity(unchecked) private var free: UnsafeMutableRawPointer?
    @exclusivity(unchecked) private(set) var freeCount = 0
    /// Blocks handed out and not given back.
    @exclusivity(unchecked) private(set) var outstanding = 0
    /// Blocks taken from malloc since the pool was made.
    @exclusivity(unchecked) private(set) var allocated = 0
    /// Free blocks kept however quiet the loop gets (4 MiB at 256).
    let floor: Int
    /// Free blocks kept at most; a block given back beyond goes to malloc.
    let ceiling: Int
    /// How long a free block may sit unused before it goes back to malloc.
    @exclusivity(unchecked) var period: UInt64 = 10_000_000_000
    /// The fewest free blocks since ``periodStart``: that many were not
    /// needed during the period.
    @exclusivity(unchecked) private var lowWater = 0
    /// When the current period began; nil while the pool holds no more
    /// than ``floor`` (nothing to give back, nothing to watch).
    @exclusivity(unchecked) private var periodStart: UInt64?

    init(floor: Int = 256, ceiling: Int = 4096) {
        precondition(0 <= floor && floor <= ceiling, "BlockPool(floor: \(floor), ceiling: \(ceiling))")
        self.floor = floor
        self.ceiling = ceiling
    }

    deinit { release(freeCount) }

    func take() -> UnsafeMutableRawPointer {
        outstanding += 1
        if let block = free {
            free = BlockPool.next(block)
            freeCount -= 1
            if freeCount < lowWater { lowWater = freeCount }
            BlockPool.setNext(block, nil)
            return block
        }
        lowWater = 0
        allocated += 1
        let block = UnsafeMutableRawPointer.allocate(byteCount: BlockPool.blockSize, alignment: 64)
        BlockPool.setNext(block, nil)
        return block
    }

    func give(_ block: UnsafeMutableRawPointer) {
        outstanding -= 1
        if freeCount >= ceiling {
            block.deallocate()
            return
        }
        BlockPool.setNext(block, free)
        free = block
        freeCount += 1
    }

    /// True when the pool holds more than ``floor``: the loop then calls
    /// ``trim(now:)`` before it sleeps, and on its periodic forced poll
    /// when it has no time to sleep.
    @inline(__always) var hasSurplus: Bool { freeCount > floor }

    /// Gives back the blocks that went unused for a whole period, once one
    /// has passed, and returns how many nanoseconds the loop may sleep
    /// before the next look (nil: no surplus left, sleep as long as it
    /// likes). An idle loop thus wakes at most twice to return what its last
    /// busy moment left behind.
    func trim(now: UInt64) -> UInt64? {
        guard hasSurplus else {
            periodStart = nil
            return nil
        }
        guard let start = periodStart else {
            periodStart = now
            lowWater = freeCount
            return period
        }
        let elapsed = now &- start
        guard elapsed >= period else { return period - elapsed }
        release(Swift.min(lowWater, freeCount - floor))
        lowWater = freeCount
        periodStart = hasSurplus ? now : nil
        return periodStart == nil ? nil : period
    }

    /// Returns `count` free blocks to malloc: the ones used longest ago (the
    /// free list's tail), so the recently used, cache-warm ones stay.
    private func release(_ count: Int) {
        guard count > 0 else { return }
        var unreleased: UnsafeMutableRawPointer? = nil
        var block = free
        for _ in 0..<(freeCount - count) {
            unreleased = block
            block = block.flatMap(BlockPool.next)
        }
        if let unreleased { BlockPool.setNext(unreleased, nil) } else { free = nil }
        while let current = block {
            block = BlockPool.next(current)
            current.deallocate()
        }
        freeCount -= count
    }

    @inline(__always) static func next(_ block: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        block.load(as: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) static func setNext(_ block: UnsafeMutableRawPointer, _ next: UnsafeMutableRawPointer?) {
        block.storeBytes(of: next, as: UnsafeMutableRawPointer?.self)
    }
    @inline(__always) static func payload(_ block: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer { block + header }
}
