import Glibc
import Logging
@testable import RingLoop
import Testing

extension AllSuites {
    /// Closing, loop teardown, timers and tasks at the edges: what issue 10 found
    /// leaking or hanging, each case on both backends.
    @Suite("Descriptors, teardown and tasks at the edges", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct TeardownTests {
        @Test("closing from a cancelled task closes: 100 files, 18 timed-out connects, no descriptor left", arguments: allBackends)
        func closeFromCancelledTask(backend: Backend) async throws {
            let path = temporaryPath("cancelled-close")
            try Array("data".utf8).withUnsafeBytes { bytes in
                let fd = open(path, O_CREAT | O_WRONLY, 0o644)
                try #require(fd >= 0)
                _ = write(fd, bytes.baseAddress, bytes.count)
                close(fd)
            }
            defer { unlink(path) }
            let (port, cleanup) = try blackholedPort()
            defer { cleanup() }
            let (before, after, timeouts) = try await onLoop(backend) { loop -> (Int, Int, Int) in
                let before = openDescriptorCount()
                for _ in 0..<100 {
                    let task = loop.spawn { () async throws -> Int32 in
                        let file = try await File.open(path)
                        let fd = file.fileDescriptor
                        withUnsafeCurrentTask { $0?.cancel() }
                        try? await file.close()
                        return fd
                    }
                    let fd = try await task.value
                    #expect(fcntl(fd, F_GETFD) == -1, "fd \(fd) still open after a close from a cancelled task")
                }
                var timeouts = 0
                for _ in 0..<18 {
                    do {
                        _ = try await withTimeout(.milliseconds(20)) {
                            try await SocketStream.connect(host: "127.0.0.1", port: port)
                        }
                    } catch is TimeoutError { timeouts += 1 }
                }
                return (before, openDescriptorCount(), timeouts)
            }
            #expect(timeouts == 18)
            if ResourceCheck.enabled { #expect(after == before, "\(after - before) descriptor(s) leaked") }
        }

        @Test("callbacks sent with callSoonThreadsafe after the last run still run at close", arguments: allBackends)
        func inboxRunsAtClose(backend: Backend) async throws {
            let ran = try await onNewThread { () -> Int in
                let loop = try EventLoop(backend: backend)
                try loop.runUntilComplete {}
                let count = Locked(0)
                let join = try onNewThreadSync {
                    for _ in 0..<10 { try? loop.callSoonThreadsafe { count.withLock { $0 += 1 } } }
                }
                join()
                try loop.close()
                expectClosedClean(loop)
                return count.withLock { $0 }
            }
            #expect(ran == 10)
        }

        @Test("closing the loop with offloads queued behind a busy pool: every awaiting task ends", arguments: allBackends)
        func queuedOffloadsAtClose(backend: Backend) async throws {
            // Owned pool: close joins it, so every task has ended when close returns.
            let (ownedEnded, ownedTotal, closeTime) = try await onNewThread { () -> (Int, Int, Duration) in
                let loop = try EventLoop(backend: backend)
                let ended = Locked(0)
                let busy = ThreadPool.defaultThreadCount, total = busy + 3
                try loop.runUntilComplete {
                    for i in 0..<total {
                        // The first `busy` occupy every worker; the rest queue behind them.
                        _ = loop.spawn(name: "offload \(i)") {
                            defer { ended.withLock { $0 += 1 } }
                            _ = try await loop.offload { usleep(i < busy ? 200_000 : 1_000) }
                        }
                    }
                    try await loop.sleep(for: .milliseconds(20))
                }
                let start = LoopInstant.now
                try loop.close()
                let closeTime = LoopInstant.now - start
                expectClosedClean(loop)
                return (ended.withLock { $0 }, total, closeTime)
            }
            #expect(ownedEnded == ownedTotal, "every task awaiting an offload ended by the time close returned")
            #expect(closeTime < .seconds(5))

            // Shared pool: the loop cannot join it; the task whose work is still
            // running ends when the work does, on the global executor.
            let sharedEnded = try await onNewThread { () -> Int in
                let pool = try ThreadPool(threads: 1)
                defer { pool.shutdown() }
                let loop = try EventLoop(backend: backend, threadPool: pool)
                let ended = Locked(0)
                try loop.runUntilComplete {
                    for i in 0..<4 {
                        _ = loop.spawn(name: "offload \(i)") {
                            defer { ended.withLock { $0 += 1 } }
                            _ = try await loop.offload { usleep(i == 0 ? 200_000 : 1_000) }
                        }
                    }
                    try await loop.sleep(for: .milliseconds(20))
                }
                try loop.close()
                let deadline = ContinuousClock.now + .seconds(5)
                while ended.withLock({ $0 }) < 4, ContinuousClock.now < deadline { usleep(5_000) }
                return ended.withLock { $0 }
            }
            #expect(sharedEnded == 4, "no task awaiting an offload on a shared pool hangs")
        }

        @Test("closing from a thread other than the one that ran the loop, with a read in flight, neither hangs nor leaks", arguments: allBackends)
        func closeFromAnotherThread(backend: Backend) async throws {
            let (ended, closeError) = try await onNewThread { () -> (Bool, String?) in
                let loop = try EventLoop(backend: backend)
                let ended = Flag()
                try loop.runUntilComplete {
                    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                    let server = try await listener.accept()
                    try await listener.close()
                    _ = loop.spawn {
                        defer { ended.set() }
                        _ = try await server.read(upTo: 16)   // never answered
                        _ = client
                    }
                    try await loop.sleep(for: .milliseconds(20))
                }
                let failure = Locked<String?>(nil)
                let join = try onNewThreadSync {
                    do { try loop.close() } catch { failure.withLock { $0 = "\(error)" } }
                }
                join()
                return (ended.isSet, failure.withLock { $0 })
            }
            #expect(closeError == nil)
            #expect(ended, "the spawned reader was cancelled and ended")
        }

        @Test("streams dropped without close after the loop stopped: closed by the loop's close, nothing deadlocks", arguments: allBackends)
        func streamsDroppedOutsideTheLoop(backend: Backend) async throws {
            let stillOpen = try await onNewThread { () -> [Int32] in
                let loop = try EventLoop(backend: backend)
                var streams: [SocketStream]? = try loop.runUntilComplete {
                    let (client, server, _) = try await connectedPair()
                    return [client, server]
                }
                let fds = streams!.map(\.fileDescriptor)
                streams = nil   // deinit off the loop: each starts its close through the run-state lock
                _ = streams
                try loop.close()   // finishes those closes
                expectClosedClean(loop)
                return fds.filter { fcntl($0, F_GETFD) != -1 }
            }
            #expect(stillOpen.isEmpty, "descriptors \(stillOpen) stayed open")
        }

        @Test("a loop built on one thread runs on another", arguments: allBackends)
        func builtHereRunThere(backend: Backend) async throws {
            let loop = try await onNewThread { try EventLoop(backend: backend) }
            let reply = try await onNewThread { () -> [UInt8] in
                defer { try? loop.close() }
                return try loop.runUntilComplete {
                    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                    let server = try await listener.accept()
                    try await client.writeAll(Array("moved".utf8))
                    let reply = try await server.read(upTo: 16)
                    try await client.close(); try await server.close(); try await listener.close()
                    return reply
                }
            }
            #expect(reply == Array("moved".utf8))
        }

        @Test("a timer cancelled after it came due, before its callback ran, does not run", arguments: allBackends)
        func cancelAfterDue(backend: Backend) async throws {
            let ran = try await withLoop(backend) { loop -> [String] in
                let log = Box<[String]>([])
                let victim = Box<TimerHandle?>(nil)
                // Equal deadlines run in order: the canceller comes first in the
                // same iteration, when the victim is already due.
                _ = try loop.callLater(.zero) { log.value.append("canceller"); victim.value?.cancel() }
                victim.value = try loop.callLater(.zero) { log.value.append("victim") }
                _ = try loop.callLater(.milliseconds(5)) { loop.stop() }
                try loop.runForever()
                return log.value
            }
            #expect(ran == ["canceller"])
        }

        @Test("Task.sleep with a clock whose durations are not Duration sleeps its time", arguments: allBackends)
        func customClockSleep(backend: Backend) async throws {
            let elapsed = try await onLoop(backend) { _ -> Duration in
                let start = ContinuousClock.now
                let clock = TickClock()
                try await Task.sleep(until: clock.now.advanced(by: TickClock.Ticks(milliseconds: 60)), clock: clock)
                return ContinuousClock.now - start
            }
            #expect(elapsed >= .milliseconds(55))
        }

        @Test("a task sleeping when the loop closes ends with CancellationError", arguments: allBackends)
        func sleepAtClose(backend: Backend) async throws {
            let outcome = try await onNewThread { () -> String in
                let loop = try EventLoop(backend: backend)
                let outcome = Locked("still sleeping")
                try loop.runUntilComplete {
                    _ = loop.spawn {
                        do {
                            try await Task.sleep(for: .seconds(30))
                            outcome.withLock { $0 = "returned normally" }
                        } catch is CancellationError {
                            outcome.withLock { $0 = "cancelled" }
                        } catch {
                            outcome.withLock { $0 = "\(error)" }
                        }
                    }
                    try await loop.sleep(for: .milliseconds(5))
                }
                try loop.close()
                return outcome.withLock { $0 }
            }
            #expect(outcome == "cancelled")
        }

        @Test("spawn on a closed loop gives a task that fails with .closed", arguments: allBackends)
        func spawnAfterClose(backend: Backend) async throws {
            let task = try await onNewThread { () -> LoopTask<Int> in
                let loop = try EventLoop(backend: backend)
                try loop.close()
                return loop.spawn { 1 }
            }
            #expect(task.isDone, "a task refused by a closed loop is done at once")
            await #expect(throws: EventLoopError.closed(operation: "spawn")) { try await task.value }
        }

        @Test("submit queued before close, or made after it, fails with .closed instead of waiting forever",
              .timeLimit(.minutes(1)), arguments: allBackends)
        func submitAcrossClose(backend: Backend) async throws {
            let loop = try EventLoop(backend: backend)
            // The loop is not running: the submission waits in its inbox.
            let queued = Task { try await loop.submit { 1 } }
            var spins = 0
            while !loop.inbox.mayHaveItems, spins < 5_000 {
                await Task.yield()
                usleep(1_000)   // not Task.sleep: its first use opens the global executor's timer descriptors
                spins += 1
            }
            try #require(loop.inbox.mayHaveItems, "the submission reached the inbox")
            try await onNewThread { try loop.close() }
            await #expect(throws: EventLoopError.closed(operation: "submit")) { try await valueOrHung(queued) }
            await #expect(throws: EventLoopError.closed(operation: "submit")) { try await loop.submit { 2 } }
        }

        @Test("an error nobody retrieved is reported once; retrieved errors and cancellations are not; isDone says when each ended",
              arguments: allBackends)
        func unretrievedErrors(backend: Backend) async throws {
            struct Lost: Error {}
            let (reports, done) = try await withLoop(backend) { loop -> ([String], [String]) in
                let reports = Box<[String]>([])
                loop.setExceptionHandler { _, context in reports.value.append("\(context.source): \(context.message)") }
                let done = try loop.runUntilComplete { () -> [String] in
                    var done: [String] = []
                    _ = loop.spawn(name: "forgotten") { () async throws -> Void in throw Lost() }
                    let awaited = loop.spawn(name: "awaited") { () async throws -> Void in throw Lost() }
                    let cancelled = loop.spawn(name: "cancelled") { try await loop.sleep(for: .seconds(30)) }
                    done.append("before: \([awaited, cancelled].map(\.isDone))")
                    _ = try? await awaited.value
                    done.append("awaited: \(awaited.isDone)")
                    cancelled.cancel()
                    done.append("cancel called: \(cancelled.isDone)")
                    _ = await cancelled.result
                    done.append("cancelled: \(cancelled.isDone)")
                    do {
                        // Looking at isDone is not retrieving the error.
                        let peeked = loop.spawn(name: "peeked") { () async throws -> Void in throw Lost() }
                        try await loop.sleep(for: .milliseconds(1))
                        done.append("peeked: \(peeked.isDone)")
                    }
                    try await loop.sleep(for: .milliseconds(10))
                    return done
                }
                return (reports.value, done)
            }
            #expect(reports == ["task 'forgotten': Task exception was never retrieved",
                                "task 'peeked': Task exception was never retrieved"])
            #expect(done == ["before: [false, false]", "awaited: true", "cancel called: false", "cancelled: true",
                             "peeked: true"])
        }

        @Test("a child process that uses its parent's loop gets usedAfterFork, not a crash", arguments: allBackends)
        func forkedChild(backend: Backend) async throws {
            let status = try await onNewThread { () -> Int32 in
                let loop = try EventLoop(backend: backend)
                defer { try? loop.close() }
                try loop.runUntilComplete {}
                let pid = fork()
                if pid == 0 {
                    // The child: only report through the exit status.
                    do {
                        try loop.callSoon {}
                        _exit(1)
                    } catch EventLoopError.usedAfterFork {
                        _exit(42)
                    } catch {
                        _exit(2)
                    }
                }
                try #require(pid > 0)
                return try waitForChild(pid, limit: .seconds(10))
            }
            #expect(status == 42, "the child's exit status says what it got (42: usedAfterFork)")
        }

        @Test("the io_uring wakeup is re-armed when the submit that re-arms it fails", arguments: uringOnly)
        func wakeupRearmedAfterBusySubmit(backend: Backend) async throws {
            let ran = try await withLoop(backend) { loop -> Int in
                let count = Locked(0)
                try loop.callSoon {
                    if case .uring(let ring) = loop.io { ring.injectedBusySubmits = 3 }
                }
                let join = try onNewThreadSync {
                    for _ in 0..<5 {
                        usleep(30_000)  // the loop is blocked in its wait by now
                        try? loop.callSoonThreadsafe { count.withLock { $0 += 1 } }
                    }
                    usleep(30_000)
                    try? loop.callSoonThreadsafe { loop.stop() }
                }
                try loop.runForever()
                join()
                return count.withLock { $0 }
            }
            #expect(ran == 5, "every cross-thread callback woke the loop")
        }

        @Test("the epoll timeout heap stays bounded when timeouts are cancelled", arguments: [Backend.epoll])
        func epollTimeoutHeapBounded(backend: Backend) async throws {
            let (live, largest) = try await onLoop(backend) { loop -> (Int, Int) in
                var largest = 0, live = 0
                for _ in 0..<40 {
                    var tasks: [LoopTask<Int32>] = []
                    for _ in 0..<100 {
                        tasks.append(loop.spawn {
                            try await loop.perform("timeout") { scratch in
                                scratch.timespec.pointee = .init(tv_sec: 30, tv_nsec: 0)
                                return .timeout(scratch.timespec)
                            }
                        })
                    }
                    try await loop.sleep(for: .milliseconds(1))
                    if case .epoll(let epoll) = loop.io { live = max(live, epoll.timeoutHeapCount) }
                    for task in tasks { task.cancel() }
                    for task in tasks { _ = await task.result }
                    if case .epoll(let epoll) = loop.io { largest = max(largest, epoll.timeoutHeapCount) }
                }
                return (live, largest)
            }
            #expect(live >= 100, "the 100 live timeouts were in the heap")
            #expect(largest <= 64, "4,000 cancelled timeouts left \(largest) stale heap entries")
        }

        @Test("every io_uring set-up step of the cascade gives a working loop", arguments: uringOnly)
        func setupCascadeSteps(backend: Backend) async throws {
            for step in URingBackend.setupCascade.indices {
                let (summary, echoed) = try await onLoop(backend, uring: URingOptions(firstSetupStep: step)) { loop -> (String, [UInt8]) in
                    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                    let server = try await listener.accept()
                    try await client.writeAll(Array("step".utf8))
                    let echoed = try await server.read(upTo: 16)
                    try await client.close(); try await server.close(); try await listener.close()
                    return (loop.backendDescription, echoed)
                }
                #expect(echoed == Array("step".utf8))
                #expect(summary.contains(URingBackend.setupCascade[step].name), "step \(step): \(summary)")
            }
        }

        @Test("100,000 operations through a 64-entry ring each complete exactly once", arguments: allBackends)
        func operationStorm(backend: Backend) async throws {
            let (completed, overflowed) = try await onLoop(backend, ringEntries: 64) { loop -> (Int, Bool) in
                let completed = Box(0)
                var tasks: [LoopTask<Void>] = []
                for _ in 0..<1_000 {
                    tasks.append(loop.spawn {
                        for _ in 0..<100 {
                            let result = try await loop.perform("timeout") { scratch in
                                scratch.timespec.pointee = .init(tv_sec: 0, tv_nsec: 1_000)
                                return .timeout(scratch.timespec)
                            }
                            #expect(result == -ETIME)
                            completed.value += 1
                        }
                    })
                }
                for task in tasks { try await task.value }
                var overflowed = true
                if case .uring(let ring) = loop.io { overflowed = ring.earlySubmits > 0 }
                return (completed.value, overflowed)
            }
            #expect(completed == 100_000)
            #expect(overflowed, "1,000 operations in flight really filled the 64-entry SQ")
        }
    }
}

/// Waits for a child process with a limit; kills it when the limit passes.
func waitForChild(_ pid: pid_t, limit: Duration) throws -> Int32 {
    let deadline = ContinuousClock.now + limit
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 {
        if ContinuousClock.now > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            throw IOError(operation: "waitpid", errno: Errno(ETIMEDOUT), detail: "child \(pid) did not exit in time")
        }
        usleep(5_000)
    }
    // WIFEXITED / WEXITSTATUS, which Glibc does not import as functions.
    return status & 0x7f == 0 ? (status >> 8) & 0xff : -(status & 0x7f)
}

/// A clock whose durations are its own type, not `Duration`: `Task.sleep`
/// must still wait its time on a loop.
struct TickClock: Clock {
    struct Ticks: DurationProtocol, Hashable {
        var nanoseconds: Int64
        init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
        init(milliseconds: Int64) { nanoseconds = milliseconds * 1_000_000 }
        static var zero: Ticks { Ticks(nanoseconds: 0) }
        static func + (a: Ticks, b: Ticks) -> Ticks { Ticks(nanoseconds: a.nanoseconds + b.nanoseconds) }
        static func - (a: Ticks, b: Ticks) -> Ticks { Ticks(nanoseconds: a.nanoseconds - b.nanoseconds) }
        static func < (a: Ticks, b: Ticks) -> Bool { a.nanoseconds < b.nanoseconds }
        static func / (a: Ticks, n: Int) -> Ticks { Ticks(nanoseconds: a.nanoseconds / Int64(n)) }
        static func * (a: Ticks, n: Int) -> Ticks { Ticks(nanoseconds: a.nanoseconds * Int64(n)) }
        static func / (a: Ticks, b: Ticks) -> Double { Double(a.nanoseconds) / Double(b.nanoseconds) }
    }
    struct Instant: InstantProtocol {
        var nanoseconds: Int64
        func advanced(by duration: Ticks) -> Instant { Instant(nanoseconds: nanoseconds + duration.nanoseconds) }
        func duration(to other: Instant) -> Ticks { Ticks(nanoseconds: other.nanoseconds - nanoseconds) }
        static func < (a: Instant, b: Instant) -> Bool { a.nanoseconds < b.nanoseconds }
    }
    var now: Instant {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Instant(nanoseconds: Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec))
    }
    var minimumResolution: Ticks { Ticks(nanoseconds: 1) }
    func sleep(until deadline: Instant, tolerance: Ticks?) async throws {
        let remaining = now.duration(to: deadline).nanoseconds
        if remaining > 0 { try await ContinuousClock().sleep(for: .nanoseconds(remaining)) }
    }
}
