import CUring
import Glibc

/// Where each signal number is forwarded: the write ends of the signal pipes
/// of every loop with a handler for it (libuv's behaviour: each watcher of a
/// signal is told). The C handler reads them in signal context, so they live
/// in memory that never moves, read and written with lock-free atomics, and
/// the handler calls `write(2)` only, which is async-signal-safe.
enum SignalRouting {
    static let slots = 65  // 1...64: the standard and real-time signals on Linux
    /// Loops that can hold a handler for one signal at once.
    static let loopsPerSignal = 128

    /// `loopsPerSignal` pipe write ends per signal number; -1 marks a free place.
    nonisolated(unsafe) static let targets = words(slots * loopsPerSignal, initially: -1)

    /// The dispositions replaced, restored when a signal's last handler goes.
    /// Its lock also serialises every change to ``targets``.
    static let previous = Locked<[Int32: sigaction]>([:])

    /// Handlers between reading ``targets`` and their last `write`. A loop
    /// that stops routing a signal waits for this to reach zero before it
    /// closes its pipe: a handler that read the descriptor just before it was
    /// taken out would otherwise write the signal's byte into whatever file
    /// or socket reused the number (libuv makes its handler and its stop
    /// exclusive for the same reason). Handler and closer each write, then
    /// read the other's word, sequentially consistent: at least one sees the
    /// other, so either the handler finds the descriptor gone or the closer
    /// waits for the handler.
    nonisolated(unsafe) static let active = words(1, initially: 0)

    /// Test hook: milliseconds each handler waits between reading the
    /// descriptors and writing to them, to hold the race window open.
    nonisolated(unsafe) static let pauseForTest = words(1, initially: 0)

    /// Words the signal handler reads: allocated once, never freed, never
    /// moved (a handler may run at any moment of the process's life).
    private static func words(_ count: Int, initially value: Int32) -> UnsafeMutablePointer<Int32> {
        let words = UnsafeMutablePointer<Int32>.allocate(capacity: count)
        words.initialize(repeating: value, count: count)
        return words
    }

    static let handler: @convention(c) (Int32) -> Void = { signal in
        let saved = errno
        _ = cu_fetch_add_seq_cst(SignalRouting.active, 1)
        if signal > 0, Int(signal) < SignalRouting.slots {
            let places = SignalRouting.targets + Int(signal) * SignalRouting.loopsPerSignal
            for place in 0..<SignalRouting.loopsPerSignal {
                let fd = cu_load_seq_cst(places + place)
                if fd >= 0 {
                    let pause = cu_load_acquire(SignalRouting.pauseForTest)
                    if pause > 0 {
                        var delay = timespec(tv_sec: Int(pause / 1000), tv_nsec: Int(pause % 1000) * 1_000_000)
                        nanosleep(&delay, nil)   // async-signal-safe
                    }
                    var byte = UInt8(truncatingIfNeeded: signal)
                    _ = Glibc.write(fd, &byte, 1)
                }
            }
        }
        _ = cu_fetch_add_seq_cst(SignalRouting.active, -1)
        errno = saved
    }

    /// Signals a handler may not be installed for: they cannot be caught, or
    /// the runtime relies on their default action to report a crash.
    static let forbidden: Set<Int32> = [SIGKILL, SIGSTOP, SIGSEGV, SIGBUS, SIGILL, SIGFPE]

    /// Routes `signal` to `writeFD` as well as to the loops already routed,
    /// installing the C handler with the first route.
    static func install(_ signal: Int32, writeFD: Int32) throws(EventLoopError) {
        let places = targets + Int(signal) * loopsPerSignal
        try previous.withLock { (previous: inout [Int32: sigaction]) throws(EventLoopError) in
            if (0..<loopsPerSignal).contains(where: { cu_load_acquire(places + $0) == writeFD }) { return }
            guard let free = (0..<loopsPerSignal).first(where: { cu_load_acquire(places + $0) < 0 }) else {
                throw .invalidArgument("signal \(signal) already has handlers on \(loopsPerSignal) loops, the most it can serve")
            }
            if previous[signal] == nil {
                var action = sigaction()
                action.__sigaction_handler.sa_handler = handler
                action.sa_flags = SA_RESTART
                sigemptyset(&action.sa_mask)
                var old = sigaction()
                guard sigaction(signal, &action, &old) == 0 else {
                    throw .invalidArgument("sigaction(\(signal)) failed: \(Errno(errno).name)")
                }
                previous[signal] = old
            }
            cu_store_release(places + free, writeFD)
        }
    }

    /// Stops routing `signal` to `writeFD`; once no loop is left for it, the
    /// disposition it replaced comes back. On return no handler is still
    /// about to write to `writeFD` for `signal`, so it may be closed.
    static func uninstall(_ signal: Int32, writeFD: Int32) {
        let places = targets + Int(signal) * loopsPerSignal
        previous.withLock { previous in
            for place in 0..<loopsPerSignal where cu_load_acquire(places + place) == writeFD {
                cu_store_seq_cst(places + place, -1)
            }
            // A handler on another thread may have read the descriptor just
            // before: wait for it (handlers only write one byte per loop; one
            // interrupting this thread runs to its end before this resumes).
            while cu_load_seq_cst(active) != 0 { sched_yield() }
            guard (0..<loopsPerSignal).allSatisfy({ cu_load_acquire(places + $0) < 0 }),
                  var old = previous.removeValue(forKey: signal) else { return }
            sigaction(signal, &old, nil)
        }
    }
}

/// One loop's signal handlers and the pipe their signals arrive on.
///
/// Why a pipe and not `signalfd`: a signalfd only sees a signal that is
/// blocked in every thread of the process, and a library cannot block it in
/// threads it did not start (Swift's cooperative pool, the application's
/// own), where the default action would then kill the process. A handler
/// that writes the signal's number to a pipe works whichever thread the
/// kernel picks, as libuv, uvloop and asyncio (`set_wakeup_fd`) do. The loop
/// reads the pipe like any other descriptor (a read SQE on io_uring,
/// readiness on epoll), and runs the handlers as callbacks.
final class SignalWatcher: @unchecked Sendable {  // loop-thread only
    let readEnd: File
    let writeFD: Int32
    var handlers: [Int32: () -> Void] = [:]
    private var reader: LoopTask<Void>?
    private unowned let loop: EventLoop

    init(loop: EventLoop) throws(EventLoopError) {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw .invalidArgument("pipe for signal handlers failed: \(Errno(errno).name)") }
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        // The handler must never block: a full pipe drops the byte, and the
        // reader has the signal's earlier byte still to read anyway.
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        self.loop = loop
        writeFD = fds[1]
        readEnd = File(wrapping: fds[0], path: "signal pipe", loop: loop)
    }

    /// Starts the task that reads the pipe, once.
    func startReading() {
        guard reader == nil else { return }
        reader = loop.spawn(name: "signal handlers") { [self] in
            let buffer = try IOBuffer(capacity: 64)
            while true {
                let n = try await readEnd.read(into: buffer)
                if n == 0 { return }
                let signals = buffer.withUnsafeBytes { Array($0.prefix(n)) }
                for signal in signals {
                    // Looked up now: a handler removed meanwhile does not run.
                    guard let handler = handlers[Int32(signal)] else { continue }
                    try? loop.callSoon { handler() }
                }
            }
        }
    }

    /// Restores every disposition and closes the pipe (at loop close).
    func shutdown() {
        for signal in handlers.keys { SignalRouting.uninstall(signal, writeFD: writeFD) }
        handlers = [:]
        reader?.cancel()
        Glibc.close(writeFD)
    }
}

extension EventLoop {
    /// Runs `handler` as a loop callback each time `signal` arrives:
    /// asyncio's `loop.add_signal_handler`. It replaces this loop's earlier
    /// handler for the signal; the signal's previous disposition comes back
    /// with ``removeSignalHandler(_:)`` or when the loop closes.
    ///
    /// A signal goes to every loop with a handler for it (up to 128 loops per
    /// signal), so each loop of a ``LoopGroup`` can stop its own server on
    /// SIGTERM.
    ///
    /// ```swift
    /// try loop.addSignalHandler(SIGTERM) { server.close() }
    /// ```
    ///
    /// - Throws: ``EventLoopError/invalidArgument(_:)`` for SIGKILL, SIGSTOP,
    ///   the crash signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE) and numbers
    ///   outside 1...64; `wrongThread` off the loop thread.
    public func addSignalHandler(_ signal: Int32, _ handler: @escaping () -> Void) throws(EventLoopError) {
        try requireLoopThread("addSignalHandler")
        guard signal > 0, Int(signal) < SignalRouting.slots else {
            throw .invalidArgument("signal \(signal) is outside 1...\(SignalRouting.slots - 1)")
        }
        guard !SignalRouting.forbidden.contains(signal) else {
            throw .invalidArgument("signal \(signal) (\(String(cString: strsignal(signal)))) cannot have a handler")
        }
        let watcher: SignalWatcher
        if let existing = signalWatcher {
            watcher = existing
        } else {
            watcher = try SignalWatcher(loop: self)
            signalWatcher = watcher
        }
        try SignalRouting.install(signal, writeFD: watcher.writeFD)
        watcher.handlers[signal] = handler
        watcher.startReading()
    }

    /// Removes the handler for `signal` and restores the disposition it
    /// replaced; returns false when there was none: asyncio's
    /// `loop.remove_signal_handler`.
    @discardableResult
    public func removeSignalHandler(_ signal: Int32) -> Bool {
        guard isOnLoopThread || !isRunning, let watcher = signalWatcher,
              watcher.handlers.removeValue(forKey: signal) != nil else { return false }
        SignalRouting.uninstall(signal, writeFD: watcher.writeFD)
        return true
    }
}
