import CUring
import Glibc

/// How many receive buffers a loop keeps for its connections, and how large.
///
/// Connections do not own read buffers: a loop-wide set serves all of them
/// (on io_uring a provided-buffer ring the kernel picks from), so an idle
/// connection holds none. A buffer is back in the set as soon as the bytes it
/// received were handed on (after `dataReceived`, or copied into a stream's
/// queue). When every buffer is out, receives pause (io_uring reports
/// ENOBUFS) and resume as buffers come back; no data is lost.
///
/// ```swift
/// let loop = try EventLoop(receiveBuffers: .init(count: 4096, size: 4096))
/// ```
public struct ReceiveBufferConfiguration: Sendable, Equatable {
    /// Buffers in the set: a power of two, 1...32768.
    public var count: Int
    /// Bytes per buffer: a multiple of 64, 64...1 MiB.
    public var size: Int

    /// `count` buffers of `size` bytes; checked when the loop is made (an
    /// out-of-range value is an ``EventLoopError/invalidArgument(_:)``).
    public init(count: Int, size: Int) {
        self.count = count
        self.size = size
    }

    /// 1,024 buffers of 16 KiB (16 MiB of address space, touched as used):
    /// enough for a thousand connections to receive in one iteration.
    public static let `default` = ReceiveBufferConfiguration(count: 1024, size: 16 * 1024)

    func validate() throws(EventLoopError) {
        guard count >= 1, count <= 32768, count & (count - 1) == 0 else {
            throw .invalidArgument("receiveBuffers.count must be a power of two in 1...32768, got \(count)")
        }
        guard size >= 64, size <= 1 << 20, size % 64 == 0 else {
            throw .invalidArgument("receiveBuffers.size must be a multiple of 64 in 64...1048576, got \(size)")
        }
    }
}

/// The loop's receive buffers: one allocation cut into equal buffers, named
/// by a 16-bit id as io_uring names provided buffers.
///
/// - **Kernel ring** (io_uring, Linux 5.19+): the buffers are registered as a
///   provided-buffer ring (`io_uring_register_buf_ring`); the kernel takes a
///   free one per receive and the CQE says which. ``recycle(_:)`` puts it
///   back on the ring.
/// - **Pool** (epoll, or io_uring without buffer rings): the backend takes a
///   buffer with ``take()`` for each receive it performs or submits.
///
/// Loop-thread only. Owns its memory until ``release()``, which the backend
/// calls only once the kernel can no longer write into it.
final class ReceiveBuffers {
    let count: Int
    let size: Int
    let group: UInt16 = 1
    private let base: UnsafeMutableRawPointer
    /// The registered ring, in kernel-ring mode.
    private(set) var ring: UnsafeMutablePointer<io_uring_buf_ring>?
    private let ringBytes: Int
    private let mask: Int32
    /// Free ids, in pool mode.
    @exclusivity(unchecked) private var free: [UInt16] = []
    /// Buffers handed out (a CQE named them, or ``take()`` did) and not yet
    /// recycled. The rest are available to receives.
    @exclusivity(unchecked) private(set) var inUse = 0

    var available: Int { count - inUse }
    var isKernelRing: Bool { ring != nil }

    /// Pool mode.
    init(_ configuration: ReceiveBufferConfiguration) {
        count = configuration.count
        size = configuration.size
        base = .allocate(byteCount: count * size, alignment: 4096)
        ringBytes = 0
        mask = Int32(count - 1)
        free = (0..<count).reversed().map { UInt16($0) }
    }

    /// Kernel-ring mode: registers the buffers with `ring`. Throws the
    /// errno when the kernel has no buffer rings (before 5.19).
    init(_ configuration: ReceiveBufferConfiguration, registeringWith uring: UnsafeMutablePointer<io_uring>) throws(Errno) {
        count = configuration.count
        size = configuration.size
        mask = Int32(count - 1)
        ringBytes = count * MemoryLayout<io_uring_buf>.stride
        // The ring itself must be page-aligned: mmap gives that and zeroes it.
        let mapping = mmap(nil, ringBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        guard let mapping, mapping != MAP_FAILED else { throw Errno.current }
        let ring = mapping.assumingMemoryBound(to: io_uring_buf_ring.self)
        var registration = io_uring_buf_reg()
        registration.ring_addr = UInt64(UInt(bitPattern: mapping))
        registration.ring_entries = UInt32(count)
        registration.bgid = group
        let rc = io_uring_register_buf_ring(uring, &registration, 0)
        if rc < 0 {
            munmap(mapping, ringBytes)
            throw Errno(rc)
        }
        base = .allocate(byteCount: count * size, alignment: 4096)
        self.ring = ring
        io_uring_buf_ring_init(ring)
        for id in 0..<count {
            io_uring_buf_ring_add(ring, base + id * size, UInt32(size), UInt16(id), mask, Int32(id))
        }
        io_uring_buf_ring_advance(ring, Int32(count))
    }

    @inline(__always)
    func pointer(_ id: UInt16) -> UnsafeMutableRawPointer { base + Int(id) * size }

    /// Pool mode: a free buffer, or nil when all are out.
    func take() -> UInt16? {
        guard let id = free.popLast() else { return nil }
        inUse += 1
        return id
    }

    /// Kernel-ring mode: a CQE handed out buffer `id`.
    @inline(__always)
    func noteHandedOut() { inUse += 1 }

    /// Makes buffer `id` available again.
    @inline(__always)
    func recycle(_ id: UInt16) {
        inUse -= 1
        if let ring {
            io_uring_buf_ring_add(ring, pointer(id), UInt32(size), id, mask, 0)
            io_uring_buf_ring_advance(ring, 1)
        } else {
            free.append(id)
        }
    }

    /// Frees the memory. Called after the ring is torn down (so the kernel
    /// can no longer write into it), or never, if that could not be ensured.
    func release() {
        base.deallocate()
        if let ring { munmap(ring, ringBytes) }
    }
}
