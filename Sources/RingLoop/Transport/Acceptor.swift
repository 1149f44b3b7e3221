import Glibc
import Logging

/// Accepts connections on a listening socket for as long as it is wanted:
/// the machinery under ``Server`` and ``SocketListener``.
///
/// One multishot accept (io_uring) or an accept-until-EAGAIN on readiness
/// (epoll, bounded per poll) drains the kernel's accept queue: hundreds of
/// waiting connections are taken in one iteration, not one per iteration.
///
/// Errors never end accepting for good (asyncio's and libuv's policy):
/// - the transient errnos accept(2) lists (a connection that died in the
///   queue, a network that went down) re-arm at once;
/// - running out of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM)
///   pauses accepting for a delay that starts at 10 ms and doubles up to
///   1 s, so a full descriptor table never makes the loop spin, and it
///   resumes by itself once descriptors are free; one log line per episode;
/// - anything else is logged, and retried after the same backoff.
///
/// Loop-thread only; `@unchecked Sendable` so an owner going away on another
/// thread can send it to the loop to be closed.
final class Acceptor: CompletionHandler, @unchecked Sendable {
    let loop: EventLoop
    /// The listening socket, or -1 once closed.
    private(set) var fd: Int32
    private var handlerID = HandlerID(slot: 0, generation: 0)
    /// Gets each accepted socket (non-blocking, close-on-exec).
    var onAccepted: (Int32) -> Void = { Glibc.close($0) }
    /// Called once the listening socket is closed.
    var onClosed: (() -> Void)?
    /// What to name in log lines.
    let label: String

    private var accepting = false
    private var wanted = true
    private var closing = false
    private var backoffTimer: TimerHandle?
    private var backoffDelay = Acceptor.initialBackoff
    private var episodeLogged = false

    static let initialBackoff = Duration.milliseconds(10)
    static let maximumBackoff = Duration.seconds(1)
    /// accept(2)'s "already pending network errors": retried at once.
    static let transient: Set<Int32> = [ECONNABORTED, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH,
                                        EOPNOTSUPP, ENETUNREACH, EINTR, EAGAIN]
    /// Exhaustion: back off until resources are free.
    static let exhaustion: Set<Int32> = [EMFILE, ENFILE, ENOBUFS, ENOMEM]

    /// Takes ownership of the listening socket `fd`.
    init(fd: Int32, loop: EventLoop, label: String) {
        self.fd = fd
        self.loop = loop
        self.label = label
        loop.io.adopt(fd: fd)
        handlerID = loop.handlers.register(self)
    }

    var isClosed: Bool { fd < 0 }
    /// True while a backoff delay holds accepting back (tests watch it).
    var isBackingOff: Bool { backoffTimer != nil }

    /// Starts (or resumes) accepting.
    func start() {
        wanted = true
        arm()
    }

    /// Stops accepting until ``start()``; connections wait in the kernel's
    /// accept queue meanwhile.
    func pause() {
        wanted = false
        if accepting { loop.io.cancelArmed(loop.handlers.token(handlerID, kind: 1), fd: fd) }
    }

    private func arm() {
        guard wanted, !closing, !accepting, backoffTimer == nil, fd >= 0 else { return }
        accepting = true
        loop.io.submit(.acceptStream(fd: fd), token: loop.handlers.token(handlerID, kind: 1))
    }

    /// Stops accepting and closes the listening socket once the accept in
    /// flight has ended. Idempotent.
    func close() {
        guard !closing else { return }
        closing = true
        backoffTimer?.cancel()
        backoffTimer = nil
        if accepting { loop.io.cancelArmed(loop.handlers.token(handlerID, kind: 1), fd: fd) }
        finishIfIdle()
    }

    private func finishIfIdle() {
        guard closing, !accepting, fd >= 0 else { return }
        let listener = fd
        fd = -1
        loop.io.willClose(fd: listener)
        Glibc.close(listener)
        loop.handlers.unregister(handlerID)
        onClosed?()
        onClosed = nil
    }

    func loopClosing() { close() }

    func loopAbandoned() {
        closing = true
        accepting = false
        finishIfIdle()
    }

    func handleCompletion(kind: UInt8, result: Int32, flags: UInt32) {
        let more = flags & CompletionFlag.more != 0
        if !more { accepting = false }
        if result >= 0 {
            if closing || fd < 0 {
                Glibc.close(result)
            } else {
                if episodeLogged {
                    loop.logger.notice("Accepting again", metadata: ["listener": "\(label)"])
                }
                backoffDelay = Self.initialBackoff
                episodeLogged = false
                onAccepted(result)
            }
        } else if !closing, result != -ECANCELED {
            let error = -result
            if !Self.transient.contains(error) { backOff(Errno(error)) }
        }
        if closing {
            finishIfIdle()
        } else if !more {
            arm()
        }
    }

    /// Holds accepting back for the current delay, then doubles it.
    private func backOff(_ error: Errno) {
        if !episodeLogged {
            episodeLogged = true
            let level: Logger.Level = Self.exhaustion.contains(error.rawValue) ? .warning : .error
            var metadata: Logger.Metadata = ["listener": "\(label)", "errno": "\(error)", "delay": "\(backoffDelay)"]
            if error.rawValue == EMFILE {
                // The usual cause on a fresh machine: a shell's 1,024.
                metadata["hint"] = "the process's descriptor limit is \(DescriptorLimit.current) (hard limit \(DescriptorLimit.maximum)); DescriptorLimit.raiseToMaximum() or `ulimit -n` lifts it"
            }
            loop.logger.log(level: level, "accept failed; retrying with backoff", metadata: metadata)
        }
        let delay = backoffDelay
        backoffDelay = Swift.min(backoffDelay * 2, Self.maximumBackoff)
        backoffTimer = try? loop.callLater(delay) { [weak self] in
            guard let self else { return }
            backoffTimer = nil
            arm()
        }
    }
}
