import Glibc
import Synchronization

/// Process-wide facts a loop checks cheaply.
enum ProcessGuards {
    /// Incremented in every child right after `fork()`. A loop remembers the
    /// value it was made under; a different value means the loop belongs to
    /// the parent, whose ring or epoll set the child shares, and using it
    /// would corrupt the parent's queues or steal its events. Checked with
    /// one relaxed load (a `getpid()` syscall per operation would cost more).
    static let forkGeneration = Atomic<UInt32>(0)

    private static let installed: Bool = {
        pthread_atfork(nil, nil) { ProcessGuards.forkGeneration.add(1, ordering: .relaxed) }
        return true
    }()

    /// The current generation, installing the fork handler on first use.
    static var generation: UInt32 {
        _ = installed
        return forkGeneration.load(ordering: .relaxed)
    }

    /// SIGPIPE alone.
    private static var sigpipe: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGPIPE)
        return set
    }

    /// Blocks SIGPIPE on the calling thread and returns the previous mask.
    ///
    /// A write to a pipe or FIFO whose reader is gone raises SIGPIPE in the
    /// writing thread, whose default action ends the process. Sockets avoid
    /// it with MSG_NOSIGNAL; pipes have no such flag. So the loop thread and
    /// the pool threads block it: the write fails with EPIPE (an `IOError`
    /// `.brokenPipe`) and the signal stays pending on the thread, harmless,
    /// until ``restore(_:)`` discards it. io_uring's own workers block every
    /// signal already. The process's signal dispositions are never touched.
    static func blockSIGPIPE() -> sigset_t {
        var set = sigpipe
        var previous = sigset_t()
        pthread_sigmask(SIG_BLOCK, &set, &previous)
        return previous
    }

    /// Discards a SIGPIPE left pending on this thread, then restores `mask`.
    static func restore(_ mask: sigset_t) {
        var set = sigpipe
        var pending = sigset_t()
        sigpending(&pending)
        if sigismember(&pending, SIGPIPE) == 1 {
            var zero = timespec()
            _ = sigtimedwait(&set, nil, &zero)
        }
        var mask = mask
        pthread_sigmask(SIG_SETMASK, &mask, nil)
    }
}
