import CUring
import Glibc

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
}
