import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    @Suite("Backends", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct BackendTests {
        @Test("RINGLOOP_BACKEND values parse; anything else is a clear error")
        func environmentParsing() throws {
            #expect(try Backend.parse(environmentValue: nil) == .auto)
            #expect(try Backend.parse(environmentValue: "") == .auto)
            #expect(try Backend.parse(environmentValue: "uring") == .uring)
            #expect(try Backend.parse(environmentValue: "EPOLL") == .epoll)
            #expect(throws: EventLoopError.invalidArgument("RINGLOOP_BACKEND=kqueue; expected auto, uring or epoll")) {
                try Backend.parse(environmentValue: "kqueue")
            }
        }

        @Test("RINGLOOP_URING_OPTIONS items parse; an unknown or malformed item is a clear error, also at loop creation")
        func uringOptionsParsing() async throws {
            let options = try URingOptions.parse("no-multishot,file-slice=2,batch-wait=0,fixed-files")
            #expect(!options.multishot && options.fileSubmitSlice == 2 && options.batchWaitMicroseconds == 0 && options.fixedFiles)
            #expect(try URingOptions.parse("").fileSubmitSlice == URingOptions().fileSubmitSlice)
            for bad in ["file-slice=8;batch-wait=0", "no-multishots", "file-slice=-1", "batch-wait=soon"] {
                do {
                    _ = try URingOptions.parse(bad)
                    Issue.record("\(bad) was accepted")
                } catch {
                    #expect("\(error)".contains("unknown item \"\(bad)\""), "\(error)")
                }
            }
            let refused = try await onNewThread { () -> String in
                setenv("RINGLOOP_URING_OPTIONS", "no-ring-fdd", 1)
                defer { unsetenv("RINGLOOP_URING_OPTIONS") }
                do {
                    let loop = try EventLoop()
                    try loop.close()
                    return "created"
                } catch {
                    return "\(error)"
                }
            }
            #expect(refused.contains("RINGLOOP_URING_OPTIONS") && refused.contains("no-ring-fdd"), "\(refused)")
        }

        @Test("RINGLOOP_BACKEND overrides the default backend of a loop")
        func environmentOverride() async throws {
            let chosen = try await onNewThread { () -> [Backend] in
                var chosen: [Backend] = []
                for value in ["epoll", "uring"] {
                    setenv(Backend.environmentVariable, value, 1)
                    defer { unsetenv(Backend.environmentVariable) }
                    let loop = try EventLoop()
                    chosen.append(loop.backend)
                    try loop.close()
                }
                return chosen
            }
            #expect(chosen == [.epoll, .uring])
        }

        @Test("forcing .uring where the kernel refuses it throws a clear error; .auto falls back")
        func uringUnavailable() async throws {
            let (error, fallback, reason) = try await onNewThread { () -> (EventLoopError?, Backend, String?) in
                var failure: EventLoopError?
                do {
                    _ = try EventLoop(backend: .uring, debug: false, threadPool: nil, ringEntries: 64,
                                      logger: .init(label: "t"), uringProbeFailure: { EPERM })
                } catch let error as EventLoopError { failure = error }
                let auto = try EventLoop(backend: .auto, debug: false, threadPool: nil, ringEntries: 64,
                                         logger: .init(label: "t"), uringProbeFailure: { ENOSYS })
                defer { try? auto.close() }
                return (failure, auto.backend, auto.backendFallbackReason)
            }
            guard case .backendUnavailable(.uring, let message) = error else {
                Issue.record("expected backendUnavailable(.uring), got \(String(describing: error))")
                return
            }
            #expect(message.contains("io_uring_setup failed: EPERM"))
            #expect(fallback == .epoll)
            #expect(reason?.contains("ENOSYS") == true)
        }

        @Test("bad ring sizes are rejected by name")
        func badRingEntries() {
            #expect(throws: EventLoopError.invalidArgument("ringEntries must be in 1...32768, got 0")) {
                _ = try EventLoop(backend: .uring, ringEntries: 0)
            }
        }

        @Test("NOP and TIMEOUT operations complete through the backend", arguments: allBackends)
        func nopAndTimeout(backend: Backend) async throws {
            let (nop, timeout, elapsed) = try await withLoop(backend) { loop in
                try loop.runUntilComplete { () async throws -> (Int32, Int32, Duration) in
                    let nop = try await loop.perform("nop") { _ in .nop }
                    let start = LoopInstant.now
                    let timeout = try await loop.perform("timeout") { scratch in
                        scratch.timespec.pointee = .init(tv_sec: 0, tv_nsec: 20_000_000)
                        return .timeout(scratch.timespec)
                    }
                    return (nop, timeout, LoopInstant.now - start)
                }
            }
            #expect(nop == 0)
            #expect(timeout == -ETIME)
            #expect(elapsed >= .milliseconds(19))
        }

        @Test("Task cancellation cancels an in-flight operation and resumes at its final completion", arguments: allBackends)
        func cancellationSendsAsyncCancel(backend: Backend) async throws {
            let (result, inFlight) = try await withLoop(backend) { loop in
                try loop.runUntilComplete { () async throws -> (Int32, Int) in
                    let task = loop.spawn { () async throws -> Int32 in
                        try await loop.perform("timeout") { scratch in
                            scratch.timespec.pointee = .init(tv_sec: 3600, tv_nsec: 0)
                            return .timeout(scratch.timespec)
                        }
                    }
                    try await loop.sleep(for: .milliseconds(5))
                    task.cancel()
                    let result = try await task.value
                    return (result, loop.operations.inFlight)
                }
            }
            #expect(result == -ECANCELED)
            #expect(inFlight == 0)
        }

        @Test("closing a loop with operations in flight drains them", arguments: allBackends)
        func teardownDrains(backend: Backend) async throws {
            let results = Recorder<Int32>()
            try await onNewThread {
                let loop = try EventLoop(backend: backend)
                for _ in 0..<10 {
                    loop.spawn {
                        let r = try await loop.perform("timeout") { scratch in
                            scratch.timespec.pointee = .init(tv_sec: 3600, tv_nsec: 0)
                            return .timeout(scratch.timespec)
                        }
                        results.append(r)
                    }
                }
                try loop.callLater(.milliseconds(10)) { loop.stop() }
                try loop.runForever()
                #expect(loop.operations.inFlight == 10)
                try loop.close()
                #expect(loop.operations.inFlight == 0)
            }
            #expect(results.all == Array(repeating: -ECANCELED, count: 10))
        }

        @Test("a ring of 8 entries takes 1,000 operations in flight", arguments: uringOnly)
        func smallRingOverflowQueue(backend: Backend) async throws {
            let results = try await onNewThread {
                let loop = try EventLoop(backend: backend, ringEntries: 8)
                defer { try? loop.close() }
                return try loop.runUntilComplete { () async throws -> [Int32] in
                    var tasks: [LoopTask<Int32>] = []
                    for _ in 0..<1_000 {
                        tasks.append(loop.spawn {
                            try await loop.perform("timeout") { scratch in
                                scratch.timespec.pointee = .init(tv_sec: 0, tv_nsec: 5_000_000)
                                return .timeout(scratch.timespec)
                            }
                        })
                    }
                    var results: [Int32] = []
                    for task in tasks { results.append(try await task.value) }
                    return results
                }
            }
            #expect(results.count == 1_000)
            #expect(results.allSatisfy { $0 == -ETIME })
        }

        @Test("an example program reports the backend RINGLOOP_BACKEND selects")
        func examplesReportBackend() async throws {
            // Covered end to end by .ci/run running the Hello example; here the
            // in-process equivalent: the default loop honours the variable.
            let backend = try await onNewThread { () -> Backend in
                setenv(Backend.environmentVariable, "epoll", 1)
                defer { unsetenv(Backend.environmentVariable) }
                return try EventLoop.run { try EventLoop.running().backend }
            }
            #expect(backend == .epoll)
        }

        @Test("a receive that fills its buffer ends batching: the next wait returns at the first completion; smaller receives still batch",
              arguments: allBackends)
        func bulkReceiveEndsBatching(backend: Backend) async throws {
            // 1 KiB receive buffers, so an 8 KiB write arrives as full buffers.
            let (bulk, small) = try await onLoop(backend, uring: URingOptions(), receiveBuffers: .init(count: 32, size: 1024)) {
                loop -> ([(receives: Int, bulk: Bool, expected: Int)], [(receives: Int, bulk: Bool, expected: Int)]) in
                var polls: [(receives: Int, bulk: Bool, expected: Int)] = []
                loop.pollObserver = { _, expected in polls.append((loop.receivesThisPoll, loop.bulkReceiveThisPoll, expected)) }
                defer { loop.pollObserver = nil }
                let peer = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { peer }
                let (client, _) = try await loop.createConnection(host: "127.0.0.1", port: server.localAddress.port!) { RecordingProtocol() }
                try await waitUntil(loop) { server.connectionCount == 1 }
                polls.removeAll()
                try client.write([UInt8](repeating: 1, count: 8 * 1024))
                try await waitUntil(loop) { peer.received.count == 8 * 1024 }
                let bulk = polls
                for round in 0..<5 {
                    try client.write([UInt8](repeating: 2, count: 100))
                    let target = peer.received.count + 100
                    try await waitUntil(loop) { peer.received.count == target }
                    // The first round's polls may still see the bulk batch.
                    if round == 0 { polls.removeAll() }
                }
                let small = polls
                client.close()
                server.close()
                server.closeClients()
                await server.waitClosed()
                return (bulk, small)
            }
            // Every wait asks for what the rule says: one completion after a
            // full-buffer receive, as many as the last batch brought otherwise.
            for poll in bulk + small { #expect(poll.expected == (poll.bulk ? 1 : poll.receives), "\(poll)") }
            #expect(bulk.contains { $0.bulk && $0.receives >= 2 }, "a batch of full receives, whose wait expects one: \(bulk)")
            #expect(small.contains { $0.receives >= 1 } && small.allSatisfy { !$0.bulk }, "\(small)")
        }

        @Test("after a burst of receives, an idle loop with no timer sleeps instead of spinning through batch waits", arguments: allBackends)
        func idleAfterBurst(backend: Backend) async throws {
            let group = try LoopGroup(threads: 1, backend: backend)
            defer { group.shutdown() }
            let loop = group.loops[0]
            // 16 connections echo one message each, all in the same iterations,
            // so the last receive batches before going idle hold many receives
            // (what io_uring's batched wait then expects again).
            let (server, clients) = try await loop.submit { () -> (UnsafeSendable<Server>, UnsafeSendable<[RecordingProtocol]>) in
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) {
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                var clients: [RecordingProtocol] = []
                for _ in 0..<16 {
                    clients.append(try await loop.createConnection(host: "127.0.0.1", port: server.localAddress.port!) { RecordingProtocol() }.1)
                }
                for client in clients { try client.transport!.write([UInt8](repeating: 7, count: 100)) }
                try await waitUntil(loop) { clients.allSatisfy { $0.received.count == 100 } }
                return (UnsafeSendable(server), UnsafeSendable(clients))
            }
            // Idle, with no timer on the loop: it should block in one wait. The
            // counts are read on the loop's thread; each read wakes it once or twice.
            let before = try await loop.submit { loop.iterations }
            // On a thread of its own: Swift's global executor would open a timerfd
            // of its own for a Task.sleep, and the test counts descriptors.
            _ = try await onNewThread { usleep(300_000) }
            let after = try await loop.submit { loop.iterations }
            #expect(after - before < 100, "the idle loop ran \(after - before) iterations in 300 ms")
            try await loop.submit {
                for client in clients.value { client.transport?.close() }
                server.value.close()
                try await waitUntil(loop) { server.value.connectionCount == 0 && clients.value.allSatisfy { $0.lostCount == 1 } }
                await server.value.waitClosed()
            }
        }
    }
}
