import Glibc
@testable import RingLoop
import Synchronization
import Testing

extension AllSuites {
    /// LoopGroup: a loop per thread, SO_REUSEPORT servers, cross-loop calls,
    /// shutdown, and threads that cannot start.
    @Suite("Loop groups", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct LoopGroupTests {
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
