import CUring
import Logging

/// The backend a loop drives: a closed set of two concrete classes, so the hot
/// path is a two-way switch with direct calls and no existential dispatch.
enum IOBackend {
    case uring(URingBackend)
    case epoll(EpollBackend)

    /// Connections one listener may accept in one go where the backend
    /// drains the accept queue itself (epoll readiness, io_uring without
    /// multishot accept), before other work gets a turn.
    static let acceptBudget = 64

    /// Chooses and sets up a backend.
    ///
    /// - `.uring` fails loudly when io_uring cannot be set up.
    /// - `.auto` falls back to epoll and returns the reason.
    /// - `uringProbeFailure` lets tests simulate a kernel that refuses io_uring.
    static func make(
        _ requested: Backend,
        ringEntries: UInt32,
        receiveBuffers: ReceiveBufferConfiguration,
        pool: ThreadPool,
        uringOptions: URingOptions,
        uringProbeFailure: (() -> Int32?)?
    ) throws(EventLoopError) -> (IOBackend, fallbackReason: String?) {
        func uring() throws(BackendSetupError) -> URingBackend {
            try URingBackend(entries: ringEntries, receiveBuffers: receiveBuffers, options: uringOptions, probeFailure: uringProbeFailure)
        }
        switch requested {
        case .epoll:
            return (.epoll(try makeEpoll(pool, receiveBuffers)), nil)
        case .uring:
            do {
                return (.uring(try uring()), nil)
            } catch {
                throw .backendUnavailable(.uring, reason: error.description)
            }
        case .auto:
            do {
                return (.uring(try uring()), nil)
            } catch {
                return (.epoll(try makeEpoll(pool, receiveBuffers)), error.description)
            }
        }
    }

    private static func makeEpoll(_ pool: ThreadPool, _ receiveBuffers: ReceiveBufferConfiguration) throws(EventLoopError) -> EpollBackend {
        do {
            return try EpollBackend(pool: pool, receiveBuffers: receiveBuffers)
        } catch {
            throw .backendUnavailable(.epoll, reason: error.description)
        }
    }

    /// The loop's receive buffers, shared by every connection.
    var receiveBuffers: ReceiveBuffers {
        switch self {
        case .uring(let b): b.buffers
        case .epoll(let b): b.buffers
        }
    }

    /// A descriptor with number `fd` was just created: forget any stale
    /// state an earlier descriptor with that number left behind.
    @inline(__always)
    func adopt(fd: Int32) {
        switch self {
        case .epoll(let b): b.adopt(fd: fd)
        // A fixed-file slot still holding the number's earlier file (closed
        // behind our back) must not serve the new one.
        case .uring(let r): r.willClose(fd: fd)
        }
    }

    /// `fd`, a descriptor the application owns, has no reader or writer
    /// left: epoll forgets it (its registration would otherwise outlive the
    /// descriptor and deafen the next one to get the number). io_uring's
    /// one-shot polls leave nothing behind.
    func unwatch(fd: Int32) {
        if case .epoll(let b) = self { b.unwatch(fd: fd) }
    }

    var kind: Backend {
        switch self {
        case .uring: .uring
        case .epoll: .epoll
        }
    }

    @inline(__always)
    func submit(_ operation: Operation, token: OperationToken,
                linkTimeout: UnsafeMutablePointer<__kernel_timespec>? = nil) {
        switch self {
        case .uring(let b): b.submit(operation, token: token, linkTimeout: linkTimeout)
        case .epoll(let b): b.submit(operation, token: token, linkTimeout: linkTimeout)
        }
    }

    /// Whether `operation` can be submitted: the epoll backend runs every file
    /// call on its pool; io_uring needs the opcode (probed at set-up).
    func canSubmit(_ operation: Operation) -> Bool {
        guard case .uring(let ring) = self else { return true }
        let opcode: UInt32
        switch operation {
        case .unlinkat: opcode = IORING_OP_UNLINKAT.rawValue
        case .renameat: opcode = IORING_OP_RENAMEAT.rawValue
        case .mkdirat: opcode = IORING_OP_MKDIRAT.rawValue
        case .fallocate: opcode = IORING_OP_FALLOCATE.rawValue
        case .ftruncate: opcode = UInt32(CU_OP_FTRUNCATE)
        default: return true
        }
        return ring.supportedOptionalOpcodes.contains(opcode)
    }

    @inline(__always)
    func cancel(_ token: OperationToken) {
        switch self {
        case .uring(let b): b.cancel(token)
        case .epoll(let b): b.cancel(token)
        }
    }

    /// Cancels a `.receiveStream` or `.acceptStream` armed on `fd`. The fd
    /// spares the epoll backend a token → fd entry per armed operation,
    /// which every idle connection would pay for.
    @inline(__always)
    func cancelArmed(_ token: OperationToken, fd: Int32) {
        switch self {
        case .uring(let b): b.cancel(token)
        case .epoll(let b): b.cancelArmed(token, fd: fd)
        }
    }

    @inline(__always)
    /// `expected`: how many completions the loop expects soon (the receives
    /// the last batch brought); io_uring's batched wait holds out for them.
    func poll(timeout: Int64?, force: Bool, expected: Int = 1, into completions: inout [Completion]) {
        switch self {
        case .uring(let b): b.poll(timeout: timeout, force: force, expected: expected, into: &completions)
        case .epoll(let b): b.poll(timeout: timeout, force: force, into: &completions)
        }
    }

    /// True when a non-blocking poll could deliver something without
    /// entering the kernel: queued submissions, or completions already known.
    @inline(__always)
    var hasPendingWork: Bool {
        switch self {
        case .uring(let b): b.hasPendingWork
        case .epoll(let b): b.hasPendingWork
        }
    }

    /// Thread-safe.
    func wake() {
        switch self {
        case .uring(let b): b.wake()
        case .epoll(let b): b.wake()
        }
    }

    func attach() throws(EventLoopError) {
        if case .uring(let b) = self { try b.attach() }
    }

    var canSubmitFromCurrentThread: Bool {
        switch self {
        case .uring(let b): b.canSubmitFromCurrentThread
        case .epoll: true
        }
    }

    /// `fd` is about to be closed by its owner.
    func willClose(fd: Int32) {
        switch self {
        case .epoll(let b): b.willClose(fd: fd)
        case .uring(let r): r.willClose(fd: fd)
        }
    }

    func close() {
        switch self {
        case .uring(let b): b.close()
        case .epoll(let b): b.close()
        }
    }

    /// Closes without reaping (the calling thread may not use the ring):
    /// descriptors are closed, memory the kernel may still write is kept.
    func abandon() {
        switch self {
        case .uring(let b): b.close(reaping: false)
        case .epoll(let b): b.close()
        }
    }

    /// Waits a signal interrupted.
    var interruptedWaits: Int {
        switch self {
        case .uring(let b): b.interruptedWaits
        case .epoll(let b): b.interruptedWaits
        }
    }

    /// A one-line description for logs: backend, set-up and probed features.
    var summary: String {
        switch self {
        case .uring(let b): b.summary
        case .epoll(let b): b.summary
        }
    }
}
