import CUring
import Glibc

/// A pool of equal buffers registered with the loop's io_uring
/// (`io_uring_register_buffers`), so file reads and writes through them use
/// `IORING_OP_READ_FIXED` / `WRITE_FIXED`: the kernel pinned and mapped the
/// pages once, instead of on every operation. This matters most for
/// `O_DIRECT` I/O, where each plain read pins its user pages.
///
/// Opt-in, and one pool per loop at a time (the kernel keeps one table per
/// ring). The buffers are ordinary ``IOBuffer``s: pass them to any read or
/// write. On epoll, or on a loop other than the one they were registered
/// with, or after ``unregister()``, they work as plain buffers.
///
/// ```swift
/// let pool = try RegisteredBuffers(count: 32, size: 4096)
/// let file = try await File.open(path, File.Options.read.direct)
/// let n = try await file.read(into: pool.buffers[0], at: 0)   // READ_FIXED
/// ```
///
/// Ownership: the memory lives as long as the pool or any of its buffers,
/// whichever is last; the kernel's registration is released by
/// ``unregister()`` or when the loop closes.
public final class RegisteredBuffers: @unchecked Sendable {
    /// The buffers, each `size` bytes at the pool's alignment.
    public let buffers: [IOBuffer]
    /// Whether the kernel has the buffers registered (false on epoll).
    public var isRegistered: Bool { registeredWith?.registeredMemory === memory }
    private let memory: RegisteredMemory
    private let loop: EventLoop
    private var registeredWith: URingBackend?

    /// Allocates `count` buffers of `size` bytes on the running loop and
    /// registers them with its ring.
    ///
    /// - Parameter alignment: of each buffer; the default (a page) suits
    ///   `O_DIRECT`. `size` must be a multiple of it.
    /// - Throws: ``IOError`` for a count outside 1...16384, a size outside
    ///   1 byte...1 GiB or not a multiple of the alignment, memory the kernel
    ///   will not pin (`ENOMEM`: `RLIMIT_MEMLOCK` or the cgroup), or a loop
    ///   that already has a pool (`EBUSY`); ``EventLoopError`` off the loop's
    ///   thread.
    public init(count: Int, size: Int, alignment: Int = 4096) throws {
        let loop = try EventLoop.running()
        try loop.requireLoopThread("RegisteredBuffers")
        guard (1...16_384).contains(count) else {
            throw IOError(operation: "RegisteredBuffers", errno: Errno(EINVAL), detail: "count must be in 1...16384, got \(count)")
        }
        guard size > 0, size <= 1 << 30, alignment > 0, alignment & (alignment - 1) == 0, size % alignment == 0 else {
            throw IOError(operation: "RegisteredBuffers", errno: Errno(EINVAL),
                          detail: "size must be in 1...1 GiB and a multiple of the alignment (a power of two); got size \(size), alignment \(alignment)")
        }
        let memory = try RegisteredMemory(count: count, slotSize: size, alignment: alignment)
        self.memory = memory
        self.loop = loop
        buffers = (0..<count).map { IOBuffer(slot: $0, of: memory) }
        if case .uring(let ring) = loop.io {
            try ring.register(memory)
            registeredWith = ring
        }
    }

    /// Releases the kernel's registration; the buffers keep working as plain
    /// buffers. Reads and writes already in flight finish safely (the kernel
    /// holds the pages until they complete). Idempotent.
    ///
    /// - Throws: ``EventLoopError`` off the loop's thread.
    public func unregister() throws {
        try loop.requireLoopThread("RegisteredBuffers.unregister")
        registeredWith?.unregister(memory)
        registeredWith = nil
    }
}

/// One allocation split into equal slots, the unit the ring registers. Freed
/// when the last buffer or pool using it goes, never while registered (the
/// ring holds it strongly until it unregisters).
final class RegisteredMemory: @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let count: Int
    let slotSize: Int
    let alignment: Int

    init(count: Int, slotSize: Int, alignment: Int) throws(IOError) {
        var memory: UnsafeMutableRawPointer?
        let rc = posix_memalign(&memory, Swift.max(alignment, MemoryLayout<UnsafeRawPointer>.size), count * slotSize)
        guard rc == 0, let memory else {
            throw IOError(operation: "RegisteredBuffers", errno: Errno(rc == 0 ? ENOMEM : rc),
                          detail: "cannot allocate \(count) × \(slotSize) bytes")
        }
        memset(memory, 0, count * slotSize)   // touch the pages before the kernel pins them
        (base, self.count, self.slotSize, self.alignment) = (memory, count, slotSize, alignment)
    }

    deinit { free(base) }
}
