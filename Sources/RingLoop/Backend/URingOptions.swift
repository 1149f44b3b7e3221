import Glibc

/// Test and experiment switches for the io_uring backend: each turns off a
/// kernel feature so the fallback path it guards can be exercised on a
/// kernel that has the feature.
struct URingOptions: Sendable {
    /// Use pooled single-shot receives instead of a provided-buffer ring.
    var bufferRing = true
    /// Use single-shot recv and accept instead of multishot.
    var multishot = true
    /// Register the ring fd (`io_uring_register_ring_fd`) so each enter
    /// skips the fd table lookup.
    var registerRingFD = true
    /// Restrict the set-up cascade to the steps at or after this one (0:
    /// all), as on a kernel that refuses the stronger flags.
    var firstSetupStep = 0
    /// IORING_RECVSEND_POLL_FIRST on receives: arm the poll at once instead
    /// of trying the socket at submission.
    var pollFirst = false
    /// Batched waits (kernel 6.12's min_wait_usec): a blocking wait asks for
    /// the completions it expects (the sends just submitted, which complete at
    /// once, plus as many receives as the last batch brought) and holds out
    /// for them at most this long before returning with what came. 0 turns
    /// it off (a wait then returns at the first completion).
    var batchWaitMicroseconds: UInt32 = 50
    /// File reads and writes are handed to the kernel every this many SQEs
    /// as an iteration builds its batch (1: each at once; 0: only at the
    /// iteration's enter). For A/B measurements of the submission depth.
    var fileSubmitSlice = 4
    /// Sockets that receive and send are registered in a fixed-file table
    /// and their SQEs use IOSQE_FIXED_FILE (no fd lookup per SQE, one
    /// register call per connection). Off by default: see Docs/Backends.md.
    var fixedFiles = false
    /// `SocketStream.sendFile` splices pages that are not in the page cache
    /// through a pipe with SQEs (off the loop thread). Off: `sendfile(2)` on
    /// the loop thread for every page, as on epoll. For A/B runs.
    var spliceFiles = true

    /// The options named in `RINGLOOP_URING_OPTIONS`, a comma-separated list
    /// for experiments and A/B measurements: `no-ring-fd`, `no-multishot`,
    /// `no-buffer-ring`, `poll-first`, `batch-wait=MICROSECONDS` (0: off),
    /// `file-slice=N` (file SQEs submitted every N; 0: only at the enter),
    /// `fixed-files`, `sendfile` (no splice for `SocketStream.sendFile`).
    ///
    /// An item it does not know is an error, as a bad `RINGLOOP_BACKEND` is:
    /// a misspelt option would otherwise measure the defaults under another name.
    static func fromEnvironment() throws(EventLoopError) -> URingOptions {
        guard let raw = getenv("RINGLOOP_URING_OPTIONS") else { return URingOptions() }
        return try parse(String(cString: raw))
    }

    static func parse(_ text: String) throws(EventLoopError) -> URingOptions {
        var options = URingOptions()
        for item in text.split(separator: ",") {
            switch item {
            case "no-ring-fd": options.registerRingFD = false
            case "no-multishot": options.multishot = false
            case "no-buffer-ring": options.bufferRing = false
            case "poll-first": options.pollFirst = true
            case "fixed-files": options.fixedFiles = true
            case "sendfile": options.spliceFiles = false
            default:
                if item.hasPrefix("batch-wait="), let us = UInt32(item.dropFirst("batch-wait=".count)) {
                    options.batchWaitMicroseconds = us
                } else if item.hasPrefix("file-slice="), let slice = Int(item.dropFirst("file-slice=".count)), slice >= 0 {
                    options.fileSubmitSlice = slice
                } else {
                    throw .invalidArgument(
                        "RINGLOOP_URING_OPTIONS: unknown item \"\(item)\" (known: no-ring-fd, no-multishot, no-buffer-ring, "
                            + "poll-first, fixed-files, sendfile, batch-wait=MICROSECONDS, file-slice=N)")
                }
            }
        }
        return options
    }
}
