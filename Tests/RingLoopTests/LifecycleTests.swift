import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// run / runForever / runUntilComplete / stop / close, with asyncio's errors.
    @Suite("Lifecycle", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct LifecycleTests {
        @Test("runUntilComplete returns the value and rethrows the error", arguments: allBackends)
        func runUntilCompleteResult(backend: Backend) async throws {
            struct Boom: Error, Equatable {}
            let (value, error) = try await withLoop(backend) { loop in
                let value = try loop.runUntilComplete { 42 }
                var caught: (any Error)?
                do { _ = try loop.runUntilComplete { () async throws -> Int in throw Boom() } } catch { caught = error }
                return (value, caught)
            }
            #expect(value == 42)
            #expect(error is Boom)
        }

        @Test("close is idempotent and every later call fails with .closed", arguments: allBackends)
        func closeIsIdempotentAndFinal(backend: Backend) async throws {
            try await onNewThread {
                let loop = try EventLoop(backend: backend)
                try loop.close()
                try loop.close()
                #expect(loop.isClosed)
                func expectClosed(_ name: String, _ body: () throws -> Void) {
                    #expect(throws: EventLoopError.closed(operation: name), "\(name) after close") { try body() }
                }
                expectClosed("callSoon") { try loop.callSoon {} }
                expectClosed("callSoonThreadsafe") { try loop.callSoonThreadsafe {} }
                expectClosed("callLater") { try loop.callLater(.seconds(1)) {} }
                expectClosed("callAt") { try loop.callAt(loop.time) {} }
                expectClosed("runForever") { try loop.runForever() }
                expectClosed("runUntilComplete") { _ = try loop.runUntilComplete { 1 } }
            }
        }

        @Test("close while running fails", arguments: allBackends)
        func closeWhileRunning(backend: Backend) async throws {
            let error = try await withLoop(backend) { loop in
                let caught = Box<EventLoopError?>(nil)
                try loop.callSoon {
                    do { try loop.close() } catch let error as EventLoopError { caught.value = error } catch {}
                    loop.stop()
                }
                try loop.runForever()
                #expect(!loop.isClosed)
                return caught.value
            }
            #expect(error == .closeWhileRunning)
        }

        @Test("a nested runUntilComplete or runForever fails with alreadyRunning", arguments: allBackends)
        func nestedRunFails(backend: Backend) async throws {
            let (nestedUntil, nestedForever) = try await withLoop(backend) { loop in
                try loop.runUntilComplete {
                    var a: (any Error)?, b: (any Error)?
                    do { _ = try loop.runUntilComplete { 1 } } catch { a = error }
                    do { try loop.runForever() } catch { b = error }
                    return (a as? EventLoopError, b as? EventLoopError)
                }
            }
            #expect(nestedUntil == .alreadyRunning)
            #expect(nestedForever == .alreadyRunning)
        }

        @Test("another loop cannot run on a thread where one is running", arguments: allBackends)
        func anotherLoopOnSameThread(backend: Backend) async throws {
            let error = try await withLoop(backend) { loop in
                let other = try EventLoop(backend: backend)
                defer { try? other.close() }
                return try loop.runUntilComplete { () -> EventLoopError? in
                    do { _ = try other.runUntilComplete { 1 } } catch { return error as? EventLoopError }
                    return nil
                }
            }
            #expect(error == .anotherLoopRunning)
        }

        @Test("runUntilComplete stopped before the operation finished fails", arguments: allBackends)
        func runUntilCompleteStoppedEarly(backend: Backend) async throws {
            let (error, laterValue) = try await withLoop(backend) { loop in
                try loop.callLater(.milliseconds(20)) { loop.stop() }
                var caught: (any Error)?
                do {
                    _ = try loop.runUntilComplete { () async throws -> Int in
                        try await loop.sleep(for: .milliseconds(100))
                        return 1
                    }
                } catch { caught = error }
                // The abandoned task finishing later must not stop the next run.
                let later = try loop.runUntilComplete { () async throws -> Int in
                    try await loop.sleep(for: .milliseconds(200))
                    return 2
                }
                return (caught as? EventLoopError, later)
            }
            #expect(error == .stoppedBeforeCompletion)
            #expect(laterValue == 2)
        }

        @Test("EventLoop.current is nil outside a loop and the loop inside", arguments: allBackends)
        func currentLoop(backend: Backend) async throws {
            #expect(EventLoop.current == nil)
            #expect(throws: EventLoopError.noRunningLoop) { try EventLoop.running() }
            let (inside, after) = try await withLoop(backend) { loop in
                let inside = try loop.runUntilComplete { EventLoop.current === loop && (try? EventLoop.running()) === loop }
                return (inside, EventLoop.current == nil)
            }
            #expect(inside)
            #expect(after)
        }

        @Test("EventLoop.run refuses to start inside a running loop", arguments: allBackends)
        func runInsideRunningLoop(backend: Backend) async throws {
            let error = try await onNewThread {
                try EventLoop.run(backend: backend) { () -> EventLoopError? in
                    do { _ = try EventLoop.run(backend: backend) { 1 } } catch { return error as? EventLoopError }
                    return nil
                }
            }
            #expect(error == .runInsideRunningLoop)
        }

        @Test("EventLoop.run cancels tasks still pending at exit and waits for them", arguments: allBackends)
        func runCancelsHangingTasks(backend: Backend) async throws {
            let outcome = Recorder<String>()
            let start = LoopInstant.now
            let value = try await onNewThread {
                try EventLoop.run(backend: backend) {
                    let loop = try EventLoop.running()
                    loop.spawn {
                        do {
                            try await loop.sleep(for: .seconds(3600))
                            outcome.append("slept")
                        } catch is CancellationError {
                            outcome.append("cancelled")
                        }
                    }
                    try await loop.sleep(for: .milliseconds(5))
                    return 7
                }
            }
            #expect(value == 7)
            #expect(outcome.all == ["cancelled"])
            #expect(LoopInstant.now - start < .seconds(30))
        }

        @Test("a throwing callback goes to the exception handler and the loop keeps running", arguments: allBackends)
        func callbackErrorGoesToHandler(backend: Backend) async throws {
            struct Oops: Error {}
            let (contexts, afterRan) = try await withLoop(backend) { loop in
                let contexts = Box<[ExceptionContext]>([])
                let afterRan = Box(false)
                loop.setExceptionHandler { _, context in contexts.value.append(context) }
                try loop.callSoon { throw Oops() }
                try loop.callLater(.milliseconds(1)) { throw Oops() }
                try loop.callLater(.milliseconds(10)) { afterRan.value = true; loop.stop() }
                try loop.runForever()
                return (contexts.value, afterRan.value)
            }
            #expect(contexts.count == 2)
            #expect(contexts.allSatisfy { $0.error is Oops })
            if case .callback = contexts[0].source {} else { Issue.record("first context should name a callback") }
            if case .timer = contexts[1].source {} else {
                Issue.record("second context should name a timer")
            }
            #expect(afterRan)
        }

        @Test("an exception handler that throws does not escape the loop", arguments: allBackends)
        func throwingHandlerDoesNotEscape(backend: Backend) async throws {
            struct Oops: Error {}
            struct HandlerFailed: Error {}
            let (logger, records) = capturingLogger()
            let continued = try await withLoop(backend, logger: logger) { loop in
                let continued = Box(false)
                loop.setExceptionHandler { _, _ in throw HandlerFailed() }
                try loop.callSoon { throw Oops() }
                try loop.callLater(.milliseconds(5)) { continued.value = true; loop.stop() }
                try loop.runForever()
                return continued.value
            }
            #expect(continued)
            #expect(records.all.contains { $0.0 == .error && $0.1.contains("Unhandled error in exception handler") })
        }

        @Test("the default exception handler logs through swift-log", arguments: allBackends)
        func defaultHandlerLogs(backend: Backend) async throws {
            struct Oops: Error {}
            let (logger, records) = capturingLogger()
            try await withLoop(backend, logger: logger) { loop in
                try loop.callSoon { throw Oops() }
                try loop.callSoon { loop.stop() }
                try loop.runForever()
            }
            #expect(records.all.contains { $0.0 == .error && $0.1.contains("Unhandled error in callback") })
        }
    }
}
