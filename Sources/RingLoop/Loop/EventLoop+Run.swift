import CUring
import Glibc
import Synchronization

extension EventLoop {
    // MARK: Running

    /// Runs until ``stop()`` is called: asyncio's `run_forever`.
    ///
    /// `stop()` called before this runs exactly one iteration.
    ///
    /// - Throws: ``EventLoopError/alreadyRunning``,
    ///   ``EventLoopError/anotherLoopRunning``, ``EventLoopError/closed(operation:)``,
    ///   ``EventLoopError/boundToAnotherThread``.
    public func runForever() throws(EventLoopError) {
        try enterRun("runForever")
        defer { exitRun() }
        while true {
            runOnce()
            if stopping { break }
        }
        stopping = false
    }

    /// Runs `operation` as a task on this loop and returns its result:
    /// asyncio's `run_until_complete`.
    ///
    /// ```swift
    /// let loop = try EventLoop()
    /// let answer = try loop.runUntilComplete { 42 }
    /// try loop.close()
    /// ```
    ///
    /// - Throws: the operation's error;
    ///   ``EventLoopError/stoppedBeforeCompletion`` if ``stop()`` ended the run
    ///   first (the task stays pending); the errors of ``runForever()``.
    public func runUntilComplete<T: Sendable>(
        _ operation: sending @escaping () async throws -> T
    ) throws -> T {
        try checkCanRun("runUntilComplete")
        let box = RunUntilCompleteBox<T>()
        spawn(name: "runUntilComplete") { [self] in
            let result: Result<T, any Error>
            do { result = .success(try await operation()) } catch { result = .failure(error) }
            box.result = result
            // Like asyncio removing its done-callback: a later run of this loop
            // must not be stopped by a task an earlier run gave up on.
            if box.waiting { stop() }
        }
        box.waiting = true
        defer { box.waiting = false }
        try runForever()
        guard let result = box.result else { throw EventLoopError.stoppedBeforeCompletion }
        return try result.get()
    }

    /// Asks the loop to stop after the current iteration. Safe from any thread.
    /// Before `runForever`, it makes the next run do exactly one iteration.
    public func stop() {
        onLoopThread { [self] in stopping = true }
    }

    private func checkCanRun(_ operation: String) throws(EventLoopError) {
        if closedFlag.load(ordering: .relaxed) { throw .closed(operation: operation) }
        if isRunning { throw .alreadyRunning }
        if CurrentLoop.loop != nil { throw .anotherLoopRunning }
    }

    private func enterRun(_ operation: String) throws(EventLoopError) {
        try checkCanRun(operation)
        try io.attach()
        guard ownerThread.compareExchange(expected: 0, desired: UInt(pthread_self()), ordering: .acquiringAndReleasing).exchanged
        else { throw .alreadyRunning }
        CurrentLoop.loop = self
    }

    private func exitRun() {
        CurrentLoop.loop = nil
        ownerThread.store(0, ordering: .releasing)
    }

    // MARK: One iteration

    /// One turn of the loop, in asyncio's order:
    /// 1. run the ready items that were queued when the iteration began;
    /// 2. poll the backend (timeout 0 if anything is ready, the time to the
    ///    next live timer otherwise, unbounded if nothing is scheduled) and
    ///    resume the continuations of completed operations;
    /// 3. move due timers to the ready queue;
    /// 4. route errors that callbacks threw to the exception handler.
    /// The caller then checks for `stop()`.
    func runOnce() {
        iterations &+= 1
        // 1. Ready items, including what other threads sent since last time.
        if inbox.mayHaveItems { drainInbox() }
        let count = ready.count
        for _ in 0..<count {
            run(ready.removeFirst())
        }

        // 2. Poll. First the bytes transports queued during this iteration:
        // one send per connection, submitted with this poll's enter.
        if !flushList.isEmpty { flushTransports() }
        // Receives that ran out of buffers resume as soon as buffers are back
        // (whatever gave them back: a callback, a task reading a stream).
        if !buffersWaiters.isEmpty { rearmBufferWaiters() }
        var timeout: Int64? = nil
        var now: UInt64 = 0
        if !ready.isEmpty || stopping || inbox.mayHaveItems {
            timeout = 0
        } else {
            timers.compactIfNeeded()
            if let deadline = timers.nextDeadline() {
                now = cu_monotonic_ns()
                timeout = deadline > now ? Int64(clamping: deadline - now) : 0
            }
        }
        if let pollObserver { pollObserver(timeout.map { .nanoseconds($0) }) }
        ioCheckBudget -= 1 + count
        let force = ioCheckBudget <= 0
        if force { ioCheckBudget = Self.ioCheckInterval }
        var parked = false
        if timeout != 0 {
            if inbox.park() { parked = true } else { timeout = 0 }
        }
        // A non-blocking, unforced poll with nothing to hand the kernel has
        // nothing to learn either (completions need an enter under
        // DEFER_TASKRUN; epoll needs epoll_wait): skip it entirely.
        if timeout != 0 || force || io.hasPendingWork {
            io.poll(timeout: timeout, force: force, expected: receivesThisPoll, into: &completions)
        }
        if parked { inbox.unpark() }
        if !completions.isEmpty { deliverCompletions() }

        // 3. Due timers.
        if !timers.isEmpty {
            now = cu_monotonic_ns()
            while let action = timers.popDue(now: now) {
                switch action {
                case .callback(let callback, let when): ready.append(.timer(callback, when))
                case .resume(let continuation): continuation.resume()
                case .job(let job, let actor): ready.append(actor ? .actorJob(job) : .job(job))
                }
            }
        }

        // 4. Errors raised by callbacks.
        if !pendingExceptions.isEmpty {
            let contexts = pendingExceptions
            pendingExceptions.removeAll(keepingCapacity: true)
            for context in contexts { callExceptionHandler(context) }
        }
    }

    private func drainInbox() {
        inbox.drain(into: &inboxBuffer)
        while let item = inboxBuffer.popFirst() {
            switch item {
            case .callback(let callback): ready.append(.callback(callback))
            case .job(let job): ready.append(.job(job))
            case .actorJob(let job): ready.append(.actorJob(job))
            }
        }
    }

    @inline(__always)
    private func run(_ item: ReadyItem) {
        if debug {
            runTimed(item)
            return
        }
        switch item {
        case .job(let job):
            jobsRun &+= 1
            job.runSynchronously(on: unownedTaskExecutor)
        case .actorJob(let job):
            jobsRun &+= 1
            job.runSynchronously(on: unownedSerialExecutor)
        case .callback(let callback):
            do { try callback() } catch { report(error, from: .callback(nil)) }
        case .tracedCallback(let callback, let site):
            do { try callback() } catch { report(error, from: .callback(site)) }
        case .timer(let callback, let when):
            do { try callback() } catch { report(error, from: .timer(when: when)) }
        }
    }

    /// Debug mode: run `item` and warn when it took longer than
    /// ``slowCallbackDuration``.
    private func runTimed(_ item: ReadyItem) {
        let start = cu_monotonic_ns()
        let what: String
        switch item {
        case .job(let job):
            what = "task step (priority \(job.priority.rawValue))"
            jobsRun &+= 1
            job.runSynchronously(on: unownedTaskExecutor)
        case .actorJob(let job):
            what = "actor job (priority \(job.priority.rawValue))"
            jobsRun &+= 1
            job.runSynchronously(on: unownedSerialExecutor)
        case .callback(let callback):
            what = "callback"
            do { try callback() } catch { report(error, from: .callback(nil)) }
        case .tracedCallback(let callback, let site):
            what = "callback scheduled at \(site)"
            do { try callback() } catch { report(error, from: .callback(site)) }
        case .timer(let callback, let when):
            what = "timer callback due at \(when)"
            do { try callback() } catch { report(error, from: .timer(when: when)) }
        }
        let elapsed = Duration.nanoseconds(Int64(clamping: cu_monotonic_ns() - start))
        if elapsed >= slowCallbackDuration {
            let seconds = Double(elapsed.clampedNanoseconds) / 1e9
            logger.warning("Executing \(what) took \(String(format3: seconds)) seconds",
                           metadata: ["slowCallbackDuration": "\(slowCallbackDuration)"])
        }
    }

    private func report(_ error: any Error, from source: ExceptionContext.Source) {
        pendingExceptions.append(ExceptionContext(message: "Unhandled error in \(source)", error: error, source: source))
    }

    // MARK: Closing

    /// Closes the loop: drains every in-flight operation, shuts down the
    /// thread pool it owns, and releases the backend. Idempotent.
    ///
    /// Pending callbacks are dropped, as in asyncio. Operations still in flight
    /// are cancelled and their tasks resumed with their final result first.
    ///
    /// - Throws: ``EventLoopError/closeWhileRunning`` on a running loop.
    public func close() throws(EventLoopError) {
        if isRunning { throw .closeWhileRunning }
        if closedFlag.load(ordering: .relaxed) { return }
        teardown()
    }

    /// Tears down in an order that never frees memory the kernel may still
    /// write: cancel and reap every operation, let resumed tasks unwind, then
    /// close the backend and the pool.
    func teardown() {
        closedFlag.store(true, ordering: .releasing)
        let canDrain = io.canSubmitFromCurrentThread || operations.inFlight == 0
        // Act as the loop thread while draining, so resumed tasks enqueue
        // directly and operations they start fail cleanly as "closed".
        let previousOwner = ownerThread.exchange(UInt(pthread_self()), ordering: .acquiringAndReleasing)
        defer { ownerThread.store(previousOwner, ordering: .releasing) }

        if canDrain {
            // Transports, servers and listeners stop and cancel what they
            // have in flight; their final completions end their registrations.
            for handler in handlers.all { handler.loopClosing() }
            cancelOperations()
            // Sleepers are woken with CancellationError so their tasks can finish.
            for action in timers.removeAll() {
                if case .resume(let continuation) = action { continuation.resume(throwing: CancellationError()) }
                if case .job(let job, let actor) = action { ready.append(actor ? .actorJob(job) : .job(job)) }
            }
            var rounds = 0
            while operations.inFlight > 0 || handlers.count > 0 || !ready.isEmpty, rounds < 2_000 {
                rounds += 1
                while let item = ready.popFirst() { run(item) }
                if !flushList.isEmpty { flushTransports() }
                let busy = operations.inFlight > 0 || handlers.count > 0
                io.poll(timeout: busy ? 1_000_000 : 0, force: true, into: &completions)
                deliverCompletions()
                cancelOperations()
                for handler in handlers.all { handler.loopClosing() }
            }
        }
        for item in inbox.close() {
            if case .job(let job) = item { ready.append(.job(job)) }
            if case .actorJob(let job) = item { ready.append(.actorJob(job)) }
        }
        // Bounded, so a task that keeps rescheduling itself cannot hang close();
        // whatever is left after that is dropped, as asyncio drops pending tasks.
        var budget = 100_000
        while budget > 0, let item = ready.popFirst() {
            run(item)
            budget -= 1
        }
        if !ready.isEmpty {
            logger.warning("Closing with \(ready.count) task steps still queued; they are dropped")
        }
        if operations.inFlight > 0 || handlers.count > 0 {
            // The kernel may still write into the slots' memory: keep it forever.
            logger.warning("Closing with \(operations.inFlight + handlers.count) operations still in flight; their memory is kept alive")
            LeakedForSafety.keep(operations)
            LeakedForSafety.keep(blocks)
        }
        io.close()
        if ownsThreadPool { threadPool.shutdown() }
        _ = timers.removeAll()
        ready.removeAll()
    }

    // MARK: asyncio.run

    /// Runs `main` on a new loop and closes it: asyncio's `asyncio.run`.
    ///
    /// Makes a loop, runs `main` as a task on it, then cancels the tasks
    /// started with ``spawn(name:_:)`` that are still pending and waits for
    /// them, shuts down the thread pool, and closes the loop.
    ///
    /// ```swift
    /// try EventLoop.run {
    ///     print("Hello")
    ///     try await EventLoop.sleep(for: .seconds(1))
    ///     print("World")
    /// }
    /// ```
    ///
    /// - Throws: ``EventLoopError/runInsideRunningLoop`` from a running loop's
    ///   thread, the loop's set-up errors, or `main`'s error.
    public static func run<T: Sendable>(
        backend: Backend? = nil,
        debug: Bool? = nil,
        _ main: sending @escaping () async throws -> T
    ) throws -> T {
        if CurrentLoop.loop != nil { throw EventLoopError.runInsideRunningLoop }
        let loop = try EventLoop(backend: backend, debug: debug)
        let outcome: Result<T, any Error>
        do { outcome = .success(try loop.runUntilComplete(main)) } catch { outcome = .failure(error) }
        loop.cancelPendingTasks()
        try? loop.close()
        return try outcome.get()
    }

    /// Cancels every spawned task still pending and runs the loop until all
    /// of them have finished.
    func cancelPendingTasks() {
        let pending = tasks.withLock { $0.all }
        guard !pending.isEmpty else { return }
        for task in pending { task.cancel() }
        _ = try? runUntilComplete {
            for task in pending { await task.wait() }
        }
    }
}

/// Holds what `runUntilComplete` hands between its task and its caller; both
/// touch it on the loop thread only.
final class RunUntilCompleteBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
    var waiting = false
}

/// Objects whose memory the kernel may still write into after a forced close.
enum LeakedForSafety {
    private static let kept = Locked<[AnyObject]>([])
    static func keep(_ object: AnyObject) { kept.withLock { $0.append(object) } }
}

extension String {
    /// Three decimals, without Foundation.
    init(format3 value: Double) {
        let scaled = (value * 1000).rounded()
        let whole = Int(scaled) / 1000
        let fraction = abs(Int(scaled) % 1000)
        self = "\(whole)." + String(repeating: "0", count: 3 - String(fraction).count) + String(fraction)
    }
}
