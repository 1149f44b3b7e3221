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
    /// Signal handlers on the loop, and LoopGroup. They change process-wide
    /// signal dispositions, so they run serialized and restore what they change.
    @Suite("Signals and loop groups", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct SignalAndGroupTests {
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

        @Test("a 4-loop group: round-robin, one SO_REUSEPORT listener per loop, echo, clean shutdown", arguments: allBackends)
        func loopGroupEcho(backend: Backend) async throws {
            let before = ResourceCheck.enabled ? openDescriptorCount() : 0
            let group = try LoopGroup(threads: 4, backend: backend)
            #expect(group.loops.allSatisfy { $0.backend == backend })
            #expect(Set(group.loops.map(ObjectIdentifier.init)).count == 4)
            #expect((0..<8).map { _ in ObjectIdentifier(group.next()) } == (group.loops + group.loops).map(ObjectIdentifier.init))
            let threads = try await group.onEach { _ in currentThreadID }
            #expect(Set(threads).count == 4, "each loop runs on a thread of its own")
            #expect(try await group.onEach { _ in currentThreadName } == ["RingLoop-0", "RingLoop-1", "RingLoop-2", "RingLoop-3"])

            let first = try await group.loops[0].submit {
                try await group.loops[0].serve(host: "127.0.0.1", port: 0, reusePort: true) { stream in
                    if let line = try await stream.readLine() { try await stream.writeAll(Array("\(line) from \(currentThreadID)\n".utf8)) }
                }
            }
            let port = first.localAddress.port!
            var servers = [first]
            for loop in group.loops.dropFirst() {
                servers.append(try await loop.submit {
                    try await loop.serve(host: "127.0.0.1", port: port, reusePort: true) { stream in
                        if let line = try await stream.readLine() { try await stream.writeAll(Array("\(line) from \(currentThreadID)\n".utf8)) }
                    }
                })
            }
            // Clients on a loop of their own.
            let replies = try await onLoop(backend) { _ -> [String] in
                var replies: [String] = []
                for i in 0..<40 {
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: port)
                    try await client.writeAll(Array("hello \(i)\n".utf8))
                    replies.append(try await client.readLine() ?? "")
                    try await client.close()
                }
                return replies
            }
            #expect(replies.enumerated().allSatisfy { $0.element.hasPrefix("hello \($0.offset) from ") })
            let servingThreads = Set(replies.map { $0.split(separator: " ").last! })
            #expect(servingThreads.count >= 2, "connections were spread over the loops: \(servingThreads)")
            let all = servers
            _ = try await group.onEach { loop in
                for server in all where server.loop === loop {
                    server.close()
                    await server.waitClosed()
                }
            }
            group.shutdown()
            group.shutdown()   // idempotent
            #expect(group.loops.allSatisfy { $0.isClosed })
            if ResourceCheck.enabled { #expect(openDescriptorCount() == before) }
            #expect(throws: EventLoopError.self) { _ = try LoopGroup(threads: 0) }
        }

        @Test("both servers' close, waitClosed and serveForever work from another loop of the group and from a plain task",
              arguments: allBackends)
        func serverLifecycleFromOtherThreads(backend: Backend) async throws {
            let group = try LoopGroup(threads: 2, backend: backend)
            defer { group.shutdown() }
            let home = group.loops[0], other = group.loops[1]
            let streamServer = try await home.submit {
                try await home.serve(host: "127.0.0.1", port: 0) { stream in _ = try await stream.readToEnd() }
            }
            let protocolServer = try await home.submit {
                try await home.createServer(host: "127.0.0.1", port: 0) { RecordingProtocol() }
            }
            // Called from this test's own task, on Swift's global executor.
            let serving = Task { try await protocolServer.serveForever() }
            // One open connection to each, held by the other loop.
            let clients = try await other.submit {
                [try await SocketStream.connect(to: streamServer.localAddress),
                 try await SocketStream.connect(to: protocolServer.localAddress)]
            }
            while try await home.submit({ streamServer.connectionCount + protocolServer.connectionCount }) < 2 { usleep(1000) }
            let waitsEnded = Locked<[String]>([])
            // Closed and waited on from the other loop's thread and from a plain task.
            let waiters = [
                Task {
                    try await other.submit {
                        streamServer.close()
                        await streamServer.waitClosed()
                        waitsEnded.withLock { $0.append("stream") }
                    }
                },
                Task {
                    protocolServer.close()
                    await protocolServer.waitClosed()
                    waitsEnded.withLock { $0.append("protocol") }
                },
            ]
            try await serving.value   // returns once the listener is closed
            try await other.submit { try await other.sleep(for: .milliseconds(100)) }
            #expect(waitsEnded.withLock { $0 }.isEmpty, "waitClosed returned while a connection was still open")
            #expect(try await home.submit { !streamServer.isServing && !protocolServer.isServing })
            try await other.submit { for client in clients { try await client.close() } }
            for waiter in waiters { try await waiter.value }
            #expect(Set(waitsEnded.withLock { $0 }) == ["stream", "protocol"])
        }

        @Test("handlers that await the group's other loop serve concurrent clients; closing and shutting down mid-traffic ends every client cleanly",
              arguments: allBackends)
        func loopGroupCrossLoopUnderLoad(backend: Backend) async throws {
            let before = ResourceCheck.enabled ? openDescriptorCount() : 0
            let group = try LoopGroup(threads: 2, backend: backend)
            // Each line's reply is made on the other loop: a cross-loop
            // round trip inside every request, from both loops at once.
            @Sendable func listen(_ loop: EventLoop, port: Int) async throws -> StreamServer {
                try await loop.submit {
                    try await loop.serve(host: "127.0.0.1", port: port, reusePort: true) { stream in
                        let other = group.loops.first { $0 !== loop }!
                        for try await line in stream.lines {
                            let (reply, madeOn) = try await other.submit { (String(line.reversed()), currentThreadID) }
                            try await stream.writeAll(Array("\(reply) \(madeOn) \(currentThreadID)\n".utf8))
                        }
                    }
                }
            }
            let first = try await listen(group.loops[0], port: 0)
            let port = first.localAddress.port!
            let servers = [first, try await listen(group.loops[1], port: port)]
            let clients = try LoopGroup(threads: 1, backend: backend)
            defer { clients.shutdown() }

            // 16 clients at once, 50 lines each: every reply right, and made on
            // another loop's thread than the one serving the connection.
            let wrong = try await clients.loops[0].submit {
                try await withThrowingTaskGroup(of: Int.self) { tasks in
                    for c in 0..<16 {
                        tasks.addTask {
                            let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                            var wrong = 0
                            for i in 0..<50 {
                                let line = "client \(c) line \(i)"
                                try await stream.writeAll(Array((line + "\n").utf8))
                                let reply = (try await stream.readLine() ?? "").split(separator: " ")
                                // "<line reversed> <thread that made it> <thread that served it>"
                                let text = reply.dropLast(2).joined(separator: " ")
                                if text != String(line.reversed()) || reply.count < 2 || reply[reply.count - 1] == reply[reply.count - 2] { wrong += 1 }
                            }
                            try await stream.close()
                            return wrong
                        }
                    }
                    return try await tasks.reduce(0, +)
                }
            }
            #expect(wrong == 0)

            // 8 clients that never stop sending; the servers close under them.
            let answered = Locked(0)
            let endless = Task {
                try await clients.loops[0].submit {
                    try await withThrowingTaskGroup(of: String.self) { tasks in
                        for c in 0..<8 {
                            tasks.addTask {
                                let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                                defer { stream.abort() }
                                var first = true
                                do {
                                    while true {
                                        try await stream.writeAll(Array("endless \(c)\n".utf8))
                                        guard try await stream.readLine() != nil else { return "end of stream" }
                                        if first { answered.withLock { $0 += 1 }; first = false }
                                    }
                                } catch let error as IOError where error.isDisconnect {
                                    return "disconnected"
                                }
                            }
                        }
                        return try await tasks.reduce(into: []) { $0.append($1) }
                    }
                }
            }
            while answered.withLock({ $0 }) < 8 { usleep(1_000) }
            _ = try await group.onEach { loop in
                for server in servers where server.loop === loop {
                    server.close()
                    await server.waitClosed(deadline: .milliseconds(100))
                }
            }
            group.shutdown()
            let outcomes = try await endless.value
            #expect(outcomes.count == 8)
            #expect(outcomes.allSatisfy { $0 == "end of stream" || $0 == "disconnected" }, "\(outcomes)")
            #expect(group.loops.allSatisfy { $0.isClosed })
            clients.shutdown()
            if ResourceCheck.enabled { #expect(openDescriptorCount() == before) }
        }

        @Test("a group's loops share the cores among their pools; a thread that cannot start is threadStartFailed naming it, and leaves nothing behind",
              arguments: allBackends)
        func threadStartFailures(backend: Backend) async throws {
            let cores = ThreadPool.defaultThreadCount
            for count in [1, 2, 3] {
                let group = try LoopGroup(threads: count, backend: backend)
                #expect(group.loops.allSatisfy { $0.threadPool.threadCount == max(1, cores / count) }, "\(count) loops on \(cores) cores")
                group.shutdown()
            }
            // The suite's resource check counts the descriptors afterwards:
            // every loop made before the failure is closed.
            NativeThread.failNextStart.withLock { $0 = "RingLoop-1" }
            #expect(throws: EventLoopError.threadStartFailed(purpose: "loop 1 of the group", errno: Errno(EAGAIN))) {
                _ = try LoopGroup(threads: 3, backend: backend)
            }
            NativeThread.failNextStart.withLock { $0 = "RingLoop-pool" }
            #expect(throws: EventLoopError.threadStartFailed(purpose: "the loop's thread pool", errno: Errno(EAGAIN))) {
                _ = try EventLoop(backend: backend)
            }
            #expect(NativeThread.failNextStart.withLock { $0 } == nil, "each injected failure was used once")
            let message = EventLoopError.threadStartFailed(purpose: "the loop's thread pool", errno: Errno(EAGAIN)).description
            #expect(message.contains("EAGAIN") && message.contains("ulimit -u"), "\(message)")
            // Name resolution's own pool, made on first use: the lookup fails
            // clearly, and the next one starts the pool and works.
            let (first, second) = try await onLoop(backend) { _ -> (String, String) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let port = listener.localAddress.port!
                NativeThread.failNextStart.withLock { $0 = "RingLoop-dns" }
                var outcomes: [String] = []
                for _ in 0..<2 {
                    do {
                        let stream = try await SocketStream.connect(host: "localhost", port: port)
                        try await stream.close()
                        outcomes.append("connected")
                    } catch {
                        outcomes.append("\(error)")
                    }
                }
                try await listener.close()
                return (outcomes[0], outcomes[1])
            }
            #expect(first == EventLoopError.threadStartFailed(purpose: "the name resolver", errno: Errno(EAGAIN)).description)
            #expect(second == "connected")
        }

        @Test("a group dropped without shutdown() closes its loops and their descriptors", arguments: allBackends)
        func loopGroupDropped(backend: Backend) async throws {
            // The suite's resource check counts the descriptors afterwards.
            var loops: [EventLoop] = []
            do {
                let group = try LoopGroup(threads: 2, backend: backend)
                loops = group.loops
                #expect(try await group.next().submit { 7 } == 7)
                #expect(!loops.contains { $0.isClosed })
            }
            #expect(loops.allSatisfy { $0.isClosed }, "the group's deinit stopped and closed every loop")
        }

        @Test("shutdown() from one of the group's own loops stops every loop", arguments: allBackends)
        func loopGroupShutdownFromInside(backend: Backend) async throws {
            let group = try LoopGroup(threads: 2, backend: backend)
            try await group.loops[0].submit { group.shutdown() }
            #expect(group.loops[1].isClosed, "the other loop was stopped and joined")
            // The calling loop stops once the task step returns; its thread is
            // detached, so wait for its close without a join.
            for _ in 0..<200 where !group.loops[0].isClosed { usleep(5_000) }
            #expect(group.loops[0].isClosed)
        }
    }
}
