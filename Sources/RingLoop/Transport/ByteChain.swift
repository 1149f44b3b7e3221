/// A FIFO of bytes in a chain of pooled blocks: bytes are appended at the
/// tail and consumed from the head, and a block goes back to the pool as
/// soon as its last byte is consumed.
///
/// Memory the kernel reads from (a send in flight) is never moved: appending
/// only writes past what is queued, and bytes are consumed only once sent.
struct ByteChain {
    private(set) var head: UnsafeMutableRawPointer?
    private var tail: UnsafeMutableRawPointer?
    /// Consumed bytes at the start of the head block's payload.
    private var readOffset = 0
    /// Bytes written into the tail block's payload.
    private var writeOffset = 0
    /// Bytes queued.
    private(set) var count = 0

    var isEmpty: Bool { count == 0 }

    mutating func append(_ bytes: UnsafeRawBufferPointer, pool: BlockPool) {
        guard var source = bytes.baseAddress, bytes.count > 0 else { return }
        var left = bytes.count
        while left > 0 {
            if tail == nil || writeOffset == BlockPool.capacity {
                let block = pool.take()
                if let tail { BlockPool.setNext(tail, block) } else { head = block; readOffset = 0 }
                tail = block
                writeOffset = 0
            }
            let n = Swift.min(left, BlockPool.capacity - writeOffset)
            (BlockPool.payload(tail!) + writeOffset).copyMemory(from: source, byteCount: n)
            writeOffset += n
            source += n
            left -= n
            count += n
        }
    }

    /// Drops `n` bytes from the front, giving emptied blocks back.
    mutating func consume(_ n: Int, pool: BlockPool) {
        precondition(n <= count, "ByteChain.consume(\(n)) with only \(count) queued")
        var left = n
        count -= n
        while left > 0, let block = head {
            let inBlock = (block == tail ? writeOffset : BlockPool.capacity) - readOffset
            if left < inBlock {
                readOffset += left
                break
            }
            left -= inBlock
            let next = BlockPool.next(block)
            pool.give(block)
            head = next
            readOffset = 0
            if next == nil { tail = nil; writeOffset = 0 }
        }
        if count == 0, let block = head {
            // Everything consumed but the block is still the tail: give it back
            // too, so an idle queue holds no memory.
            pool.give(block)
            head = nil
            tail = nil
            readOffset = 0
            writeOffset = 0
        }
    }

    /// The queued bytes when they lie in one block (a reply smaller than a
    /// block, the common case), else nil.
    var singleRegion: (base: UnsafeRawPointer, count: Int)? {
        guard let block = head, block == tail, count > 0 else { return nil }
        return (UnsafeRawPointer(BlockPool.payload(block) + readOffset), count)
    }

    /// Calls `body` with the queued bytes as contiguous regions, front first,
    /// covering at most `limit` bytes; `body` returns false to stop early.
    func forEachRegion(upTo limit: Int = .max, _ body: (UnsafeRawPointer, Int) -> Bool) {
        var left = Swift.min(limit, count)
        var block = head
        var offset = readOffset
        while left > 0, let current = block {
            let end = current == tail ? writeOffset : BlockPool.capacity
            let n = Swift.min(left, end - offset)
            if n > 0, !body(UnsafeRawPointer(BlockPool.payload(current) + offset), n) { return }
            left -= n
            block = BlockPool.next(current)
            offset = 0
        }
    }

    /// Copies up to `max` bytes from the front into `destination` without
    /// consuming them; returns how many.
    func peek(into destination: UnsafeMutableRawPointer, max: Int) -> Int {
        var copied = 0
        forEachRegion(upTo: max) { region, n in
            (destination + copied).copyMemory(from: region, byteCount: n)
            copied += n
            return true
        }
        return copied
    }

    /// The offset of the first occurrence of `separator` at or after
    /// `start`, or nil. Scans the blocks in place.
    func firstIndex(of separator: [UInt8], from start: Int = 0) -> Int? {
        guard !separator.isEmpty, count - start >= separator.count else { return nil }
        // Match across block boundaries by keeping the bytes of a partial match.
        var position = 0
        var matched = 0
        var found: Int?
        forEachRegion { region, n in
            let bytes = UnsafeRawBufferPointer(start: region, count: n)
            for byte in bytes {
                defer { position += 1 }
                if position < start { continue }
                if byte == separator[matched] {
                    matched += 1
                    if matched == separator.count {
                        found = position + 1 - separator.count
                        return false
                    }
                } else if matched > 0 {
                    // Fall back by re-checking the partial match's own suffixes.
                    matched = Self.fallback(separator, matched: matched, byte: byte)
                }
            }
            return true
        }
        return found
    }

    /// KMP-style fallback without a table (separators are short): the length
    /// of the longest prefix of `separator` that ends the partial match plus `byte`.
    private static func fallback(_ separator: [UInt8], matched: Int, byte: UInt8) -> Int {
        var length = matched
        while length > 0 {
            // Candidate: the last `length - 1` matched bytes plus `byte`.
            let candidate = Array(separator[(matched - length + 1)..<matched]) + [byte]
            if Array(separator[0..<length]) == candidate { return length }
            length -= 1
        }
        return byte == separator[0] ? 1 : 0
    }

    /// Gives every block back.
    mutating func removeAll(pool: BlockPool) {
        if count > 0 || head != nil { consume(count, pool: pool) }
    }
}
