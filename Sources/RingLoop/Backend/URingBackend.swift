import CUring
import DequeModule
import Glibc

/// The io_uring backend: every operation is one SQE, every result one CQE.
///
/// Thread-safety: everything except ``wake()`` runs on the loop thread. Under
/// `IORING_SETUP_SINGLE_ISSUER` the ring is created disabled and enabled by the
/// first thread that runs the loop (see ``attach()``), so a loop may be built on
/// one thread and run on another.
final class URingBackend {
    private let ring: UnsafeMutablePointer<io_uring>
    private let wakeFD: Int32
    /// Where the armed eventfd read lands; owned here until the ring is gone.
    private let wakeBuffer: UnsafeMutablePointer<UInt64>
    private let reapBuffer: UnsafeMutablePointer<cu_completion>
    private static let reapBatch = 256
    /// The loop's receive buffers: a provided-buffer ring where the kernel
    /// has them (5.19), otherwise a pool for single-shot receives.
    let buffers: ReceiveBuffers
    /// Operations that found the SQ full; flushed at the next poll.
    @exclusivity(unchecked) private var overflow = Deque<(Operation, OperationToken, UnsafeMutablePointer<__kernel_timespec>?)>()
    /// Completions known without the kernel (a pooled receive with no buffer
    /// left), delivered at the next poll.
    @exclusivity(unchecked) var known: [Completion] = []
    /// Pooled single-shot receives in flight: token → the buffer they fill.
    @exclusivity(unchecked) var pooledReceives: [UInt64: UInt16] = [:]
    /// Single-shot stream accepts in flight (no multishot accept): token → listener.
    @exclusivity(unchecked) var singleShotAccepts: [UInt64: Int32] = [:]
    @exclusivity(unchecked) var multishot: MultishotSupport
    @exclusivity(unchecked) private var wakeArmed = false
    @exclusivity(unchecked) private var enabled: Bool
    @exclusivity(unchecked) private var issuerTID: Int32 = 0
    @exclusivity(unchecked) private var closed = false
    @exclusivity(unchecked) private var shuttingDown = false
    @exclusivity(unchecked) private var droppedSeen: UInt32 = 0
    @exclusivity(unchecked) private(set) var ringFDRegistered = false
    /// Batched waits are asked for and the kernel has them.
    let batchWaits: Bool
    /// Sends written to the SQ since the last enter.
    @exclusivity(unchecked) var sendsSubmitted = 0
    let options: URingOptions
    /// Test hook: results to report instead of calling `io_uring_enter`, one
    /// per poll, to exercise the EINTR / EAGAIN / EBUSY paths.
    @exclusivity(unchecked) var injectedEnterResults: [Int32] = []
    /// Test hook: this many mid-iteration submits (made to free SQ room)
    /// fail as if the kernel said EBUSY, so operations must wait in the
    /// overflow queue.
    @exclusivity(unchecked) var injectedBusySubmits = 0
    /// What happened under pressure, counted for tests and reports: an
    /// operation found the SQ full and waited in the overflow queue; the
    /// kernel flagged CQ overflow (its NODROP list held completions); a wait
    /// was interrupted by a signal.
    @exclusivity(unchecked) private(set) var sqFullEvents = 0
    /// Mid-iteration submits made because the SQ was full.
    @exclusivity(unchecked) private(set) var earlySubmits = 0
    @exclusivity(unchecked) private(set) var cqOverflowEvents = 0
    @exclusivity(unchecked) private(set) var interruptedWaits = 0
    /// Called with a message when the kernel reports dropped CQEs.
    var onDroppedCompletions: ((String) -> Void)?
    /// Setup flags the kernel accepted, and which cascade step that was.
    let setupFlags: UInt32
    let setupName: String
    /// Submission queue size; the CQ is four times larger for multishot use.
    let entries: UInt32
    /// Why the provided-buffer ring is not in use, when it is not.
    let bufferRingUnavailable: String?

    /// Sets up a ring, walking the flag cascade.
    ///
    /// - Parameter probeFailure: test hook; when it returns an errno the setup
    ///   behaves as if the kernel had refused with it.
    init(entries: UInt32 = 256, receiveBuffers: ReceiveBufferConfiguration = .default, options: URingOptions = URingOptions(),
         probeFailure: (() -> Int32?)? = nil) throws(BackendSetupError) {
        if let errno = probeFailure?() { throw BackendSetupError(operation: "io_uring_setup", errno: Errno(errno)) }
        guard entries > 0, entries <= 32768 else {
            throw BackendSetupError(operation: "io_uring_setup", errno: Errno(EINVAL), detail: "ring entries must be 1...32768, got \(entries)")
        }
        let ring = UnsafeMutablePointer<io_uring>.allocate(capacity: 1)
        ring.initialize(to: io_uring())
        var lastError: Int32 = 0
        var accepted: (String, UInt32)?
        for (name, flags) in Self.setupCascade.dropFirst(options.firstSetupStep) {
            var params = io_uring_params()
            params.flags = flags | CU_SETUP_CQSIZE
            params.cq_entries = entries * 4
            let rc = io_uring_queue_init_params(entries, ring, &params)
            if rc == 0 { accepted = (name, flags); break }
            lastError = -rc
            // Only an unknown flag is worth retrying with fewer flags; EPERM,
            // ENOSYS and ENOMEM mean io_uring itself is off limits.
            if lastError != EINVAL { break }
        }
        guard let (name, flags) = accepted else {
            ring.deallocate()
            throw BackendSetupError(operation: "io_uring_setup", errno: Errno(lastError))
        }
        var optional: Set<UInt32> = []
        do throws(BackendSetupError) {
            guard cu_ring_features(ring) & CU_FEAT_NODROP != 0 else {
                throw BackendSetupError(operation: "io_uring_setup", errno: Errno(ENOSYS), detail: "kernel lacks IORING_FEAT_NODROP")
            }
            guard cu_ring_features(ring) & CU_FEAT_EXT_ARG != 0 else {
                throw BackendSetupError(operation: "io_uring_setup", errno: Errno(ENOSYS), detail: "kernel lacks IORING_FEAT_EXT_ARG")
            }
            optional = try Self.checkOpcodes(ring)
        } catch {
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw error
        }
        _ = cu_ring_dontfork(ring)
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        if fd < 0 {
            let e = Errno.current
            io_uring_queue_exit(ring)
            ring.deallocate()
            throw BackendSetupError(operation: "eventfd", errno: e)
        }
        // A provided-buffer ring where the kernel has them (5.19); a disabled
        // ring may register one before it is enabled.
        var unavailable: String? = "disabled"
        var registered: ReceiveBuffers?
        if options.bufferRing {
            do {
                registered = try ReceiveBuffers(receiveBuffers, registeringWith: ring)
                unavailable = nil
            } catch {
                unavailable = "io_uring_register_buf_ring failed: \(error)"
            }
        }
        buffers = registered ?? ReceiveBuffers(receiveBuffers)
        bufferRingUnavailable = unavailable
        multishot = MultishotSupport(receive: options.multishot && registered != nil, accept: options.multishot)
        self.options = options
        batchWaits = options.batchWaitMicroseconds > 0 && cu_ring_features(ring) & CU_FEAT_MIN_TIMEOUT != 0
        self.ring = ring
        self.wakeFD = fd
        self.setupFlags = flags
        self.setupName = name
        self.entries = entries
        self.supportedOptionalOpcodes = optional
        if options.fixedFiles { fixedFiles = FixedFileTable(ring: ring) }
        self.enabled = flags & CU_SETUP_R_DISABLED == 0
        wakeBuffer = .allocate(capacity: 1)
        wakeBuffer.initialize(to: 0)
        reapBuffer = .allocate(capacity: Self.reapBatch)
        if enabled { becomeIssuer() }
    }

    /// The optional opcodes this kernel has.
    private(set) var supportedOptionalOpcodes: Set<UInt32> = []

    /// The fixed-file table, with the `fixed-files` option.
    @exclusivity(unchecked) private(set) var fixedFiles: FixedFileTable?

    /// `fd` is about to be closed (or its number was reused): its fixed-file
    /// slot must let go first, or the table's reference would keep the
    /// socket open, or serve the old file to the new number.
    func willClose(fd: Int32) {
        fixedFiles?.release(fd, ring: ring)
    }

    /// Turns a prepared socket SQE into a fixed-file one where the table has the fd.
    func useFixedFile(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ fd: Int32) {
        guard fixedFiles?.register(fd, ring: ring) == true else { return }
        sqe.pointee.fd = fd
        sqe.pointee.flags |= CU_SQE_FIXED_FILE
    }

    /// The block registered with `io_uring_register_buffers`, if any: held
    /// strongly so its memory outlives the registration.
    private(set) var registeredMemory: RegisteredMemory?

    /// Registers `memory`'s slots as the ring's fixed buffers.
    func register(_ memory: RegisteredMemory) throws(IOError) {
        guard registeredMemory == nil else {
            throw IOError(operation: "io_uring_register_buffers", errno: Errno(EBUSY),
                          detail: "this loop already has registered buffers; unregister them first")
        }
        let vectors = (0..<memory.count).map { iovec(iov_base: memory.base + $0 * memory.slotSize, iov_len: memory.slotSize) }
        let rc = io_uring_register_buffers(ring, vectors, UInt32(vectors.count))
        guard rc == 0 else {
            throw IOError(operation: "io_uring_register_buffers", errno: Errno(rc),
                          detail: "\(memory.count) × \(memory.slotSize) bytes (pinned memory counts against RLIMIT_MEMLOCK)")
        }
        registeredMemory = memory
    }

    /// Drops the registration of `memory`, if it is the registered block.
    func unregister(_ memory: RegisteredMemory) {
        guard registeredMemory === memory, !closed else { return }
        _ = io_uring_unregister_buffers(ring)
        registeredMemory = nil
    }

    /// The fixed-buffer index for `buffer` on this ring, if its memory is the
    /// registered block.
    @inline(__always)
    func fixedIndex(of buffer: IOBuffer) -> Int? {
        guard let slot = buffer.slot, slot.memory === registeredMemory else { return nil }
        return slot.index
    }

    /// Test hook: behave as a kernel without the optional opcodes.
    func forgetOptionalOpcodes() { supportedOptionalOpcodes = [] }

    deinit { close() }

    /// Binds the ring to the calling thread before its first run.
    ///
    /// A ring created `R_DISABLED` is enabled here, which makes this thread the
    /// single issuer. Running again on another thread is refused, because the
    /// kernel would reject every submission with EEXIST.
    func attach() throws(EventLoopError) {
        let tid = cu_gettid()
        if enabled {
            if setupFlags & CU_SETUP_SINGLE_ISSUER != 0, issuerTID != tid { throw .boundToAnotherThread }
            return
        }
        let rc = cu_enable_rings(ring)
        if rc < 0 {
            throw .backendUnavailable(.uring, reason: "io_uring_register(ENABLE_RINGS) failed: \(Errno(rc))")
        }
        enabled = true
        becomeIssuer()
    }

    private func becomeIssuer() {
        issuerTID = cu_gettid()
        // A registered ring fd spares every io_uring_enter the fd table
        // lookup. The registration belongs to the thread that made it, so it
        // is only used where one thread is the only issuer for good.
        if options.registerRingFD, setupFlags & CU_SETUP_SINGLE_ISSUER != 0, !ringFDRegistered {
            ringFDRegistered = io_uring_register_ring_fd(ring) == 1
        }
        armWakeup()
    }

    /// Whether submissions from the calling thread are possible now.
    var canSubmitFromCurrentThread: Bool {
        enabled && (setupFlags & CU_SETUP_SINGLE_ISSUER == 0 || issuerTID == cu_gettid())
    }

    private func armWakeup() {
        guard !wakeArmed, !shuttingDown, let sqe = nextSQE() else { return }
        io_uring_prep_read(sqe, wakeFD, wakeBuffer, 8, 0)
        io_uring_sqe_set_data64(sqe, OperationToken.wakeup.rawValue)
        wakeArmed = true
    }

    /// Thread-safe: makes a blocked `poll` return.
    func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    private func nextSQE() -> UnsafeMutablePointer<io_uring_sqe>? {
        if let sqe = io_uring_get_sqe(ring) { return sqe }
        // SQ full: hand what is queued to the kernel and try once more.
        submitEarly()
        return io_uring_get_sqe(ring)
    }

    /// Submits mid-iteration to free SQ room (the SQ filled up).
    private func submitEarly() {
        earlySubmits += 1
        if injectedBusySubmits > 0 {
            injectedBusySubmits -= 1
            return
        }
        _ = io_uring_submit(ring)
    }

    /// Queues `operation`; it reaches the kernel at the next poll at the latest.
    ///
    /// With `linkTimeout`, an `IORING_OP_LINK_TIMEOUT` SQE is linked behind the
    /// operation: if the relative time in the timespec passes first, the kernel
    /// cancels the operation, which then completes with `-ECANCELED`. The
    /// timeout's own CQE is internal and dropped.
    func submit(_ operation: Operation, token: OperationToken,
                linkTimeout: UnsafeMutablePointer<__kernel_timespec>? = nil) {
        guard overflow.isEmpty, place(operation, token, linkTimeout) else {
            overflow.append((operation, token, linkTimeout))
            sqFullEvents += 1
            return
        }
        // Block-device reads and writes go to the kernel in slices as the
        // batch is built, not all at the end of the iteration: requests that
        // reach a device together complete together, and the device idles
        // between bursts (O_DIRECT random reads: +20%; fio shows the same
        // effect with --iodepth_batch_submit). Socket operations are left to
        // the one enter per iteration: slicing them cost the echo server 5-40%
        // more CPU per round trip.
        switch operation {
        case .read, .write, .readv, .writev, .readFixed, .writeFixed:
            fileOperationsQueued += 1
            if options.fileSubmitSlice > 0, fileOperationsQueued >= options.fileSubmitSlice {
                _ = io_uring_submit(ring)
                fileOperationsQueued = 0
            }
        default:
            break
        }
    }

    @exclusivity(unchecked) private var fileOperationsQueued = 0

    /// Writes the SQE (and its linked timeout) if the SQ has room for all of
    /// it: a linked pair must not be split across submissions.
    private func place(_ operation: Operation, _ token: OperationToken,
                       _ linkTimeout: UnsafeMutablePointer<__kernel_timespec>?) -> Bool {
        let needed: UInt32 = linkTimeout == nil ? 1 : 2
        if io_uring_sq_space_left(ring) < needed { submitEarly() }
        guard io_uring_sq_space_left(ring) >= needed, let sqe = io_uring_get_sqe(ring) else { return false }
        if !prepare(sqe, operation, token) {
            // Nothing to submit after all (a pooled receive with no buffer):
            // give the SQE back as a NOP whose completion is dropped.
            io_uring_prep_nop(sqe)
            io_uring_sqe_set_data64(sqe, OperationToken.internalCancel.rawValue)
            return true
        }
        if let linkTimeout, let timeoutSQE = io_uring_get_sqe(ring) {
            sqe.pointee.flags |= CU_SQE_IO_LINK
            io_uring_prep_link_timeout(timeoutSQE, linkTimeout, 0)
            io_uring_sqe_set_data64(timeoutSQE, OperationToken.internalCancel.rawValue)
        }
        return true
    }

    private func flushOverflow() {
        while let (operation, token, linkTimeout) = overflow.first {
            guard place(operation, token, linkTimeout) else { return }
            overflow.removeFirst()
        }
    }

    /// Submissions are queued, or completions are already visible.
    var hasPendingWork: Bool {
        !overflow.isEmpty || !known.isEmpty || io_uring_sq_ready(ring) > 0 || io_uring_cq_ready(ring) > 0
    }

    /// Submits what is queued, waits up to `timeout` nanoseconds for at least
    /// one completion (`nil`: no limit; 0: do not wait), and appends every
    /// reaped completion to `completions`.
    ///
    /// A zero-timeout poll with nothing to submit and no sign of pending kernel
    /// work skips the syscall unless `force` is set; the loop forces one every
    /// few iterations so completions are never starved.
    func poll(timeout: Int64?, force: Bool, expected: Int = 1, into completions: inout [Completion]) {
        guard enabled, !closed else { return }
        fileOperationsQueued = 0
        // Re-arm the wakeup read until it is armed: an earlier attempt may
        // have found the SQ full.
        if !wakeArmed { armWakeup() }
        flushOverflow()
        let pendingSubmit = io_uring_sq_ready(ring) > 0
        let kernelFlags = cu_sq_flags(ring)
        if kernelFlags & CU_SQ_CQ_OVERFLOW != 0 { cqOverflowEvents += 1 }
        let kernelHasWork = kernelFlags & (CU_SQ_TASKRUN | CU_SQ_CQ_OVERFLOW) != 0
        var rc: Int32 = 0
        if !injectedEnterResults.isEmpty {
            rc = injectedEnterResults.removeFirst()
        } else if timeout == 0 || io_uring_cq_ready(ring) > 0 || !known.isEmpty {
            if pendingSubmit || force || kernelHasWork {
                rc = io_uring_submit_and_get_events(ring)
            }
        } else if batchWaits, expected >= 2 {
            // Under concurrent load (the last batch brought several
            // completions), wait for what should come: the sends just
            // submitted (most complete at submission) and as many new
            // requests as the last batch answered. The kernel returns once
            // they are all there, or after the batch timeout with whatever
            // is: many completions per enter instead of one. A lone client
            // (batches of one) gets the plain wait and its latency.
            let wanted = UInt32(Swift.min(256, expected + sendsSubmitted))
            if let timeout {
                var ts = __kernel_timespec(tv_sec: timeout / 1_000_000_000, tv_nsec: timeout % 1_000_000_000)
                rc = cu_submit_and_wait_batch(ring, wanted, &ts, options.batchWaitMicroseconds)
            } else {
                rc = cu_submit_and_wait_batch(ring, wanted, nil, options.batchWaitMicroseconds)
                // With no overall timeout the kernel ends the wait when the
                // batch time runs out, with ETIME even if nothing completed.
                // Nothing did: the load is gone, so wait for the first
                // completion as asked. (Returning would make an idle loop
                // spin through batch-time waits for as long as `expected`
                // stays from the last busy batch.)
                if rc == -ETIME, io_uring_cq_ready(ring) == 0 {
                    rc = io_uring_submit_and_wait(ring, 1)
                }
            }
        } else if let timeout {
            var ts = __kernel_timespec(tv_sec: timeout / 1_000_000_000, tv_nsec: timeout % 1_000_000_000)
            var cqe: UnsafeMutablePointer<io_uring_cqe>?
            rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, nil)
        } else {
            rc = io_uring_submit_and_wait(ring, 1)
        }
        sendsSubmitted = 0
        if rc == -EINTR { interruptedWaits += 1 }
        // EINTR: a signal; ETIME: the wait timed out; EAGAIN/EBUSY: the kernel
        // wants completions reaped first (or is short of memory). All are
        // handled the same way: reap what is there now; the SQEs not yet
        // consumed stay queued and the next iteration submits them again.
        _ = rc
        if !known.isEmpty {
            completions.append(contentsOf: known)
            known.removeAll(keepingCapacity: true)
        }
        reap(into: &completions)
        flushOverflow()
    }

    private func reap(into completions: inout [Completion]) {
        while true {
            let n = Int(cu_reap(ring, reapBuffer, UInt32(Self.reapBatch)))
            if n == 0 { break }
            for i in 0..<n {
                let c = reapBuffer[i]
                let token = OperationToken(rawValue: c.user_data)
                if token == .wakeup {
                    wakeArmed = false
                    armWakeup()
                    continue
                }
                // Internal cancels and liburing's own timeout CQEs carry no
                // continuation.
                if token == .internalCancel || c.user_data == UInt64.max { continue }
                var flags = c.flags
                if flags & CompletionFlag.buffer != 0 {
                    buffers.noteHandedOut()
                } else if !pooledReceives.isEmpty, let id = pooledReceives.removeValue(forKey: c.user_data) {
                    // A pooled receive: say which buffer it filled, as a ring CQE would.
                    if c.res > 0 {
                        flags |= CompletionFlag.buffer | UInt32(id) << CompletionFlag.bufferShift
                    } else {
                        buffers.recycle(id)
                    }
                }
                if let refused = multishot.learn(from: c) {
                    submit(refused, token: token)   // single-shot now; this completion is dropped
                    continue
                }
                if !singleShotAccepts.isEmpty, let listener = singleShotAccepts.removeValue(forKey: c.user_data), c.res >= 0 {
                    drainAccepts(listener, first: c.res, token: token, into: &completions)
                    continue
                }
                completions.append(Completion(token: token, result: c.res, flags: flags))
            }
            if n < Self.reapBatch { break }
        }
        let dropped = cu_cq_dropped(ring)
        if dropped != droppedSeen {
            onDroppedCompletions?("io_uring dropped \(dropped &- droppedSeen) completions (CQ overflow without memory for NODROP)")
            droppedSeen = dropped
        }
    }

    /// A kernel without multishot accept hands out one connection per SQE,
    /// so a burst would be accepted one per loop iteration, behind every
    /// other connection's work. After the first, take what else is queued
    /// (up to ``IOBackend/acceptBudget``, as epoll does) with non-blocking `accept4` calls,
    /// and report them as a multishot accept would: all but the last with
    /// `MORE`, so the acceptor arms again after the last.
    @inline(never)  // rare (kernels before 5.19): kept out of the reaping loop
    private func drainAccepts(_ listener: Int32, first: Int32, token: OperationToken, into completions: inout [Completion]) {
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        var last = first
        for _ in 0..<IOBackend.acceptBudget {
            let next = cu_accept4(listener, nil, nil, flags)
            guard next >= 0 else { break }
            completions.append(Completion(token: token, result: last, flags: CompletionFlag.more))
            last = next
        }
        completions.append(Completion(token: token, result: last, flags: 0))
    }

    /// Asks the kernel to cancel `token`; the original CQE still arrives.
    func cancel(_ token: OperationToken) {
        submit(.cancel(target: token), token: .internalCancel)
    }

    /// Closes the ring and the eventfd. The loop drains its own in-flight
    /// operations first; this cancels and reaps the backend's wakeup read.
    func close(reaping: Bool = true) {
        guard !closed else { return }
        shuttingDown = true
        if reaping, wakeArmed, canSubmitFromCurrentThread {
            cancel(.wakeup)
            var ignored: [Completion] = []
            for _ in 0..<200 where wakeArmed {
                poll(timeout: 5_000_000, force: true, into: &ignored)
            }
        }
        closed = true
        let drained = reaping && !wakeArmed
        io_uring_queue_exit(ring)
        Glibc.close(wakeFD)
        ring.deallocate()
        reapBuffer.deallocate()
        // If the read could not be reaped (the loop was closed from a thread
        // that may not submit), the kernel's asynchronous teardown could still
        // touch the buffers: leak them rather than risk a write into freed memory.
        // Operations on registered buffers keep their IOBuffer (so the block)
        // alive until their completion, so the ring's own hold can go.
        registeredMemory = nil
        if drained {
            wakeBuffer.deallocate()
            buffers.release()
        } else {
            LeakedForSafety.keep(memory: UnsafeMutableRawPointer(wakeBuffer))
            LeakedForSafety.keep(buffers)
        }
    }
}
