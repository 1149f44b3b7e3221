import CUring
import Glibc

/// Kernel-visible scratch memory that belongs to one operation slot: the
/// timespec, socket address, iovec and msghdr an operation points the kernel
/// at. It lives in fixed chunks that never move, so a pointer handed to the
/// kernel stays valid until the slot is released at the final completion.
struct OperationScratch {
    var timespec = __kernel_timespec()
    var address = sockaddr_storage()
    var addressLength = socklen_t(0)
    var iov = iovec()
    var message = msghdr()
}

/// Stable pointers to the fields of a slot's scratch memory, computed by
/// offset rather than with `&`, whose pointers are only valid for one call.
extension UnsafeMutablePointer where Pointee == OperationScratch {
    private func field<T>(_ path: KeyPath<OperationScratch, T>, as type: T.Type) -> UnsafeMutablePointer<T> {
        (UnsafeMutableRawPointer(self) + MemoryLayout<OperationScratch>.offset(of: path)!).assumingMemoryBound(to: T.self)
    }
    var timespec: UnsafeMutablePointer<__kernel_timespec> { field(\.timespec, as: __kernel_timespec.self) }
    var address: UnsafeMutablePointer<sockaddr_storage> { field(\.address, as: sockaddr_storage.self) }
    var addressLength: UnsafeMutablePointer<socklen_t> { field(\.addressLength, as: socklen_t.self) }
    var iov: UnsafeMutablePointer<iovec> { field(\.iov, as: iovec.self) }
    var message: UnsafeMutablePointer<msghdr> { field(\.message, as: msghdr.self) }
    /// The address field as the `siginfo_t *` a waitid fills: both are 128
    /// bytes with 8-byte alignment (checked where it is used). Only the
    /// kernel and C write it; Swift reads it back with a raw load.
    var siginfo: UnsafeMutablePointer<siginfo_t> {
        UnsafeMutableRawPointer(address).assumingMemoryBound(to: siginfo_t.self)
    }
    /// The address field viewed as the `sockaddr` the kernel expects.
    var socketAddress: UnsafeMutablePointer<sockaddr> { UnsafeMutableRawPointer(address).assumingMemoryBound(to: sockaddr.self) }
}

/// The pool of in-flight operations, owned by one loop and touched only on its
/// thread.
///
/// Slots are recycled through a free list and live in chunks that are
/// allocated once, so steady-state I/O allocates nothing: the continuation is
/// an `UnsafeContinuation` stored inline, and the token handed to the kernel is
/// the slot index plus a generation that changes on every reuse.
final class OperationTable {
    enum State: UInt8 {
        case free
        /// Acquired, continuation not stored yet (the window in which an
        /// already-cancelled task's cancel handler can run).
        case reserved
        case submitted
        /// ASYNC_CANCEL was sent; waiting for the original completion.
        case cancelling
        /// The final completion arrived; the task has not yet read the
        /// scratch memory and released the slot.
        case completed
    }

    struct Slot {
        var generation: UInt32 = 1
        var state: State = .free
        var cancelledBeforeSubmit = false
        var nextFree: UInt32 = .max
        var continuation: UnsafeContinuation<Int32, Never>?
        /// For a member of a batch: the batch to tell, and the member's place.
        var batch: OperationBatch?
        var batchIndex = 0
        /// Keeps buffers the kernel reads or writes alive until the final CQE.
        var keepAlive: AnyObject?
        var fd: Int32 = -1
    }

    private static let chunkShift = 8
    private static let chunkSize = 1 << chunkShift
    @exclusivity(unchecked) private var slotChunks: [UnsafeMutablePointer<Slot>] = []
    @exclusivity(unchecked) private var scratchChunks: [UnsafeMutablePointer<OperationScratch>] = []
    @exclusivity(unchecked) private var freeHead: UInt32 = .max
    /// Operations acquired and not yet released.
    @exclusivity(unchecked) private(set) var inFlight = 0

    deinit {
        for chunk in slotChunks {
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
        for chunk in scratchChunks { chunk.deallocate() }
    }

    private func slotPointer(_ index: UInt32) -> UnsafeMutablePointer<Slot> {
        slotChunks[Int(index) >> Self.chunkShift] + (Int(index) & (Self.chunkSize - 1))
    }

    /// The stable scratch memory of `token`'s slot.
    func scratch(_ token: OperationToken) -> UnsafeMutablePointer<OperationScratch> {
        scratchChunks[Int(token.slot) >> Self.chunkShift] + (Int(token.slot) & (Self.chunkSize - 1))
    }

    private func grow() {
        let base = UInt32(slotChunks.count * Self.chunkSize)
        let slots = UnsafeMutablePointer<Slot>.allocate(capacity: Self.chunkSize)
        slots.initialize(repeating: Slot(), count: Self.chunkSize)
        let scratch = UnsafeMutablePointer<OperationScratch>.allocate(capacity: Self.chunkSize)
        scratch.initialize(repeating: OperationScratch(), count: Self.chunkSize)
        // Thread the new slots onto the free list in index order.
        for i in 0..<Self.chunkSize {
            slots[i].nextFree = i + 1 < Self.chunkSize ? base + UInt32(i + 1) : freeHead
        }
        slotChunks.append(slots)
        scratchChunks.append(scratch)
        freeHead = base
    }

    /// Takes a free slot and returns its token.
    func acquire(fd: Int32 = -1, keepAlive: AnyObject? = nil) -> OperationToken {
        if freeHead == .max { grow() }
        let index = freeHead
        let slot = slotPointer(index)
        freeHead = slot.pointee.nextFree
        slot.pointee.state = .reserved
        slot.pointee.cancelledBeforeSubmit = false
        slot.pointee.keepAlive = keepAlive
        slot.pointee.fd = fd
        inFlight += 1
        return OperationToken(slot: index, generation: slot.pointee.generation)
    }

    /// The token of the operation holding slot `index` now, if one does.
    func token(ofSlot index: UInt32) -> OperationToken? {
        guard Int(index) < slotChunks.count * Self.chunkSize else { return nil }
        let slot = slotPointer(index)
        guard slot.pointee.state != .free else { return nil }
        return OperationToken(slot: index, generation: slot.pointee.generation)
    }

    private func live(_ token: OperationToken) -> UnsafeMutablePointer<Slot>? {
        guard !token.isInternal, Int(token.slot) < slotChunks.count * Self.chunkSize else { return nil }
        let slot = slotPointer(token.slot)
        guard slot.pointee.generation == token.generation, slot.pointee.state != .free else { return nil }
        return slot
    }

    /// Stores the continuation and marks the slot submitted. Returns false if
    /// the task was cancelled before submission, in which case nothing may be
    /// submitted and the caller resumes with `-ECANCELED` and releases.
    func markSubmitted(_ token: OperationToken, continuation: UnsafeContinuation<Int32, Never>) -> Bool {
        guard let slot = live(token), !slot.pointee.cancelledBeforeSubmit else { return false }
        slot.pointee.continuation = continuation
        slot.pointee.state = .submitted
        return true
    }

    /// ``markSubmitted(_:continuation:)`` for a member of a batch: its
    /// completion goes to `batch` instead of resuming a task of its own.
    func markSubmitted(_ token: OperationToken, batch: OperationBatch, index: Int) -> Bool {
        guard let slot = live(token), !slot.pointee.cancelledBeforeSubmit else { return false }
        slot.pointee.batch = batch
        slot.pointee.batchIndex = index
        slot.pointee.state = .submitted
        return true
    }

    enum CancelDecision { case none, beforeSubmit, sendCancel }

    /// Records a cancellation request and says what the loop must do.
    func requestCancel(_ token: OperationToken) -> CancelDecision {
        guard let slot = live(token) else { return .none }
        switch slot.pointee.state {
        case .reserved:
            slot.pointee.cancelledBeforeSubmit = true
            return .beforeSubmit
        case .submitted:
            slot.pointee.state = .cancelling
            return .sendCancel
        case .cancelling, .completed, .free:
            return .none
        }
    }

    /// Marks `token` finished at its final completion and returns the
    /// continuation to resume. The slot (and its scratch memory) stays owned
    /// by the resumed task until it calls ``release(_:)``, so results the
    /// kernel wrote there (an accepted peer's address) can still be read.
    /// `nil` for a stale, unknown or already completed token.
    func complete(_ token: OperationToken) -> UnsafeContinuation<Int32, Never>? {
        guard let slot = live(token), slot.pointee.state == .submitted || slot.pointee.state == .cancelling
        else { return nil }
        let continuation = slot.pointee.continuation
        slot.pointee.continuation = nil
        slot.pointee.state = .completed
        return continuation
    }

    /// The batch a completed member belongs to, taken from its slot (nil for
    /// an operation that is not a batch member).
    func takeBatch(_ token: OperationToken) -> (OperationBatch, Int)? {
        guard let slot = live(token), let batch = slot.pointee.batch else { return nil }
        slot.pointee.batch = nil
        return (batch, slot.pointee.batchIndex)
    }

    /// Recycles a slot: after its completion was consumed, or when it was
    /// never submitted. Drops what the slot kept alive.
    func release(_ token: OperationToken) {
        guard let slot = live(token) else { return }
        release(slot, index: token.slot)
    }

    private func release(_ slot: UnsafeMutablePointer<Slot>, index: UInt32) {
        slot.pointee.continuation = nil
        slot.pointee.batch = nil
        slot.pointee.keepAlive = nil
        slot.pointee.state = .free
        // Skip generation 0: it marks the backends' internal tokens.
        slot.pointee.generation = slot.pointee.generation &+ 1 == 0 ? 1 : slot.pointee.generation &+ 1
        slot.pointee.nextFree = freeHead
        freeHead = index
        inFlight -= 1
    }

    /// Takes the continuation of every operation still in the kernel, for a
    /// close that cannot reap them (off the ring's issuer thread). Their slots
    /// stay taken for good: the kernel may still write into their memory.
    func abandonAll() -> [UnsafeContinuation<Int32, Never>] {
        var continuations: [UnsafeContinuation<Int32, Never>] = []
        var members: [(OperationBatch, Int)] = []
        for chunk in slotChunks {
            for i in 0..<Self.chunkSize where chunk[i].state == .submitted || chunk[i].state == .cancelling {
                if let continuation = chunk[i].continuation { continuations.append(continuation) }
                if let batch = chunk[i].batch { members.append((batch, chunk[i].batchIndex)) }
                chunk[i].continuation = nil
                chunk[i].batch = nil
                chunk[i].state = .completed
            }
        }
        for (batch, index) in members { batch.finished(index, result: -ECANCELED) }
        return continuations
    }

    /// Tokens of every submitted operation, for the loop's teardown.
    func submittedTokens() -> [OperationToken] {
        var result: [OperationToken] = []
        for (chunkIndex, chunk) in slotChunks.enumerated() {
            for i in 0..<Self.chunkSize where chunk[i].state == .submitted || chunk[i].state == .cancelling {
                result.append(OperationToken(slot: UInt32(chunkIndex * Self.chunkSize + i), generation: chunk[i].generation))
            }
        }
        return result
    }
}

/// Several operations awaited with one suspension: each member's completion
/// records its result here, and the last one resumes the waiting task.
/// Loop-thread only.
final class OperationBatch: CancellableWait, @unchecked Sendable {
    private(set) var results: [Int32]
    private var remaining: Int
    var continuation: UnsafeContinuation<Void, Never>?
    private unowned let loop: EventLoop
    private let tokens: [OperationToken]

    init(loop: EventLoop, tokens: [OperationToken]) {
        self.loop = loop
        self.tokens = tokens
        results = Array(repeating: -ECANCELED, count: tokens.count)
        remaining = tokens.count
    }

    /// Loop thread: the task was cancelled; every member still in flight is.
    func cancelWait(_: UInt32) {
        for token in tokens { loop.cancelOnLoop(token) }
    }

    func finished(_ index: Int, result: Int32) {
        results[index] = result
        remaining -= 1
        if remaining == 0, let continuation {
            self.continuation = nil
            continuation.resume()
        }
    }
}
