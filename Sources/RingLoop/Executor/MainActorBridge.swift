import CUring
import Glibc

/// Runs the main actor's jobs on a loop that runs on the process's main
/// thread.
///
/// Why: top-level code (`main.swift`) is `@MainActor`, and so are its global
/// variables. On Linux the main actor's jobs go to libdispatch's main queue,
/// which only the main thread may drain, and `EventLoop.run` holds the main
/// thread for as long as the program runs. Without this, the first
/// `await MainActor.run { }`, `@MainActor` function or top-level variable
/// touched from the loop's tasks waits forever.
///
/// How: the way Foundation's `RunLoop` does it on Linux. libdispatch
/// signals an eventfd whenever the main queue gets work
/// (`_dispatch_get_main_queue_handle_4CF`), and the thread that owns the
/// queue drains it with `_dispatch_main_queue_callback_4CF`. The loop polls
/// that eventfd like any descriptor (a poll SQE on io_uring, readiness on
/// epoll) and drains the queue as a ready-queue callback: main-actor code
/// runs on the loop thread, between the loop's other callbacks, and may use
/// the loop's I/O directly. Nothing is paid per operation: one poll waits
/// while the main queue is empty.
///
/// The eventfd is libdispatch's, made once per process; it is never closed
/// here. The two functions are found in a dynamic build and in one that
/// links the Swift runtime statically (`--static-swift-stdlib`); where they
/// cannot be, the main actor stays unserved, as before, and each run on the
/// main thread says so at debug level.
final class MainActorBridge: CompletionHandler {
    private typealias HandleFunction = @convention(c) () -> Int32
    private typealias DrainFunction = @convention(c) (UnsafeMutableRawPointer?) -> Void

    /// libdispatch's run-loop hooks, found once: linked in a static build
    /// (CUring.h declares them weak), else looked up in the libdispatch the
    /// Swift runtime loaded (dlsym with RTLD_DEFAULT).
    private static let hooks: (handle: HandleFunction, drain: DrainFunction)? = {
        guard let handle = cu_dispatch_main_queue_handle_function() ?? dlsym(nil, "_dispatch_get_main_queue_handle_4CF"),
              let drain = cu_dispatch_main_queue_drain_function() ?? dlsym(nil, "_dispatch_main_queue_callback_4CF")
        else { return nil }
        return (unsafeBitCast(handle, to: HandleFunction.self), unsafeBitCast(drain, to: DrainFunction.self))
    }()

    /// Not retained: the loop holds the bridge (its handler table does), and
    /// a loop dropped without `close()` must still reach its deinit, whose
    /// teardown calls ``loopClosing()`` while the loop is being destroyed,
    /// when a checked `unowned` reference would trap. The loop's memory is
    /// valid for as long as the bridge can be called: only the loop calls it.
    private unowned(unsafe) let loop: EventLoop
    private let fd: Int32
    /// Drains the main queue; queued once per wake-up, made once.
    private let drainCallback: () throws -> Void
    private var handlerID = HandlerID(slot: 0, generation: 0)
    private var polling = false
    private var closing = false

    /// The bridge for `loop`, when the calling thread is the process's main
    /// thread (the one libdispatch bound the main queue to) and libdispatch
    /// offers its hooks; nil otherwise.
    static func make(for loop: EventLoop) -> MainActorBridge? {
        guard cu_gettid() == getpid() else { return nil }
        guard let hooks else {
            loop.logger.debug("The main actor is not served by this loop: libdispatch's main-queue hooks were not found")
            return nil
        }
        let fd = hooks.handle()
        guard fd >= 0 else { return nil }
        return MainActorBridge(loop: loop, fd: fd, drain: hooks.drain)
    }

    private init(loop: EventLoop, fd: Int32, drain: @escaping DrainFunction) {
        self.loop = loop
        self.fd = fd
        // A loop closed from another thread runs what is left in its ready
        // queue there, where a drain would be a libdispatch crash: the
        // signal is put back for whichever loop serves the main thread next.
        drainCallback = {
            if cu_gettid() == getpid() {
                drain(nil)
            } else {
                var one: UInt64 = 1
                _ = Glibc.write(fd, &one, MemoryLayout<UInt64>.size)
            }
        }
        handlerID = loop.handlers.register(self)
        arm()
    }

    private func arm() {
        guard !polling, !closing else { return }
        polling = true
        loop.io.submit(.poll(fd: fd, events: UInt32(POLLIN)), token: loop.handlers.token(handlerID, kind: 0))
    }

    func handleCompletion(kind: UInt8, result: Int32, flags: UInt32) {
        polling = false
        if closing {
            finish()
            return
        }
        guard result >= 0 else {
            // Not expected of an eventfd; re-arming could spin on it.
            loop.logger.error("The main actor is no longer served by this loop: its poll failed with \(Errno(result))")
            closing = true
            finish()
            return
        }
        // Cleared before the drain: work queued during it signals anew.
        var count: UInt64 = 0
        _ = Glibc.read(fd, &count, MemoryLayout<UInt64>.size)
        // From the ready queue, as any callback: the jobs run outside
        // completion processing, and as steps of no loop task.
        loop.ready.append(.callback(drainCallback))
        arm()
    }

    func loopClosing() {
        guard !closing else { return }
        closing = true
        if polling {
            loop.io.cancel(loop.handlers.token(handlerID, kind: 0))
        } else {
            finish()
        }
    }

    func loopAbandoned() {
        closing = true
        polling = false
        finish()
    }

    /// Called with no poll in flight: its completion would find the
    /// registration gone.
    private func finish() {
        loop.io.unwatch(fd: fd)
        loop.handlers.unregister(handlerID)
    }
}
