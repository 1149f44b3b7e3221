import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// The ready queue and timers, pinned the way CPython's test_base_events pins them.
    @Suite("Scheduling", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct SchedulingTests {
        @Test("callSoon runs callbacks in FIFO order", arguments: allBackends)
        func callSoonFIFO(backend: Backend) async throws {
            let order = try await withLoop(backend) { loop in
                let order = Box<[Int]>([])
                for i in 0..<100 { try loop.callSoon { order.value.append(i) } }
                try loop.callSoon { loop.stop() }
                try loop.runForever()
                return order.value
            }
            #expect(order == Array(0..<100))
        }

        @Test("a callback scheduled during an iteration runs in the next one", arguments: allBackends)
        func scheduledDuringIterationRunsNext(backend: Backend) async throws {
            let (first, second) = try await withLoop(backend) { loop in
                let log = Box<[String]>([])
                try loop.callSoon {
                    log.value.append("a")
                    try loop.callSoon { log.value.append("b") }
                }
                loop.stop()  // exactly one iteration
                try loop.runForever()
                let afterFirst = log.value
                loop.stop()
                try loop.runForever()
                return (afterFirst, log.value)
            }
            #expect(first == ["a"])
            #expect(second == ["a", "b"])
        }

        @Test("callLater with negative delays runs in deadline order; equal deadlines run FIFO", arguments: allBackends)
        func negativeDelaysInDeadlineOrder(backend: Backend) async throws {
            let order = try await withLoop(backend) { loop in
                let order = Box<[String]>([])
                try loop.callLater(.milliseconds(-100)) { order.value.append("-100") }
                try loop.callLater(.milliseconds(-300)) { order.value.append("-300") }
                try loop.callLater(.milliseconds(-200)) { order.value.append("-200") }
                let same = loop.time + .milliseconds(1)
                for name in ["s1", "s2", "s3"] { try loop.callAt(same) { order.value.append(name) } }
                try loop.callLater(.milliseconds(20)) { loop.stop() }
                try loop.runForever()
                return order.value
            }
            #expect(order == ["-300", "-200", "-100", "s1", "s2", "s3"])
        }

        @Test("callAt in the past runs in the next iteration", arguments: allBackends)
        func callAtInThePast(backend: Backend) async throws {
            let ran = try await withLoop(backend) { loop in
                let ran = Box(false)
                let handle = try loop.callAt(loop.time - .seconds(10)) { ran.value = true }
                #expect(handle.when < loop.time)
                // One iteration moves it to the ready queue, the next runs it.
                loop.stop()
                try loop.runForever()
                loop.stop()
                try loop.runForever()
                return ran.value
            }
            #expect(ran)
        }

        @Test("a cancelled handle never runs", arguments: allBackends)
        func cancelledHandleNeverRuns(backend: Backend) async throws {
            let (ran, cancelled, counts) = try await withLoop(backend) { loop in
                let ran = Box(0)
                let doomed = try loop.callLater(.milliseconds(5)) { ran.value += 100 }
                let kept = try loop.callLater(.milliseconds(10)) { ran.value += 1 }
                doomed.cancel()
                doomed.cancel()  // idempotent
                try loop.callLater(.milliseconds(30)) { loop.stop() }
                try loop.runForever()
                #expect(!kept.isCancelled)
                return (ran.value, doomed.isCancelled, loop.timerCounts)
            }
            #expect(ran == 1)
            #expect(cancelled)
            #expect(counts.live == 0)
        }

        @Test("cancelled timers are cleaned up past 100 queued and 50% cancelled", arguments: allBackends)
        func cancelledTimerCleanupThreshold(backend: Backend) async throws {
            try await withLoop(backend) { loop in
                // At or below 100 queued timers, cancelled entries stay in the heap.
                var small: [TimerHandle] = []
                for _ in 0..<100 { small.append(try loop.callLater(.seconds(60)) {}) }
                for handle in small.dropLast() { handle.cancel() }
                #expect(loop.timerCounts.live == 1)
                #expect(loop.timerCounts.queued == 100)
                small.last!.cancel()

                // Above 100, once more than half are cancelled the heap is rebuilt.
                let loop2 = try EventLoop(backend: backend)
                defer { try? loop2.close() }
                var handles: [TimerHandle] = []
                for _ in 0..<150 { handles.append(try loop2.callLater(.seconds(60)) {}) }
                for handle in handles.prefix(75) { handle.cancel() }
                #expect(loop2.timerCounts.queued == 150, "exactly half cancelled: not yet rebuilt")
                handles[75].cancel()
                #expect(loop2.timerCounts.live == 74)
                #expect(loop2.timerCounts.queued == 74, "more than half cancelled: rebuilt from live timers")
            }
        }

        @Test("the poll timeout is the time to the next live timer; unbounded with no timers", arguments: allBackends)
        func pollTimeoutFollowsNextLiveTimer(backend: Backend) async throws {
            let (timeouts, idleTimeout, slack) = try await withLoop(backend) { loop in
                let seen = Box<[Duration?]>([])
                loop.pollObserver = { timeout, _ in seen.value.append(timeout) }
                let early = try loop.callLater(.milliseconds(10)) {}
                try loop.callLater(.milliseconds(200)) { loop.stop() }
                early.cancel()
                try loop.runForever()
                let timeouts = seen.value

                // Nothing scheduled: the loop waits without limit until woken.
                seen.value = []
                let waker = try onNewThreadSync { usleep(50_000); loop.stop() }
                try loop.runForever()
                waker()
                // io_uring's wait gets the loop's timer slack added; epoll's has the kernel's.
                let slack: Duration = backend == .uring ? loop.timerSlack : .zero
                return (timeouts, seen.value.first ?? .zero, slack)
            }
            let first = try #require(timeouts.first ?? nil)
            #expect(first > .milliseconds(150), "the cancelled 10 ms timer must not shorten the wait")
            #expect(first <= .milliseconds(200) + slack)
            #expect(idleTimeout == nil)
        }

        @Test("stop() before runForever runs exactly one iteration", arguments: allBackends)
        func stopBeforeRunForever(backend: Backend) async throws {
            let count = try await withLoop(backend) { loop in
                let count = Box(0)
                func again() throws {
                    count.value += 1
                    try loop.callSoon { try again() }
                }
                try loop.callSoon { try again() }
                loop.stop()
                try loop.runForever()
                return count.value
            }
            #expect(count == 1)
        }

        @Test("callSoon(cb); callSoon(stop); runForever() runs cb once", arguments: allBackends)
        func callSoonThenStop(backend: Backend) async throws {
            let count = try await withLoop(backend) { loop in
                let count = Box(0)
                func callback() throws {
                    count.value += 1
                    try loop.callSoon { try callback() }
                }
                try loop.callSoon { try callback() }
                try loop.callSoon { loop.stop() }
                try loop.runForever()
                return count.value
            }
            #expect(count == 1)
        }

        @Test("callSoonThreadsafe from 4 threads x 10,000 calls loses nothing", arguments: allBackends)
        func callSoonThreadsafeFromManyThreads(backend: Backend) async throws {
            let (total, perThreadOrdered) = try await withLoop(backend) { loop in
                let seen = Box<[[Int]]>(Array(repeating: [], count: 4))
                let total = Box(0)
                var joins: [() -> Void] = []
                for t in 0..<4 {
                    joins.append(try onNewThreadSync {
                        for i in 0..<10_000 {
                            try? loop.callSoonThreadsafe {
                                seen.value[t].append(i)
                                total.value += 1
                                if total.value == 40_000 { loop.stop() }
                            }
                        }
                    })
                }
                try loop.runForever()
                for join in joins { join() }
                return (total.value, seen.value.allSatisfy { $0 == Array(0..<10_000) })
            }
            #expect(total == 40_000)
            #expect(perThreadOrdered, "each producer's calls run in the order it made them")
        }
    }
}

