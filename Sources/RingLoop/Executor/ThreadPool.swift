import Glibc
import Synchronization

/// A fixed set of threads for blocking or CPU-bound work: the pool behind
/// ``EventLoop/offload(_:)`` and the epoll backend's file I/O.
///
/// Work items run in FIFO order. An item cancelled before a worker picks it up
/// never runs. ``shutdown()`` lets queued work finish, then joins the threads.
///
/// ```swift
/// let pool = try ThreadPool(threads: 4)
/// pool.submit { print("on a worker") }
/// pool.shutdown()
/// ```
public final class ThreadPool: @unchecked Sendable {
    /// One queued unit of work. `tryStart()` and `cancel()` race through one
    /// atomic, so exactly one of "runs" and "is cancelled" happens.
    final class WorkItem: @unchecked Sendable {
        private static let pending: UInt8 = 0, started: UInt8 = 1, cancelled: UInt8 = 2
        private let state = Atomic<UInt8>(0)
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }

        func tryStart() -> Bool {
            state.compareExchange(expected: Self.pending, desired: Self.started, ordering: .acquiringAndReleasing).exchanged
        }
        /// True when the item had not started and now never will.
        func cancel() -> Bool {
            state.compareExchange(expected: Self.pending, desired: Self.cancelled, ordering: .acquiringAndReleasing).exchanged
        }
    }

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>
    // Guarded by `mutex`.
    private var queue: [WorkItem] = []
    private var head = 0
    private var stopping = false
    private var threads: [pthread_t] = []
    /// Number of worker threads.
    public private(set) var threadCount = 0

    /// Starts `threads` workers (default: one per online core; fewer than one
    /// means one, since a pool without a worker would never run its work),
    /// each called `name` (the first 15 bytes: what `top -H` shows).
    ///
    /// - Throws: ``Errno`` when not even one thread could be created.
    public init(threads: Int = ThreadPool.defaultThreadCount, name: String = "RingLoop-pool") throws(Errno) {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
        condition = .allocate(capacity: 1)
        pthread_cond_init(condition, nil)
        for index in 0..<max(1, threads) {
            do throws(Errno) {
                self.threads.append(try NativeThread.start(name: name) { [self] in workerLoop() })
            } catch {
                if index == 0 { throw error }
                break
            }
        }
        threadCount = self.threads.count
    }

    /// The number of online cores.
    public static var defaultThreadCount: Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    /// Queues `body`. Returns false after ``shutdown()``, when nothing will run it.
    @discardableResult
    public func submit(_ body: @escaping @Sendable () -> Void) -> Bool {
        submit(WorkItem(body))
    }

    @discardableResult
    func submit(_ item: WorkItem) -> Bool {
        pthread_mutex_lock(mutex)
        guard !stopping else {
            pthread_mutex_unlock(mutex)
            return false
        }
        queue.append(item)
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
        return true
    }

    private func next() -> WorkItem? {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while head == queue.count {
            if stopping { return nil }
            pthread_cond_wait(condition, mutex)
        }
        let item = queue[head]
        head += 1
        if head == queue.count || head > 1024 {
            queue.removeFirst(head)
            head = 0
        }
        return item
    }

    private func workerLoop() {
        // A write to a pipe whose reader is gone must fail with EPIPE here,
        // not raise SIGPIPE and end the process (see ProcessGuards).
        _ = ProcessGuards.blockSIGPIPE()
        while let item = next() {
            if item.tryStart() { item.body() }
        }
    }

    /// Runs the queued work, then stops and joins every worker. Idempotent.
    /// Must not be called from a worker thread.
    public func shutdown() {
        pthread_mutex_lock(mutex)
        let joinable = stopping ? [] : threads
        stopping = true
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
        for thread in joinable { pthread_join(thread, nil) }
    }
}
