import Glibc
import Synchronization

/// N event loops on N threads, thread per core: the shape of SwiftNIO's
/// `MultiThreadedEventLoopGroup`, monoio and glommio.
///
/// Loops share nothing on the hot path. A server on a group binds one
/// `SO_REUSEPORT` listener per loop, so the kernel spreads connections over
/// the loops and each connection lives its whole life on the loop that
/// accepted it.
///
/// ```swift
/// let group = try LoopGroup(threads: 4)
/// let servers = try await group.onEach { loop in
///     try await loop.serve(host: "0.0.0.0", port: 8080, reusePort: true) { stream in
///         try await handle(stream)
///     }
/// }
/// // ...
/// group.shutdown()
/// ```
///
/// Every loop of a group uses the same backend: `.auto` is resolved once, by
/// the first loop, and the others are made with what it chose.
///
/// Each loop has a thread pool of its own (for ``EventLoop/offload(_:)``
/// and, on epoll, file I/O) with its share of the cores: cores / N threads,
/// at least one. A group then starts about as many pool threads as the
/// machine has cores, however many loops it runs, where N loops with a
/// thread per core each would start N × cores.
///
/// Keep the group for as long as its loops are in use: a group that is
/// dropped shuts down, as if ``shutdown()`` had been called.
public final class LoopGroup: Sendable {
    /// The group's loops, in the order ``next()`` hands them out.
    public let loops: [EventLoop]
    private let threads: Mutex<[pthread_t]>
    private let counter = Atomic<UInt>(0)

    /// Starts `threads` loops, each running on a thread of its own until
    /// ``shutdown()``. The threads are named `RingLoop-0`, `RingLoop-1`, …
    /// in the order of ``loops``, as `top -H` and debuggers show them.
    ///
    /// - Throws: ``EventLoopError/invalidArgument(_:)`` for fewer than one
    ///   thread; ``EventLoopError/threadStartFailed(purpose:errno:)`` when a
    ///   loop's thread cannot start; the loops' set-up errors.
    public init(threads count: Int = ThreadPool.defaultThreadCount, backend: Backend? = nil) throws(EventLoopError) {
        guard count >= 1 else { throw .invalidArgument("a LoopGroup needs at least one thread, got \(count)") }
        let poolThreads = max(1, ThreadPool.defaultThreadCount / count)
        let first = try EventLoop(backend: backend, poolThreads: poolThreads)
        var loops = [first]
        do {
            for _ in 1..<count { loops.append(try EventLoop(backend: first.backend, poolThreads: poolThreads)) }
        } catch {
            for loop in loops { try? loop.close() }
            throw error
        }
        self.loops = loops
        var started: [pthread_t] = []
        for (index, loop) in loops.enumerated() {
            do {
                started.append(try NativeThread.start(name: "RingLoop-\(index)") {
                    // Runs until shutdown() stops it; closes on its own thread,
                    // the ring's issuer, so teardown can drain.
                    try? loop.runForever()
                    try? loop.close()
                })
            } catch {
                // The loops that run stop and close on their own threads. The
                // rest never ran: they close here, where a queued stop() would
                // hold its loop forever (the closure keeps the loop that keeps it).
                Self.stop(loops[..<started.count], joining: started)
                for idle in loops[started.count...] { try? idle.close() }
                throw .threadStartFailed(purpose: "loop \(index) of the group", errno: error)
            }
        }
        threads = Mutex(started)
    }

    /// The next loop, round-robin.
    public func next() -> EventLoop {
        loops[Int(counter.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(loops.count))]
    }

    /// Runs `body` as a task on every loop at once and returns the results in
    /// loop order; the first error is thrown once all have finished.
    public func onEach<T: Sendable>(_ body: @escaping @Sendable (EventLoop) async throws -> T) async throws -> [T] {
        try await withThrowingTaskGroup(of: (Int, T).self) { group in
            for (index, loop) in loops.enumerated() {
                group.addTask { (index, try await loop.submit { try await body(loop) }) }
            }
            var results = [T?](repeating: nil, count: loops.count)
            for try await (index, value) in group { results[index] = value }
            return results.map { $0! }
        }
    }

    /// Stops every loop and waits for its thread: each loop closes on its own
    /// thread (spawned tasks cancelled, connections aborted). Idempotent and
    /// safe from any thread. Called from one of the group's own loops, it
    /// waits for the others; that loop stops once the current callback or
    /// task step returns, and its thread is detached rather than joined.
    public func shutdown() {
        let threads = self.threads.withLock { threads in
            defer { threads = [] }
            return threads
        }
        Self.stop(loops, joining: threads)
    }

    /// Asks `loops` to stop and waits for `threads`, the threads running them.
    private static func stop(_ loops: some Sequence<EventLoop>, joining threads: [pthread_t]) {
        for loop in loops { try? loop.callSoonThreadsafe { loop.stop() } }
        let me = pthread_self()
        for thread in threads {
            // Joining the calling thread would fail with EDEADLK and leave the
            // thread's stack behind; detached, it frees itself when it ends.
            if pthread_equal(thread, me) != 0 { pthread_detach(thread) } else { pthread_join(thread, nil) }
        }
    }

    /// A group dropped without ``shutdown()`` shuts down: its threads would
    /// otherwise run, and hold their rings and descriptors, for the life of
    /// the process with nothing left to reach them.
    deinit { shutdown() }
}

extension EventLoop {
    /// Runs `operation` as a task on this loop from any thread or task and
    /// returns its result: asyncio's `run_coroutine_threadsafe`. Cancelling
    /// the caller does not cancel the operation.
    ///
    /// ```swift
    /// let count = try await loop.submit { server.connectionCount }
    /// ```
    ///
    /// - Throws: ``EventLoopError/closed(operation:)`` when the loop is
    ///   closed; whatever `operation` throws.
    public func submit<T: Sendable>(_ operation: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            do {
                try callSoonThreadsafe { [self] in
                    // Queued before close() and run by its drain: spawn would
                    // now drop the operation, and the continuation with it.
                    guard !isClosed else {
                        continuation.resume(throwing: EventLoopError.closed(operation: "submit"))
                        return
                    }
                    _ = spawn(name: "submitted") {
                        do { continuation.resume(returning: try await operation()) } catch { continuation.resume(throwing: error) }
                    }
                }
            } catch {
                continuation.resume(throwing: EventLoopError.closed(operation: "submit"))
            }
        }
    }
}
