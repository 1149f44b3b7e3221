import CUring
import Glibc
import Synchronization

/// Starts joinable POSIX threads for the pool's workers and a group's loops
/// (the library does not depend on Foundation's `Thread`).
enum NativeThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    /// Starts `body` on a new joinable thread called `name` (cut to the 15
    /// bytes Linux keeps), so `top -H`, `perf` and gdb tell the threads apart;
    /// unnamed, a thread would inherit its creator's name, often one of
    /// Swift's `com.apple.root.default-qos` threads.
    static func start(name: String, _ body: @escaping @Sendable () -> Void) throws(Errno) -> pthread_t {
        let injected = failNextStart.withLock { named -> Bool in
            guard named == name else { return false }
            named = nil
            return true
        }
        if injected { throw Errno(EAGAIN) }
        let box = Unmanaged.passRetained(Body {
            _ = cu_set_thread_name(name)   // the kernel cuts it to 15 bytes
            body()
        })
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        guard rc == 0 else {
            box.release()
            throw Errno(rc)
        }
        return thread
    }

    /// Test hook: the next start of a thread with this name fails with
    /// EAGAIN, as `pthread_create` does when the process is out of threads
    /// (which a test run as root cannot arrange with `RLIMIT_NPROC`).
    static let failNextStart = Mutex<String?>(nil)
}
