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
        if forkGeneration != ProcessGuards.generation { throw .usedAfterFork(operation: operation) }
        if isRunning { throw .alreadyRunning }
        if CurrentLoop.loop != nil { throw .anotherLoopRunning }
    }

    private func enterRun(_ operation: String) throws(EventLoopError) {
        try checkCanRun(operation)
        try runStateLock.withLock { (_: inout Void) throws(EventLoopError) in
            try io.attach()
            guard ownerThread.compareExchange(expected: 0, desired: UInt(pthread_self()), ordering: .acquiringAndReleasing).exchanged
            else { throw .alreadyRunning }
        }
        CurrentLoop.loop = self
        savedSignalMask = ProcessGuards.blockSIGPIPE()
        if mainActorBridge == nil { mainActorBridge = MainActorBridge.make(for: self) }
    }

    private func exitRun() {
        ProcessGuards.restore(savedSignalMask)
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
                // io_uring's wait has no timer slack: add the loop's, so a
                // wake-up serves every deadline within it (epoll's kernel
                // wait already has this slack).
                if timeout! > 0, case .uring = io { timeout! += timerSlackNanoseconds }
            }
        }
        ioCheckBudget -= 1 + count
        let force = ioCheckBudget <= 0
        if force { ioCheckBudget = Self.ioCheckInterval }
        // Send and receive blocks a busy moment left free go back to malloc
        // once unused for a period; a sleeping loop wakes to return them.
        if blocks.hasSurplus, timeout != 0 || force {
            let wait = blocks.trim(now: now != 0 ? now : cu_monotonic_ns())
            if timeout != 0, let wait { timeout = Swift.min(timeout ?? .max, Int64(clamping: wait)) }
        }
        let expected = bulkReceiveThisPoll ? 1 : receivesThisPoll
        if let pollObserver { pollObserver(timeout.map { .nanoseconds($0) }, expected) }
        var parked = false
        if timeout != 0 {
            if inbox.park() { parked = true } else { timeout = 0 }
        }
        // A non-blocking, unforced poll with nothing to hand the kernel has
        // nothing to learn either (completions need an enter under
        // DEFER_TASKRUN; epoll needs epoll_wait): skip it entirely.
        if timeout != 0 || force || io.hasPendingWork {
            io.poll(timeout: timeout, force: force, expected: expected, into: &completions)
        }
        if parked { inbox.unpark() }
        if !completions.isEmpty { deliverCompletions() }

        // 3. Due timers.
        if !timers.isEmpty {
            now = cu_monotonic_ns()
            while let action = timers.popDue(now: now) {
                switch action {
                case .callback(let callback, let handle): ready.append(.timer(callback, handle))
                case .resume(let continuation): continuation.resume()
                case .job(let item): ready.append(item)
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

    func drainInbox() {
        inbox.drain(into: &inboxBuffer)
        while let item = inboxBuffer.popFirst() { ready.append(item.readyItem) }
    }

    @inline(__always)
    private func run(_ item: ReadyItem) {
        if debug {
            runTimed(item)
            return
        }
        switch item {
        case .job(let job, let record):
            runJob(job, record: record)
        case .actorJob(let job):
            runJob(job, record: nil, actor: true)
        case .callback(let callback):
            do { try callback() } catch { report(error, from: .callback(nil)) }
        case .tracedCallback(let callback, let site):
            do { try callback() } catch { report(error, from: .callback(site)) }
        case .timer(let callback, let handle):
            if handle.isCancelled { return }
            do { try callback() } catch { report(error, from: .timer(when: handle.when)) }
        case .connectionLost(let transport):
            transport.reportLost()
        }
    }

    /// Runs a Swift job: a step of a task (on its spawn record's executor
    /// when the loop spawned it), or with `actor` a job of an actor on the
    /// loop (isolated to the serial executor). Notes whose step it is while
    /// it runs (``runningJob``, ``runningRecord``): how a wait finds its
    /// task's cancellation route. An actor's job takes none: its waits
    /// install their own cancellation handler.
    @inline(__always)
    private func runJob(_ job: UnownedJob, record: SpawnRecord?, actor: Bool = false) {
        jobsRun &+= 1
        let outer = (runningJob, runningRecord)
        (runningJob, runningRecord) = actor ? (0, nil) : (job.identity, record)
        if actor {
            job.runSynchronously(on: unownedSerialExecutor)
        } else {
            job.runSynchronously(on: record?.asUnownedTaskExecutor() ?? unownedTaskExecutor)
        }
        (runningJob, runningRecord) = outer
    }

    /// Debug mode: run `item` and warn when it took longer than
    /// ``slowCallbackDuration``.
    private func runTimed(_ item: ReadyItem) {
        let start = cu_monotonic_ns()
        let what: String
        switch item {
        case .job(let job, let record):
            what = "task step (priority \(job.priority.rawValue))"
            runJob(job, record: record)
        case .actorJob(let job):
            what = "actor job (priority \(job.priority.rawValue))"
            runJob(job, record: nil, actor: true)
        case .callback(let callback):
            what = "callback"
            do { try callback() } catch { report(error, from: .callback(nil)) }
        case .tracedCallback(let callback, let site):
            what = "callback scheduled at \(site)"
            do { try callback() } catch { report(error, from: .callback(site)) }
        case .timer(let callback, let handle):
            if handle.isCancelled { return }
            what = "timer callback due at \(handle.when)"
            do { try callback() } catch { report(error, from: .timer(when: handle.when)) }
        case .connectionLost(let transport):
            what = "connectionLost"
            transport.reportLost()
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
    /// write, never leaks a descriptor, and leaves no awaiter hanging:
    ///
    /// 1. spawned tasks still pending are cancelled (their `Task.sleep` and
    ///    I/O end with `CancellationError`);
    /// 2. transports, servers and listeners abort, operations in flight are
    ///    cancelled, sleeping tasks are woken with `CancellationError`;
    /// 3. the loop keeps polling until every final completion has arrived and
    ///    every resumed task has unwound (bounded);
    /// 4. the thread pools the loop owns are joined, so offloaded work finishes
    ///    and resumes its tasks through the still-open inbox;
    /// 5. everything in the inbox runs, callbacks included (a descriptor
    ///    released on another thread is closed there);
    /// 6. the inbox and the backend close. A task's job that arrives after
    ///    that runs on Swift's global executor, an actor's job (an actor whose
    ///    executor is this loop) on a thread of its own, one job at a time so
    ///    the actor stays isolated; their loop calls fail with `.closed`.
    ///
    /// Closing from a thread that may not submit to the ring (another thread
    /// than the one that ran a SINGLE_ISSUER loop) cannot reap anything: every
    /// awaiting task is resumed at once with `-ECANCELED`, every transport is
    /// closed without waiting, and the memory the kernel might still write is
    /// kept for the life of the process.
    func teardown() {
        closedFlag.store(true, ordering: .releasing)
        let canDrain = io.canSubmitFromCurrentThread || (operations.inFlight == 0 && handlers.count == 0)
        // Act as the loop thread while draining, so resumed tasks enqueue
        // directly and operations they start fail cleanly as "closed".
        let previousOwner = ownerThread.exchange(UInt(pthread_self()), ordering: .acquiringAndReleasing)
        defer { ownerThread.store(previousOwner, ordering: .releasing) }

        // Dispositions come back first: a signal during teardown gets its old action.
        signalWatcher?.shutdown()
        for task in tasks.withLock({ $0.all }) { task.cancel() }
        for handler in handlers.all { handler.loopClosing() }
        cancelOperations()
        for action in timers.removeAll() {
            switch action {
            case .resume(let continuation): continuation.resume(throwing: CancellationError())
            case .job(let item): ready.append(item)
            case .callback: break
            }
        }
        if canDrain {
            var rounds = 0
            while operations.inFlight > 0 || handlers.count > 0 || !ready.isEmpty || inbox.mayHaveItems, rounds < 2_000 {
                rounds += 1
                if inbox.mayHaveItems { drainInbox() }
                while let item = ready.popFirst() { run(item) }
                if !flushList.isEmpty { flushTransports() }
                let busy = operations.inFlight > 0 || handlers.count > 0
                io.poll(timeout: busy ? 1_000_000 : 0, force: true, into: &completions)
                deliverCompletions()
                cancelOperations()
                for handler in handlers.all { handler.loopClosing() }
            }
        } else {
            abandonInFlight()
        }
        // Offloaded work finishes and resumes its tasks while the inbox is open.
        if ownsThreadPool { threadPool.shutdown() }
        resolverPool.withLock { pool in
            pool?.shutdown()
            pool = nil
        }
        // Bounded, so a task that keeps rescheduling itself cannot hang close();
        // whatever is left after that is handed off (see handOff).
        var budget = 100_000
        while budget > 0, inbox.mayHaveItems || !ready.isEmpty {
            if inbox.mayHaveItems { drainInbox() }
            while budget > 0, let item = ready.popFirst() {
                run(item)
                budget -= 1
            }
        }
        // Its reader has ended in the drain: close the pipe's read end now,
        // not whenever the reader task's last reference goes.
        signalWatcher?.readEnd.descriptor.closeIfIdle()
        signalWatcher = nil
        // Their tasks have ended; the callbacks may hold the loop.
        watches = [:]
        for item in inbox.close() { ready.append(item.readyItem) }
        if !ready.isEmpty {
            logger.warning("Closing with \(ready.count) task steps still queued; they continue off the loop")
            while let item = ready.popFirst() { handOff(item) }
        }
        if operations.inFlight > 0 || handlers.count > 0 {
            // The kernel may still write into the slots' memory: keep it forever.
            logger.warning("Closing with \(operations.inFlight + handlers.count) operations still in flight; their memory is kept alive")
            LeakedForSafety.keep(operations)
            LeakedForSafety.keep(blocks)
            LeakedForSafety.keep(handlers)
        }
        if !canDrain { io.abandon() } else { io.close() }
        _ = timers.removeAll()
    }

    /// The close of a loop whose ring this thread may not use: nothing can be
    /// cancelled or reaped, so awaiters are resumed now and handlers closed
    /// without their final completions.
    private func abandonInFlight() {
        for continuation in operations.abandonAll() { continuation.resume(returning: -ECANCELED) }
        for handler in handlers.all { handler.loopAbandoned() }
        var budget = 100_000
        while budget > 0, let item = ready.popFirst() {
            run(item)
            budget -= 1
        }
    }

    /// A job or callback that can no longer run on this loop: a task goes on
    /// on Swift's global executor, an actor's job to the closed loop's own
    /// serial queue (``OrphanedActorJobs``), so the actor stays isolated.
    func handOff(_ item: ReadyItem) {
        switch item {
        case .job(let job, _):
            globalConcurrentExecutor.enqueue(ExecutorJob(job))
        case .actorJob(let job):
            orphanedActorJobs.enqueue(job, executor: unownedSerialExecutor)
        case .callback, .tracedCallback, .timer, .connectionLost:
            break
        }
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
        // `main` was sent to this call, and runs exactly once, in its own task.
        nonisolated(unsafe) let body = main
        let interrupted = Locked(false)
        do {
            outcome = .success(try loop.runUntilComplete {
                let mainTask = loop.spawn(name: "main") { try await body() }
                let interruptible = loop.cancelOnInterrupt(mainTask, interrupted: interrupted)
                defer { if interruptible { loop.removeSignalHandler(SIGINT) } }
                return try await mainTask.value
            })
        } catch {
            outcome = .failure(error)
        }
        loop.cancelPendingTasks()
        try? loop.close()
        if interrupted.withLock({ $0 }) {
            // As an uncaught KeyboardInterrupt ends a Python program: by the
            // signal itself, once everything is cleaned up, so the shell sees
            // an interrupted program (status 130), not a crash report.
            fflush(nil)   // what the program printed is not lost with it
            signal(SIGINT, SIG_DFL)
            raise(SIGINT)
        }
        return try outcome.get()
    }

    /// asyncio's `Runner`: the first SIGINT cancels `task`, and restores the
    /// default action, so a second SIGINT ends the process. Only where SIGINT
    /// still has its default action: neither a handler the application set
    /// nor an inherited SIG_IGN (a non-interactive shell's background job)
    /// is replaced.
    /// Returns whether the handler was installed; `interrupted` is set when it fired.
    func cancelOnInterrupt<T>(_ task: LoopTask<T>, interrupted: Locked<Bool>) -> Bool {
        var current = sigaction()
        guard sigaction(SIGINT, nil, &current) == 0,
              current.__sigaction_handler.sa_handler == nil else { return false }  // SIG_DFL
        do {
            try addSignalHandler(SIGINT) { [self] in
                interrupted.withLock { $0 = true }
                task.cancel()
                removeSignalHandler(SIGINT)
            }
            return true
        } catch {
            return false
        }
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
///
/// Kept reachable from a global on purpose: a leak checker (LeakSanitizer)
/// then sees memory the process chose to keep, not memory it lost.
enum LeakedForSafety {
    private static let kept = Locked<[AnyObject]>([])
    private static let addresses = Locked<[UInt]>([])
    static func keep(_ object: AnyObject) { kept.withLock { $0.append(object) } }
    static func keep(memory: UnsafeMutableRawPointer) { addresses.withLock { $0.append(UInt(bitPattern: memory)) } }
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
