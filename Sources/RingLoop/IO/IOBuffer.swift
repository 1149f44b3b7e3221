import Glibc

/// Memory for I/O that the kernel may read or write while a task waits.
///
/// RingLoop's buffer model: an `IOBuffer` is a reference to one fixed
/// allocation. An operation retains the buffer from submission until the
/// kernel's *final* completion, even if the task is cancelled meanwhile, so
/// the memory can never be freed or moved under the kernel. (The alternative,
/// passing an `Array`'s pointer, is unsound: that pointer is only valid inside
/// `withUnsafeBytes`, never across a suspension.) See `Docs/Ownership.md`.
///
/// A buffer holds `capacity` bytes, of which the first `count` are valid.
/// Reads fill it from the start and set `count`; writes send the first `count`.
///
/// ```swift
/// let buffer = try IOBuffer(capacity: 4096)
/// let n = try await stream.read(into: buffer)
/// print(buffer.bytes)                // the n bytes read
/// try await stream.writeAll(buffer)  // echo them back
/// ```
///
/// Do not touch a buffer from another task while an operation on it is in flight.
public final class IOBuffer: @unchecked Sendable {
    /// Bytes of storage.
    public let capacity: Int
    /// Valid bytes, from the start. Reads set it; ``setCount(_:)`` sets it
    /// after filling the storage in place.
    // Read and set on every stream read and write; never passed inout, so
    // the runtime's dynamic exclusivity check (a thread-local access-set
    // insert per access) has nothing to find.
    @exclusivity(unchecked) public internal(set) var count: Int
    /// Start of the storage; stable for the buffer's lifetime.
    let base: UnsafeMutableRawPointer
    /// The storage alignment (4096 for `O_DIRECT` files).
    public let alignment: Int
    /// The registered block this buffer is a slot of, and the slot's index
    /// in the kernel's table; nil for a buffer that owns its memory.
    let slot: (memory: RegisteredMemory, index: Int)?

    /// An empty buffer of `capacity` bytes.
    ///
    /// - Parameter alignment: a power of two; use 4096 for files opened with
    ///   `O_DIRECT`.
    /// - Throws: ``IOError`` (`.invalidArgument`) for a negative capacity or an
    ///   alignment that is not a power of two.
    public init(capacity: Int, alignment: Int = 16) throws(IOError) {
        guard capacity >= 0 else {
            throw IOError(operation: "IOBuffer", errno: Errno(EINVAL), detail: "capacity must not be negative, got \(capacity)")
        }
        guard alignment > 0, alignment & (alignment - 1) == 0 else {
            throw IOError(operation: "IOBuffer", errno: Errno(EINVAL), detail: "alignment must be a power of two, got \(alignment)")
        }
        // posix_memalign reports failure; Swift's allocate would abort.
        var memory: UnsafeMutableRawPointer?
        let rc = posix_memalign(&memory, Swift.max(alignment, MemoryLayout<UnsafeRawPointer>.size), Swift.max(capacity, 1))
        guard rc == 0, let memory else {
            throw IOError(operation: "IOBuffer", errno: Errno(rc == 0 ? ENOMEM : rc), detail: "cannot allocate \(capacity) bytes")
        }
        self.capacity = capacity
        self.alignment = alignment
        self.count = 0
        base = memory
        slot = nil
    }

    /// A view of slot `index` of a registered block, which owns the memory.
    init(slot index: Int, of memory: RegisteredMemory) {
        capacity = memory.slotSize
        alignment = memory.alignment
        count = 0
        base = memory.base + index * memory.slotSize
        slot = (memory, index)
    }

    /// A buffer holding a copy of `bytes`.
    public init(_ bytes: some Collection<UInt8>) {
        capacity = bytes.count
        alignment = 16
        var memory: UnsafeMutableRawPointer?
        // The bytes already exist in memory, so this size can be allocated.
        precondition(posix_memalign(&memory, 16, Swift.max(capacity, 1)) == 0, "IOBuffer: out of memory")
        base = memory!
        UnsafeMutableRawBufferPointer(start: base, count: capacity).copyBytes(from: bytes)
        count = capacity
        slot = nil
    }

    deinit { if slot == nil { free(base) } }

    /// A copy of the valid bytes.
    public var bytes: [UInt8] { Array(UnsafeRawBufferPointer(start: base, count: count)) }

    /// The valid bytes, for reading in place.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: base, count: count))
    }

    /// All `capacity` bytes, for filling in place; set ``count`` afterwards.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(start: base, count: capacity))
    }

    /// Replaces the contents with a copy of `bytes`.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) when `bytes` do not fit.
    public func set(_ bytes: some Collection<UInt8>) throws(IOError) {
        guard bytes.count <= capacity else {
            throw IOError(operation: "IOBuffer.set", errno: Errno(EINVAL), detail: "\(bytes.count) bytes do not fit in \(capacity)")
        }
        UnsafeMutableRawBufferPointer(start: base, count: capacity).copyBytes(from: bytes)
        count = bytes.count
    }

    /// Declares the first `count` bytes valid after filling the storage in place.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) outside `0...capacity`.
    public func setCount(_ count: Int) throws(IOError) {
        guard count >= 0, count <= capacity else {
            throw IOError(operation: "IOBuffer.setCount", errno: Errno(EINVAL), detail: "\(count) is outside 0...\(capacity)")
        }
        self.count = count
    }

    /// The valid byte at `index`.
    public subscript(index: Int) -> UInt8 {
        precondition(index >= 0 && index < count, "IOBuffer index \(index) outside 0..<\(count)")
        return base.load(fromByteOffset: index, as: UInt8.self)
    }
}
