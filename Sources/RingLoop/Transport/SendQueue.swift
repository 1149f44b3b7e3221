import DequeModule
import Glibc

/// A transport's outbound bytes, in order: copies of what `write` was given
/// (in a ``ByteChain`` of pooled blocks) interleaved with ``IOBuffer``s
/// queued without a copy, which stay retained until the kernel has sent them.
///
/// The bytes of a send in flight stay where they are: only sent bytes are
/// consumed, and appending never moves what is queued.
struct SendQueue {
    private(set) var chain = ByteChain()
    /// The order of copied runs and retained buffers; nil while only copies
    /// are queued (the common case: no allocation for it at all).
    private var segments: Deque<Segment>?
    private enum Segment {
        case copied(Int)
        case buffer(IOBuffer, offset: Int, count: Int)
    }
    /// Bytes queued, including those of a send in flight.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(copying bytes: UnsafeRawBufferPointer, pool: BlockPool) {
        guard bytes.count > 0 else { return }
        chain.append(bytes, pool: pool)
        count += bytes.count
        guard segments != nil else { return }
        if case .copied(let n) = segments!.last {
            segments![segments!.count - 1] = .copied(n + bytes.count)
        } else {
            segments!.append(.copied(bytes.count))
        }
    }

    mutating func append(retaining buffer: IOBuffer) {
        guard buffer.count > 0 else { return }
        if segments == nil {
            segments = Deque()
            if chain.count > 0 { segments!.append(.copied(chain.count)) }
        }
        segments!.append(.buffer(buffer, offset: 0, count: buffer.count))
        count += buffer.count
    }

    /// The whole queue when it is one contiguous region (copied bytes in one
    /// block, or one retained buffer): sent with a plain `send`, without
    /// filling an iovec. Nil when it takes several, which ``fill(_:max:)`` lists.
    var singleRegion: (base: UnsafeRawPointer, count: Int)? {
        guard let segments else { return chain.singleRegion }
        guard segments.count == 1, let only = segments.first else { return nil }
        switch only {
        case .copied: return chain.singleRegion
        case .buffer(let buffer, let offset, let n): return (UnsafeRawPointer(buffer.base + offset), n)
        }
    }

    /// Fills up to `max` iovecs with the front of the queue; returns how many
    /// iovecs and how many bytes they cover.
    func fill(_ iovecs: UnsafeMutablePointer<iovec>, max: Int) -> (vectors: Int, bytes: Int) {
        var used = 0, bytes = 0
        func add(_ base: UnsafeRawPointer, _ n: Int) -> Bool {
            iovecs[used] = iovec(iov_base: UnsafeMutableRawPointer(mutating: base), iov_len: n)
            used += 1
            bytes += n
            return used < max
        }
        guard let segments else {
            chain.forEachRegion(add)
            return (used, bytes)
        }
        var chainSkip = 0
        for segment in segments {
            switch segment {
            case .copied(let n):
                var keepGoing = true
                var skipped = 0
                chain.forEachRegion(upTo: chainSkip + n) { base, length in
                    // Skip the copied bytes that earlier segments covered.
                    if skipped + length <= chainSkip { skipped += length; return true }
                    let start = Swift.max(0, chainSkip - skipped)
                    skipped += length
                    keepGoing = add(base + start, length - start)
                    return keepGoing
                }
                chainSkip += n
                if !keepGoing { return (used, bytes) }
            case .buffer(let buffer, let offset, let n):
                if !add(UnsafeRawPointer(buffer.base + offset), n) { return (used, bytes) }
            }
        }
        return (used, bytes)
    }

    /// Drops the first `n` bytes (they were sent).
    mutating func consume(_ n: Int, pool: BlockPool) {
        count -= n
        guard segments != nil else {
            chain.consume(n, pool: pool)
            return
        }
        var left = n
        while left > 0, let first = segments!.first {
            switch first {
            case .copied(let length):
                let take = Swift.min(left, length)
                chain.consume(take, pool: pool)
                left -= take
                if take == length { segments!.removeFirst() } else { segments![segments!.startIndex] = .copied(length - take) }
            case .buffer(let buffer, let offset, let length):
                let take = Swift.min(left, length)
                left -= take
                if take == length {
                    segments!.removeFirst()
                } else {
                    segments![segments!.startIndex] = .buffer(buffer, offset: offset + take, count: length - take)
                }
            }
        }
        if segments!.isEmpty { segments = nil }
    }

    mutating func removeAll(pool: BlockPool) {
        chain.removeAll(pool: pool)
        segments = nil
        count = 0
    }
}

/// The msghdr and iovecs of one `sendmsg` in flight, in memory that stays
/// put until its completion: taken from the loop's ``SendScratchPool`` when a
/// transport sends more than one region at once, given back after.
struct SendScratch {
    static let vectors = 16
    var message = msghdr()
    var iovecs: (iovec, iovec, iovec, iovec, iovec, iovec, iovec, iovec,
                 iovec, iovec, iovec, iovec, iovec, iovec, iovec, iovec) =
        (iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec(),
         iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec(), iovec())
}

extension UnsafeMutablePointer where Pointee == SendScratch {
    /// The iovec array, by offset (a pointer from `&` would not outlive the call).
    var iovecs: UnsafeMutablePointer<iovec> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<SendScratch>.offset(of: \.iovecs)!).assumingMemoryBound(to: iovec.self)
    }
    var message: UnsafeMutablePointer<msghdr> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<SendScratch>.offset(of: \.message)!).assumingMemoryBound(to: msghdr.self)
    }
}

/// Recycled ``SendScratch`` allocations: a steady state allocates none.
final class SendScratchPool {
    @exclusivity(unchecked) private var free: [UnsafeMutablePointer<SendScratch>] = []

    deinit { for scratch in free { scratch.deallocate() } }

    func take() -> UnsafeMutablePointer<SendScratch> {
        if let scratch = free.popLast() { return scratch }
        let scratch = UnsafeMutablePointer<SendScratch>.allocate(capacity: 1)
        scratch.initialize(to: SendScratch())
        return scratch
    }

    func give(_ scratch: UnsafeMutablePointer<SendScratch>) {
        if free.count < 1024 { free.append(scratch) } else { scratch.deallocate() }
    }
}
