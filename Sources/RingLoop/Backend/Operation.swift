import CUring
import Glibc

/// Identifies one submitted operation, packed into io_uring's 64-bit
/// `user_data`: a slot index and that slot's generation. A completion whose
/// generation no longer matches its slot is stale and is dropped, so a
/// recycled slot never sees an old CQE.
///
/// Two namespaces share the space, told apart by the generation's top bit:
/// - **awaited operations**: a slot of the loop's ``OperationTable``, whose
///   completion resumes a task;
/// - **handler operations**: a slot of the loop's ``HandlerTable``, whose
///   completions go to an object's callback (a transport, a server); the
///   generation also carries a 4-bit kind, so one handler can have a recv,
///   a send and an accept in flight and tell their completions apart.
struct OperationToken: Hashable, Sendable, CustomStringConvertible {
    var rawValue: UInt64

    init(rawValue: UInt64) { self.rawValue = rawValue }
    init(slot: UInt32, generation: UInt32) {
        rawValue = UInt64(generation) << 32 | UInt64(slot)
    }

    var slot: UInt32 { UInt32(truncatingIfNeeded: rawValue) }
    var generation: UInt32 { UInt32(truncatingIfNeeded: rawValue >> 32) }

    /// Tokens the backends use for their own bookkeeping. Generation 0 is never
    /// handed out by either table, so these cannot collide with real operations.
    static let wakeup = OperationToken(rawValue: 0xFFFF_FFFF)
    static let internalCancel = OperationToken(rawValue: 0xFFFF_FFFE)

    var isInternal: Bool { generation == 0 }

    static let handlerFlag: UInt32 = 1 << 31
    static let handlerGenerationMask: UInt32 = (1 << 27) - 1

    /// A handler operation's token: handler slot, its generation, and the kind.
    init(handler slot: UInt32, generation: UInt32, kind: UInt8) {
        self.init(slot: slot, generation: Self.handlerFlag | UInt32(kind & 0xF) << 27 | (generation & Self.handlerGenerationMask))
    }

    var isHandler: Bool { generation & Self.handlerFlag != 0 }
    var handlerKind: UInt8 { UInt8(truncatingIfNeeded: (generation >> 27) & 0xF) }
    var handlerGeneration: UInt32 { generation & Self.handlerGenerationMask }

    var description: String { isHandler ? "handler#\(slot).\(handlerGeneration)/\(handlerKind)" : "op#\(slot).\(generation)" }
}

/// CQE flags RingLoop reads (io_uring's values; the epoll backend sets the
/// same ones when it emulates a multishot operation).
enum CompletionFlag {
    /// The upper 16 bits of the flags hold the provided buffer's id.
    static let buffer: UInt32 = 1 << 0
    /// More completions will follow for this operation; without it, the
    /// operation has ended and must be re-armed if still wanted.
    static let more: UInt32 = 1 << 1
    static let bufferShift: UInt32 = 16
}

/// A finished operation as the loop sees it: the token and the kernel-style
/// result (`>= 0` success, `-errno` failure), plus io_uring's CQE flags.
struct Completion: Sendable {
    var token: OperationToken
    var result: Int32
    var flags: UInt32
}

/// The offset value meaning "the file's current position" (io_uring's `-1`).
let currentFileOffset = UInt64.max

/// Every operation either backend performs.
///
/// Pointers in the payloads point into memory the submitter keeps alive and
/// unmoved until the operation's final completion (see `Docs/Ownership.md`):
/// the slot scratch space of ``OperationTable`` or an owned buffer the slot
/// retains. The backends never copy or free them.
///
/// The epoll backend splits these in two: socket operations (`recv`, `send`,
/// `recvmsg`, `sendmsg`, `accept`, `connect`) are tried at once and re-tried on
/// readiness; file operations (`read`, `write`, `readv`, `writev`, `openat`,
/// `statx`, `fsync`) run on the thread pool, because regular files are never
/// "ready" to epoll.
enum Operation {
    case nop
    /// Completes with `-ETIME` after the relative time in the timespec.
    case timeout(UnsafeMutablePointer<__kernel_timespec>)
    /// Cancels the operation with `target`; completes with 0, `-ENOENT` or `-EALREADY`.
    case cancel(target: OperationToken)
    case read(fd: Int32, buffer: UnsafeMutableRawPointer, count: UInt32, offset: UInt64)
    case write(fd: Int32, buffer: UnsafeRawPointer, count: UInt32, offset: UInt64)
    /// `read` into slot `index` of the ring's registered buffers
    /// (IORING_OP_READ_FIXED); a plain `pread` on the pool under epoll.
    case readFixed(fd: Int32, buffer: UnsafeMutableRawPointer, count: UInt32, offset: UInt64, index: UInt16)
    /// `write` from slot `index` of the registered buffers (WRITE_FIXED).
    case writeFixed(fd: Int32, buffer: UnsafeRawPointer, count: UInt32, offset: UInt64, index: UInt16)
    case readv(fd: Int32, iovecs: UnsafePointer<iovec>, count: UInt32, offset: UInt64)
    case writev(fd: Int32, iovecs: UnsafePointer<iovec>, count: UInt32, offset: UInt64)
    case recv(fd: Int32, buffer: UnsafeMutableRawPointer, count: UInt32, flags: Int32)
    /// Receives into the loop's receive buffers, each completion carrying the
    /// buffer it filled (``CompletionFlag/buffer``), for as long as the
    /// completions carry ``CompletionFlag/more``: io_uring's multishot recv
    /// over a provided-buffer ring where the kernel has it, a single-shot
    /// recv into a provided or pooled buffer where it does not, readiness and
    /// `recv` into a pooled buffer on epoll.
    case receiveStream(fd: Int32)
    /// Accepts connections until a completion lacks ``CompletionFlag/more``
    /// (multishot accept; accept-until-EAGAIN on readiness under epoll).
    case acceptStream(fd: Int32)
    case send(fd: Int32, buffer: UnsafeRawPointer, count: UInt32, flags: Int32)
    case recvmsg(fd: Int32, message: UnsafeMutablePointer<msghdr>, flags: UInt32)
    case sendmsg(fd: Int32, message: UnsafePointer<msghdr>, flags: UInt32)
    case accept(fd: Int32, address: UnsafeMutablePointer<sockaddr>?, length: UnsafeMutablePointer<socklen_t>?, flags: Int32)
    case connect(fd: Int32, address: UnsafePointer<sockaddr>, length: socklen_t)
    case shutdown(fd: Int32, how: Int32)
    case close(fd: Int32)
    case openat(directory: Int32, path: UnsafePointer<CChar>, flags: Int32, mode: mode_t)
    case statx(directory: Int32, path: UnsafePointer<CChar>, flags: Int32, mask: UInt32, buffer: UnsafeMutablePointer<statx>)
    case fsync(fd: Int32, dataOnly: Bool)
    case unlinkat(directory: Int32, path: UnsafePointer<CChar>, flags: Int32)
    case renameat(from: UnsafePointer<CChar>, to: UnsafePointer<CChar>)
    case mkdirat(directory: Int32, path: UnsafePointer<CChar>, mode: mode_t)
    case fallocate(fd: Int32, mode: Int32, offset: UInt64, length: UInt64)
    case ftruncate(fd: Int32, length: UInt64)
    /// Completes with the `poll(2)` events once `fd` has one of `events`
    /// (IORING_OP_POLL_ADD; readiness under epoll). For descriptors that are
    /// only ever waited on, never read: a pidfd.
    case poll(fd: Int32, events: UInt32)
    /// Moves up to `count` bytes from `input` to `output`, one of which is a
    /// pipe (IORING_OP_SPLICE; the pool under epoll). An offset of -1 means
    /// the end has none (the pipe, a socket).
    case splice(input: Int32, inputOffset: Int64, output: Int32, outputOffset: Int64, count: UInt32)
    /// Reaps the exited child behind `pidfd` into `info` (IORING_OP_WAITID
    /// where the kernel has it). Where it does not, and on epoll, it
    /// completes once the pidfd is readable; `info` then holds the child if
    /// it was reaped, or zeroes (the caller reaps with `WNOHANG`).
    case waitid(pidfd: Int32, info: UnsafeMutablePointer<siginfo_t>)

    /// A short name for errors and debug logs.
    var name: String {
        switch self {
        case .nop: "nop"
        case .timeout: "timeout"
        case .cancel: "cancel"
        case .read: "read"
        case .write: "write"
        case .readFixed: "read"
        case .writeFixed: "write"
        case .readv: "readv"
        case .writev: "writev"
        case .recv: "recv"
        case .receiveStream: "recv (multishot)"
        case .acceptStream: "accept (multishot)"
        case .send: "send"
        case .recvmsg: "recvmsg"
        case .sendmsg: "sendmsg"
        case .accept: "accept"
        case .connect: "connect"
        case .shutdown: "shutdown"
        case .close: "close"
        case .openat: "openat"
        case .statx: "statx"
        case .fsync(_, let dataOnly): dataOnly ? "fdatasync" : "fsync"
        case .poll: "poll"
        case .waitid: "waitid"
        case .splice: "splice"
        case .unlinkat, .renameat, .mkdirat, .fallocate, .ftruncate: "\(fileSystemCallName)"
        }
    }
}
