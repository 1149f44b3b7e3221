import CUring
import Glibc
@testable import RingLoop
import Synchronization
import Testing

/// The disposition of `signal` right now: the handler's address, or 0 for
/// SIG_DFL and 1 for SIG_IGN.
func disposition(_ signal: Int32) -> UInt {
    var current = sigaction()
    sigaction(signal, nil, &current)
    guard let handler = current.__sigaction_handler.sa_handler else { return 0 }
    return UInt(bitPattern: unsafeBitCast(handler, to: Int.self))
}

/// Sets `signal` to SIG_IGN; the returned function puts back what was there.
/// A test that installs handlers for SIGUSR1 ignores it first, so a stray
/// delivery after its handler is gone can never kill the run.
func ignoring(_ signal: Int32) -> () -> Void {
    let previous = Glibc.signal(signal, unsafeBitCast(Int(1), to: __sighandler_t.self))
    return { _ = Glibc.signal(signal, previous) }
}

extension AllSuites {
    /// Signal handlers on the loop. They change process-wide signal
    /// dispositions, so they run serialized and restore what they change.
    @Suite("Signals", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct SignalTests {
        @Test("a signal handler runs as a loop callback; removed, the old disposition is back", arguments: allBackends)
        func signalHandler(backend: Backend) async throws {
            let restore = ignoring(SIGUSR1)
            defer { restore() }
            let (count, onLoopThread, removed, afterRemoval, restored) = try await onLoop(backend) { loop -> (Int, Bool, Bool, Int, UInt) in
                let count = Box(0)
                let onLoopThread = Box(true)
                let loopThread = currentThreadID
                try loop.addSignalHandler(SIGUSR1) {
                    count.value += 1
                    if currentThreadID != loopThread { onLoopThread.value = false }
                }
                for _ in 0..<3 {
                    kill(getpid(), SIGUSR1)
                    let before = count.value
                    try await waitUntil(loop) { count.value > before }
                }
                let removed = loop.removeSignalHandler(SIGUSR1)
                kill(getpid(), SIGUSR1)   // ignored again
                try await loop.sleep(for: .milliseconds(50))
                return (count.value, onLoopThread.value, removed, count.value, disposition(SIGUSR1))
            }
            #expect(count == 3)
            #expect(onLoopThread)
            #expect(removed)
            #expect(afterRemoval == 3)
            #expect(restored == 1, "SIG_IGN is back after removeSignalHandler")
        }

        @Test("a signal handler that read a loop's pipe just before the loop closed writes there, never into the descriptor that reuses its number",
              arguments: allBackends)
        func signalHandlerRacingClose(backend: Backend) async throws {
            let restore = ignoring(SIGUSR1)
            defer { restore() }
            let group = try LoopGroup(threads: 1, backend: backend)
            let loop = group.loops[0]
            let writeFD = try await loop.submit {
                try loop.addSignalHandler(SIGUSR1) {}
                return loop.signalWatcher!.writeFD
            }
            // The handler runs on a thread of the test's own and, held by the
            // hook, sleeps between reading the descriptor and writing to it.
            cu_store_release(SignalRouting.pauseForTest, 500)
            defer { cu_store_release(SignalRouting.pauseForTest, 0) }
            let signalled = try onNewThreadSync {
                // Unblocked here (the test's threads inherit a mask that blocks
                // it), so the kernel runs the handler on this thread, now.
                var usr1 = sigset_t()
                sigemptyset(&usr1)
                sigaddset(&usr1, SIGUSR1)
                pthread_sigmask(SIG_UNBLOCK, &usr1, nil)
                _ = raise(SIGUSR1)
            }
            // Closed once the handler is in (it counts itself in before it
            // reads the descriptor, then pauses).
            var polls = 0
            while cu_load_seq_cst(SignalRouting.active) == 0, polls < 5_000 { usleep(1_000); polls += 1 }
            #expect(polls < 5_000, "the handler never ran")
            let closing = ContinuousClock.now
            group.shutdown()   // the loop closes: its signal routes go, then its pipe
            let closeTook = ContinuousClock.now - closing
            // What opens next takes the pipe's old number.
            var reuse: [Int32] = [-1, -1]
            #expect(pipe(&reuse) == 0)
            _ = fcntl(reuse[0], F_SETFL, O_NONBLOCK)
            #expect(dup2(reuse[1], writeFD) == writeFD)
            signalled()
            var byte: UInt8 = 0
            let stray = read(reuse[0], &byte, 1)
            for fd in reuse + [writeFD] { close(fd) }
            #expect(stray == -1, "the late handler wrote into the descriptor that reused the number")
            #expect(closeTook >= .milliseconds(50), "the close waited for the handler: \(closeTook)")
        }

        @Test("a signal goes to every loop with a handler for it; one loop removing its own leaves the other's",
              arguments: allBackends)
        func signalOnEveryLoop(backend: Backend) async throws {
            let restore = ignoring(SIGUSR1)
            defer { restore() }
            let group = try LoopGroup(threads: 2, backend: backend)
            defer { group.shutdown() }
            let counts = [Box(0), Box(0)]   // each touched on its own loop only
            for (index, loop) in group.loops.enumerated() {
                try await loop.submit { try loop.addSignalHandler(SIGUSR1) { counts[index].value += 1 } }
            }
            func waitForCount(_ index: Int, _ expected: Int) async throws {
                let loop = group.loops[index]
                try await loop.submit { try await waitUntil(loop) { counts[index].value >= expected } }
            }
            kill(getpid(), SIGUSR1)
            try await waitForCount(0, 1)
            try await waitForCount(1, 1)

            #expect(try await group.loops[0].submit { group.loops[0].removeSignalHandler(SIGUSR1) })
            #expect(disposition(SIGUSR1) != 1, "the other loop's handler is still installed")
            kill(getpid(), SIGUSR1)
            try await waitForCount(1, 2)
            let first = try await group.loops[0].submit {
                try await group.loops[0].sleep(for: .milliseconds(30))
                return counts[0].value
            }
            #expect(first == 1, "the loop that removed its handler is not told")

            #expect(try await group.loops[1].submit { group.loops[1].removeSignalHandler(SIGUSR1) })
            #expect(disposition(SIGUSR1) == 1, "SIG_IGN is back once no loop has a handler")
        }

        @Test("SIGKILL, SIGSTOP, crash signals and out-of-range numbers are rejected by name", arguments: allBackends)
        func badSignals(backend: Backend) async throws {
            let errors = try await onLoop(backend) { loop -> [EventLoopError] in
                var errors: [EventLoopError] = []
                for signal: Int32 in [SIGKILL, SIGSTOP, SIGSEGV, 0, 65, -3] {
                    do { try loop.addSignalHandler(signal) {} } catch let error as EventLoopError { errors.append(error) } catch {}
                }
                #expect(!loop.removeSignalHandler(SIGUSR2), "nothing to remove")
                return errors
            }
            #expect(errors.count == 6)
            for error in errors {
                guard case .invalidArgument(let detail) = error else { Issue.record("\(error)"); continue }
                #expect(detail.contains("signal"))
            }
        }

        @Test("EventLoop.run: Ctrl-C cancels the main task, then the program ends by SIGINT, not a crash",
              .enabled(if: Child.productExists("Hello"), "needs the Hello example next to the test bundle"))
        func sigintEndsRun() throws {
            // A child process: the end of the story is the process dying by SIGINT.
            let hello = try Child(["Hello"])
            defer { hello.stop() }
            // Its output is a pipe, so fully buffered until exit: wait a while
            // inside its 1 s sleep instead of for the first line.
            usleep(400_000)
            let start = ContinuousClock.now
            kill(hello.pid, SIGINT)
            let (status, output) = try hello.finish(limit: .seconds(10))
            #expect(status == -SIGINT, "ended by SIGINT after cleaning up: \(status), \(output)")
            #expect(output.contains("Hello from RingLoop"), "buffered output is flushed before the signal: \(output)")
            #expect(!output.contains("World"), "the main task was cancelled in its sleep")
            #expect(!output.contains("Fatal error"))
            #expect(ContinuousClock.now - start < .milliseconds(900), "it did not wait out the 1 s sleep")
        }

        @Test("EventLoop.run leaves a SIGINT disposition the application chose alone")
        func sigintLeftAlone() async throws {
            let restore = ignoring(SIGINT)
            defer { restore() }
            let during = try await onNewThread { () -> UInt in
                try EventLoop.run { disposition(SIGINT) }
            }
            #expect(during == 1, "SIG_IGN stayed in place during run")
            #expect(disposition(SIGINT) == 1)
        }
    }
}
