import Glibc
@testable import RingLoop
import Testing

/// An actor whose executor is the loop.
actor LoopBound {
    let loop: EventLoop
    var hits: [UInt] = []
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    init(loop: EventLoop) { self.loop = loop }
    func touch() -> UInt {
        hits.append(currentThreadID)
        return currentThreadID
    }
}

/// An actor on a loop that counts calls whose bodies overlap: any overlap
/// means two of its jobs ran at once.
actor OverlapCounter {
    let loop: EventLoop
    private var inside = false
    private(set) var overlaps = 0
    private(set) var calls = 0
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
    init(loop: EventLoop) { self.loop = loop }
    func enter() {
        if inside { overlaps += 1 }
        inside = true
        // Long enough that a second thread in here at the same time is all
        // but certain to be seen; one at a time, it costs only time.
        for _ in 0..<200 { sched_yield() }
        calls += 1
        inside = false
    }
}

/// State a callback and its task share: not `Sendable`, only the loop
/// thread touches it.
final class SharedByCallbackAndTask {
    var entries: [String] = []
    var threads: [UInt] = []
    var task: LoopTask<Int>?
}

extension AllSuites {
    @Suite("Executor", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct ExecutorTests {
        @Test("spawned tasks, Task(executorPreference:) and actors run on the loop thread", arguments: allBackends)
        func tasksAndActorsRunOnLoopThread(backend: Backend) async throws {
            let ok = try await withLoop(backend) { loop in
                let loopThread = currentThreadID
                return try loop.runUntilComplete { () async throws -> Bool in
                    var threads: [UInt] = [currentThreadID]
                    let spawned = loop.spawn { () async -> [UInt] in
                        var seen = [currentThreadID]
                        await Task.yield()
                        seen.append(currentThreadID)
                        return seen
                    }
                    threads += try await spawned.value
                    let preferred = Task(executorPreference: loop) { () async -> UInt in
                        await Task.yield()
                        return currentThreadID
                    }
                    threads.append(await preferred.value)
                    let actor = LoopBound(loop: loop)
                    threads.append(await actor.touch())
                    try await loop.sleep(for: .milliseconds(1))
                    threads.append(currentThreadID)
                    return threads.allSatisfy { $0 == loopThread } && threads.count == 6
                }
            }
            #expect(ok)
        }

        @Test("an actor on a closed loop stays isolated: its jobs run one at a time, off the loop, and none is lost",
              arguments: allBackends)
        func actorOnClosedLoop(backend: Backend) async throws {
            let loop = try EventLoop(backend: backend)
            let counter = OverlapCounter(loop: loop)
            try await onNewThread { try loop.close() }
            // Callers on Swift's global executor, several at once.
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<4 {
                    group.addTask { for _ in 0..<250 { await counter.enter() } }
                }
                try await group.waitForAll()
            }
            #expect(await counter.calls == 1_000)
            #expect(await counter.overlaps == 0)
        }

        @Test("spawnLocal: a callback starts a task that shares its non-Sendable state on the loop thread; elsewhere wrongThread",
              arguments: allBackends)
        func spawnLocalFromCallback(backend: Backend) async throws {
            let (entries, onLoopThread, value, refusals) = try await withLoop(backend) { loop in
                var refusals: [String] = []
                // A loop that is not running has no loop thread yet.
                do { try loop.spawnLocal { 0 } } catch { refusals.append("\(error)") }
                let loopThread = currentThreadID
                let (entries, onLoopThread, value, offLoop) = try loop.runUntilComplete {
                    () async throws -> ([String], Bool, Int, String) in
                    let shared = SharedByCallbackAndTask()
                    try loop.callSoon {
                        shared.entries.append("callback")
                        shared.task = try loop.spawnLocal {
                            shared.entries.append("task starts")
                            shared.threads.append(currentThreadID)
                            try await loop.sleep(for: .milliseconds(2))
                            shared.entries.append("task resumes")
                            shared.threads.append(currentThreadID)
                            return shared.entries.count
                        }
                        shared.entries.append("callback returns")
                    }
                    while shared.task == nil { await Task.yield() }
                    let value = try await shared.task!.value
                    let offLoop = await Task.detached { () -> String in
                        do { try loop.spawnLocal { 0 }; return "no error" } catch { return "\(error)" }
                    }.value
                    return (shared.entries, shared.threads == [loopThread, loopThread], value, offLoop)
                }
                return (entries, onLoopThread, value, refusals + [offLoop])
            }
            #expect(entries == ["callback", "callback returns", "task starts", "task resumes"])
            #expect(onLoopThread)
            #expect(value == 4)
            #expect(refusals.count == 2 && refusals.allSatisfy { $0.contains("spawnLocal") }, "\(refusals)")
        }

        @Test("a continuation resumed from another thread lands on the loop thread", arguments: allBackends)
        func continuationFromOtherThread(backend: Backend) async throws {
            let same = try await withLoop(backend) { loop in
                let loopThread = currentThreadID
                return try loop.runUntilComplete { () async throws -> Bool in
                    let value: Int = await withUnsafeContinuation { continuation in
                        try? startDetachedThread { continuation.resume(returning: 5) }
                    }
                    return value == 5 && currentThreadID == loopThread
                }
            }
            #expect(same)
        }

        @Test("offload runs off the loop thread and resumes on it", arguments: allBackends)
        func offloadRunsOffLoop(backend: Backend) async throws {
            let (workerThread, loopThread, resumedThread, value) = try await withLoop(backend) { loop in
                let loopThread = currentThreadID
                return try loop.runUntilComplete { () async throws -> (UInt, UInt, UInt, Int) in
                    let (worker, value) = try await loop.offload { () -> (UInt, Int) in
                        usleep(2_000)
                        return (currentThreadID, 21 * 2)
                    }
                    return (worker, loopThread, currentThreadID, value)
                }
            }
            #expect(value == 42)
            #expect(workerThread != loopThread)
            #expect(resumedThread == loopThread)
        }

        @Test("a pool asked for fewer than one thread has one, and runs work on threads named as asked", arguments: allBackends)
        func poolOfZeroThreads(backend: Backend) async throws {
            let (counts, value, names) = try await onNewThread { () -> ([Int], Int, [String]) in
                let pools = [try ThreadPool(threads: 0, name: "a-name-longer-than-15-bytes"), try ThreadPool(threads: -3)]
                defer { for pool in pools { pool.shutdown() } }
                let loop = try EventLoop(backend: backend, threadPool: pools[0])
                defer { try? loop.close() }
                let value = try loop.runUntilComplete { try await loop.offload { 6 * 7 } }
                let names = try loop.runUntilComplete {
                    [try await loop.offload { currentThreadName }, try await loop.offload(to: pools[1]) { currentThreadName }]
                }
                return (pools.map(\.threadCount), value, names)
            }
            #expect(counts == [1, 1])
            #expect(value == 42)
            #expect(names == ["a-name-longer-t", "RingLoop-pool"], "Linux keeps 15 bytes of a name")
        }

        @Test("offload cancelled before a worker starts it never runs", arguments: allBackends)
        func offloadCancelledBeforeStart(backend: Backend) async throws {
            let ran = Recorder<Int>()
            let blockerStarted = Flag()
            let releaseBlocker = Flag()
            let result = try await onNewThread {
                let pool = try ThreadPool(threads: 1)
                defer { pool.shutdown() }
                let loop = try EventLoop(backend: backend, threadPool: pool)
                defer { try? loop.close() }
                return try loop.runUntilComplete { () async throws -> String in
                    // Occupy the only worker until the victim has been cancelled.
                    let blocker = loop.spawn {
                        try await loop.offload {
                            blockerStarted.set()
                            while !releaseBlocker.isSet { usleep(1_000) }
                        }
                    }
                    while !blockerStarted.isSet { try await loop.sleep(for: .milliseconds(1)) }
                    let victim = loop.spawn { try await loop.offload { ran.append(1) } }
                    try await loop.sleep(for: .milliseconds(5))
                    victim.cancel()
                    let outcome: String
                    do { try await victim.value; outcome = "completed" } catch is CancellationError { outcome = "cancelled" }
                    releaseBlocker.set()
                    try await blocker.value
                    return outcome
                }
            }
            #expect(result == "cancelled")
            #expect(ran.count == 0)
        }

        @Test("a cancelled sleep frees its timer at once", arguments: allBackends)
        func cancelledSleepFreesTimer(backend: Backend) async throws {
            let (during, after, outcome) = try await withLoop(backend) { loop in
                try loop.runUntilComplete { () async throws -> (Int, Int, String) in
                    let sleeper = loop.spawn { try await loop.sleep(for: .seconds(3600)) }
                    await Task.yield()
                    await Task.yield()
                    let during = loop.timerCounts.live
                    sleeper.cancel()
                    var outcome = "finished"
                    do { try await sleeper.value } catch is CancellationError { outcome = "cancelled" }
                    return (during, loop.timerCounts.live, outcome)
                }
            }
            #expect(during == 1)
            #expect(after == 0)
            #expect(outcome == "cancelled")
        }

        @Test("an already-cancelled task's sleep throws without scheduling", arguments: allBackends)
        func sleepInCancelledTask(backend: Backend) async throws {
            let (threw, live) = try await withLoop(backend) { loop in
                try loop.runUntilComplete { () async throws -> (Bool, Int) in
                    let task = loop.spawn { () async -> Bool in
                        withUnsafeCurrentTask { $0?.cancel() }
                        do { try await loop.sleep(for: .seconds(10)) } catch is CancellationError { return true } catch {}
                        return false
                    }
                    return (try await task.value, loop.timerCounts.live)
                }
            }
            #expect(threw)
            #expect(live == 0)
        }

        @Test("Task.sleep on the loop uses the loop's own timers", arguments: allBackends)
        func taskSleepUsesLoopTimers(backend: Backend) async throws {
            let (liveDuringSleep, thread, loopThread) = try await withLoop(backend) { loop in
                let loopThread = currentThreadID
                return try loop.runUntilComplete { () async throws -> (Int, UInt, UInt) in
                    let observed = Box(-1)
                    try loop.callLater(.milliseconds(5)) { observed.value = loop.timerCounts.live }
                    try await Task.sleep(for: .milliseconds(30))
                    return (observed.value, currentThreadID, loopThread)
                }
            }
            #expect(liveDuringSleep == 1, "Task.sleep's wake-up is a timer in the loop's heap")
            #expect(thread == loopThread)
        }

        @Test("debug mode logs callbacks and task steps slower than slowCallbackDuration", arguments: allBackends)
        func slowCallbackWarning(backend: Backend) async throws {
            let (logger, records) = capturingLogger()
            try await withLoop(backend, debug: true, logger: logger) { loop in
                // Wide margins: the slow ones take 4x the threshold, the fast one
                // does nothing, so a loaded machine cannot flip either.
                loop.slowCallbackDuration = .milliseconds(50)
                try loop.callSoon { usleep(200_000) }
                try loop.callSoon {}
                try loop.callSoon { loop.stop() }
                try loop.runForever()
                _ = try loop.runUntilComplete { usleep(200_000) }
            }
            let warnings = records.all.filter { $0.0 == .warning }.map(\.1)
            #expect(warnings.count == 2)
            #expect(warnings.first?.contains("callback scheduled at RingLoopTests/ExecutorTests.swift") == true)
            #expect(warnings.last?.contains("task step") == true)
            #expect(warnings.allSatisfy { $0.contains("took 0.") })
        }

        @Test("debug mode rejects non-threadsafe calls from another thread", arguments: allBackends)
        func wrongThreadDetected(backend: Backend) async throws {
            let errors = try await withLoop(backend, debug: true) { loop in
                let errors = Recorder<EventLoopError>()
                try loop.callSoon {
                    let join = try onNewThreadSync {
                        do { try loop.callSoon {} } catch let error as EventLoopError { errors.append(error) } catch {}
                        do { try loop.callLater(.seconds(1)) {} } catch let error as EventLoopError { errors.append(error) } catch {}
                        do { try loop.callAt(loop.time) {} } catch let error as EventLoopError { errors.append(error) } catch {}
                        loop.stop()  // stop is thread-safe
                    }
                    join()
                }
                try loop.runForever()
                return errors.all
            }
            #expect(errors == [.wrongThread(operation: "callSoon"), .wrongThread(operation: "callLater"),
                               .wrongThread(operation: "callAt")])
        }
    }
}
