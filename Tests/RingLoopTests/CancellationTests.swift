import Glibc
@testable import RingLoop
import Testing

/// A listener whose accept queue is full, so a further connect is never
/// answered (its SYN is dropped): a blackholed port on loopback.
func blackholedPort() throws -> (port: Int, cleanup: () -> Void) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    listen(fd, 0)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    // Fill the accept queue (backlog 0 holds one) with connections nobody accepts.
    var fillers: [Int32] = []
    for _ in 0..<3 {
        let client = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(client, $0, length) } }
        fillers.append(client)
    }
    usleep(50_000)
    return (Int(UInt16(bigEndian: address.sin_port)), { for f in fillers { close(f) }; close(fd) })
}

extension AllSuites {
    @Suite("Cancellation, timeouts and closing", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct CancellationTests {
        @Test("a cancelled read resumes promptly and steals no data from the next read", arguments: allBackends)
        func cancelledReadStealsNothing(backend: Backend) async throws {
            let (elapsed, outcome, next) = try await onLoop(backend) { loop -> (Duration, String, [UInt8]) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                let pending = loop.spawn { try await client.read(upTo: 100) }
                try await loop.sleep(for: .milliseconds(20))   // the read is in flight
                let start = LoopInstant.now
                pending.cancel()
                var outcome = "returned"
                do { _ = try await pending.value } catch is CancellationError { outcome = "cancelled" }
                let elapsed = LoopInstant.now - start
                try await server.writeAll(Array("after".utf8))
                let next = try await client.read(upTo: 100)
                try await client.close(); try await server.close(); try await listener.close()
                return (elapsed, outcome, next)
            }
            #expect(outcome == "cancelled")
            #expect(elapsed < .milliseconds(100))
            #expect(next == Array("after".utf8))
        }

        @Test("a cancelled accept ends with CancellationError and the listener still works", arguments: allBackends)
        func cancelledAccept(backend: Backend) async throws {
            let (outcome, later) = try await onLoop(backend) { loop -> (String, Bool) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let pending = loop.spawn { try await listener.accept() }
                try await loop.sleep(for: .milliseconds(10))
                pending.cancel()
                var outcome = "accepted"
                do { _ = try await pending.value } catch is CancellationError { outcome = "cancelled" }
                let acceptor = loop.spawn { try await listener.accept() }
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let accepted = try await acceptor.value
                // The later accept got a working connection.
                try await client.writeAll(Array("later".utf8))
                let later = try await accepted.read(upTo: 16) == Array("later".utf8)
                try await accepted.close(); try await client.close(); try await listener.close()
                return (outcome, later)
            }
            #expect(outcome == "cancelled")
            #expect(later)
        }

        @Test("withTimeout on a connect to a blackholed port throws TimeoutError", arguments: allBackends)
        func timeoutOnBlackhole(backend: Backend) async throws {
            let (port, cleanup) = try blackholedPort()
            defer { cleanup() }
            let (error, inFlight) = try await onLoop(backend) { loop -> ((any Error)?, Int) in
                do {
                    _ = try await withTimeout(.milliseconds(150)) {
                        try await SocketStream.connect(host: "127.0.0.1", port: port)
                    }
                } catch {
                    return (error, loop.operations.inFlight)
                }
                return (nil, loop.operations.inFlight)
            }
            #expect(error is TimeoutError)
            #expect(inFlight == 0, "the timed-out connect was cancelled and reaped")
        }

        @Test("nested timeouts: only the one that expires fires", arguments: allBackends)
        func nestedTimeouts(backend: Backend) async throws {
            let (inner, outer) = try await onLoop(backend) { loop -> (String, String) in
                // Inner expires first: the outer block sees TimeoutError from inside and carries on.
                let inner: String = try await withTimeout(.seconds(10)) {
                    do {
                        try await withTimeout(.milliseconds(20)) { try await loop.sleep(for: .seconds(5)) }
                        return "no timeout"
                    } catch is TimeoutError {
                        try await loop.sleep(for: .milliseconds(5))   // the outer scope is not cancelled
                        return "inner fired"
                    }
                }
                // Outer expires first: the inner (longer) timeout never fires.
                var outer = "none"
                do {
                    try await withTimeout(.milliseconds(20)) {
                        try await withTimeout(.seconds(10)) { try await loop.sleep(for: .seconds(5)) }
                    }
                } catch let error as TimeoutError {
                    outer = error.duration == .milliseconds(20) ? "outer fired" : "inner fired"
                }
                return (inner, outer)
            }
            #expect(inner == "inner fired")
            #expect(outer == "outer fired")
        }

        /// A loop-thread class, deliberately not `Sendable`.
        final class Collector: TransportProtocol {
            var received: [UInt8] = []
            func dataReceived(_ bytes: UnsafeRawBufferPointer) throws { received += bytes }
        }

        @Test("withTimeout hands back a result that is not Sendable (a protocol object from createConnection)", arguments: allBackends)
        func timeoutWithNonSendableResult(backend: Backend) async throws {
            let received = try await onLoop(backend) { loop -> [UInt8] in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let port = listener.localAddress.port!
                let (transport, collector) = try await withTimeout(.seconds(5)) {
                    try await loop.createConnection(host: "127.0.0.1", port: port) { Collector() }
                }
                let server = try await listener.accept()
                try await server.writeAll(Array("over the timeout".utf8))
                try await waitUntil(loop) { collector.received.count == 16 }
                transport.close()
                try await server.close()
                try await listener.close()
                return collector.received
            }
            #expect(received == Array("over the timeout".utf8))
        }

        @Test("close with a read in flight ends the read and leaks no descriptor", arguments: allBackends)
        func closeWithReadInFlight(backend: Backend) async throws {
            let before = openDescriptorCount()
            let code = try await onLoop(backend) { loop -> IOError.Code? in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                let pending = loop.spawn { try await client.read(upTo: 10) }
                try await loop.sleep(for: .milliseconds(10))
                try await client.close()
                var code: IOError.Code?
                do { _ = try await pending.value } catch let error as IOError { code = error.code }
                try await server.close()
                try await listener.close()
                return code
            }
            #expect(code == .closed)
            #expect(openDescriptorCount() == before)
        }

        @Test("closing the loop with operations in flight: no crash, no leak", arguments: allBackends)
        func teardownWithOperationsInFlight(backend: Backend) async throws {
            let before = openDescriptorCount()
            let outcomes = Recorder<String>()
            try await onNewThread {
                let loop = try EventLoop(backend: backend)
                _ = try loop.runUntilComplete { () async throws -> Void in
                    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                    let server = try await listener.accept()
                    for stream in [client, server] {
                        loop.spawn {
                            do { _ = try await stream.read(upTo: 10) } catch { outcomes.append("\(type(of: error))") }
                            try? await stream.close()
                        }
                    }
                    loop.spawn {
                        do { _ = try await listener.accept() } catch { outcomes.append("\(type(of: error))") }
                        try? await listener.close()
                    }
                    try await loop.sleep(for: .milliseconds(10))
                }
                // Two transports and an acceptor, each with an operation in the kernel.
                #expect(loop.handlers.count == 3)
                try loop.close()
                #expect(loop.handlers.count == 0)
                #expect(loop.operations.inFlight == 0)
            }
            #expect(outcomes.count == 3)
            #expect(openDescriptorCount() == before)
        }

        @Test("an 8-entry ring completes 1,000 NOPs submitted at once: the SQ really fills, the CQ really overflows",
              arguments: uringOnly)
        func smallRingManyNops(backend: Backend) async throws {
            let (results, sqFull, cqOverflow) = try await onLoop(backend, ringEntries: 8) { loop -> ([Int32], Int, Int) in
                // The kernel takes SQEs as fast as they come here, so a full SQ is
                // always emptied by an early submit; make a few of those fail as
                // EBUSY would, so operations really wait in the overflow queue.
                if case .uring(let ring) = loop.io { ring.injectedBusySubmits = 20 }
                let results = try await withThrowingTaskGroup(of: Int32.self) { group in
                    for _ in 0..<1_000 { group.addTask { try await loop.perform("nop") { _ in .nop } } }
                    var results: [Int32] = []
                    for try await r in group { results.append(r) }
                    return results
                }
                guard case .uring(let ring) = loop.io else { return (results, 0, 0) }
                return (results, ring.sqFullEvents, ring.cqOverflowEvents)
            }
            #expect(results.count == 1_000)
            #expect(results.allSatisfy { $0 == 0 })
            #expect(sqFull > 0, "operations waited in the overflow queue")
            #expect(cqOverflow > 0, "the kernel held completions in its overflow list")
        }
    }
}

extension AllSuites {
    @Suite("Kernel pressure and signals", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct PressureTests {
        @Test("io_uring_enter failing with EINTR, EAGAIN and EBUSY loses no operation")
        func enterErrors() async throws {
            let results = try await onLoop(.uring) { loop -> [Int32] in
                guard case .uring(let ring) = loop.io else { return [] }
                ring.injectedEnterResults = [-EINTR, -EAGAIN, -EBUSY, -EINTR, -EAGAIN, -EBUSY]
                return try await withThrowingTaskGroup(of: Int32.self) { group in
                    for _ in 0..<50 { group.addTask { try await loop.perform("nop") { _ in .nop } } }
                    var results: [Int32] = []
                    for try await r in group { results.append(r) }
                    #expect(ring.injectedEnterResults.isEmpty, "every injected failure was consumed")
                    return results
                }
            }
            #expect(results == Array(repeating: 0, count: 50))
        }

        @Test("signals interrupting a blocked poll (EINTR) do not disturb timers", arguments: allBackends)
        func signalsDuringPoll(backend: Backend) async throws {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { _ in }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0  // no SA_RESTART: the wait really returns EINTR
            sigaction(SIGUSR1, &action, nil)
            let (interrupted, elapsed) = try await onLoop(backend) { loop -> (Int, Duration) in
                // Threads made by the test runner inherit libdispatch's mask, which
                // blocks SIGUSR1: unblock it here, or no wait is ever interrupted.
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, SIGUSR1)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                defer { pthread_sigmask(SIG_BLOCK, &set, nil) }
                let target = pthread_self()
                let signaller = try onNewThreadSync {
                    for _ in 0..<10 {
                        usleep(10_000)
                        pthread_kill(target, SIGUSR1)
                    }
                }
                let start = LoopInstant.now
                try await loop.sleep(for: .milliseconds(150))
                let elapsed = LoopInstant.now - start
                try await loop.offload { signaller() }
                return (loop.io.interruptedWaits, elapsed)
            }
            #expect(interrupted > 0, "the signals really interrupted the wait")
            // The timer neither fired early nor was lost to the interruptions.
            #expect(elapsed >= .milliseconds(150) && elapsed < .seconds(10))
        }

        @Test("writing to a peer that went away is an error, never SIGPIPE", arguments: allBackends)
        func noSigpipe(backend: Backend) async throws {
            let code = try await onLoop(backend) { loop -> IOError.Code? in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                try await server.close()
                try await listener.close()
                let chunk = try IOBuffer(capacity: 64 * 1024)
                try chunk.setCount(chunk.capacity)
                for _ in 0..<1000 {
                    do { try await client.writeAll(chunk) } catch let error as IOError {
                        try await client.close()
                        return error.code
                    }
                }
                return nil
            }
            #expect(code == .brokenPipe || code == .connectionReset)
        }
    }
}

extension AllSuites {
    @Suite("Ring memory", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct RingMemoryTests {
        @Test("the io_uring rings are mapped MADV_DONTFORK")
        func ringsAreDontFork() async throws {
            let flags = try await withLoop(.uring) { _ -> [String] in
                // /proc/self/smaps: each io_uring mapping's VmFlags must carry "dc"
                // (do not copy on fork).
                guard let file = fopen("/proc/self/smaps", "r") else { return [] }
                defer { fclose(file) }
                var flags: [String] = []
                var inRing = false
                var line = [CChar](repeating: 0, count: 4096)
                while fgets(&line, Int32(line.count), file) != nil {
                    let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                    if text.first?.isHexDigit == true, text.contains("-") {
                        inRing = text.contains("io_uring")
                    } else if inRing, text.hasPrefix("VmFlags:") {
                        flags.append(text)
                    }
                }
                return flags
            }
            #expect(!flags.isEmpty, "the loop's ring mappings are visible")
            #expect(flags.allSatisfy { $0.split(separator: " ").contains("dc") })
        }
    }
}

extension AllSuites {
    @Suite("Linked timeouts", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct LinkedTimeoutTests {
        @Test("a read with a timeout times out, and the stream keeps working", arguments: allBackends)
        func readTimeout(backend: Backend) async throws {
            let (code, elapsed, later, inFlight) = try await onLoop(backend) { loop -> (IOError.Code?, Duration, [UInt8], Int) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                let buffer = try IOBuffer(capacity: 16)
                let start = LoopInstant.now
                var code: IOError.Code?
                do { _ = try await client.read(into: buffer, timeout: .milliseconds(30)) } catch let e as IOError { code = e.code }
                let elapsed = LoopInstant.now - start
                try await server.writeAll(Array("late".utf8))
                _ = try await client.read(into: buffer, timeout: .seconds(5))
                let later = buffer.bytes
                try await client.close(); try await server.close(); try await listener.close()
                return (code, elapsed, later, loop.operations.inFlight)
            }
            #expect(code == .timedOut)
            #expect(elapsed >= .milliseconds(29))
            #expect(later == Array("late".utf8))
            #expect(inFlight == 0)
        }
    }
}
