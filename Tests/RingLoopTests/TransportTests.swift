import Glibc
@testable import RingLoop
import Synchronization
import Testing

/// Records every callback in order; echoes if asked.
final class RecordingProtocol: TransportProtocol, @unchecked Sendable {
    var events: [String] = []
    var received: [UInt8] = []
    var transport: Transport?
    var lostError: (any Error)?
    var echo = false
    var keepOpenOnEOF = false
    var throwOnData = false
    var pauseReadingOnData = false
    var dataCalls = 0
    var pauses = 0, resumes = 0
    var lostCount = 0
    var onLost: (() -> Void)?

    func connectionMade(_ transport: Transport) {
        self.transport = transport
        events.append("made")
    }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) throws {
        if events.last != "data" { events.append("data") }
        dataCalls += 1
        if pauseReadingOnData { transport?.pauseReading() }
        if throwOnData { throw IOError(operation: "test", errno: nil, detail: "thrown by dataReceived") }
        received += bytes
        if echo { try transport?.write(bytes) }
    }
    func eofReceived() -> Bool {
        events.append("eof")
        return keepOpenOnEOF
    }
    func connectionLost(_ error: (any Error)?) {
        events.append("lost")
        lostCount += 1
        lostError = error
        onLost?()
    }
    func pauseWriting() { pauses += 1; events.append("pause") }
    func resumeWriting() { resumes += 1; events.append("resume") }
}

/// Receives on a blocking socket until `count` bytes came or the peer
/// stopped (run it off the loop, with `loop.offload`).
func receiveBlocking(_ fd: Int32, count: Int) -> [UInt8] {
    var all: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while all.count < count {
        let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { break }
        all += chunk[0..<n]
    }
    return all
}

/// Waits on the loop (iterations, not wall time) until `condition` holds.
func waitUntil(_ loop: EventLoop, limit: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let deadline = LoopInstant.now + limit
    while !condition() {
        if LoopInstant.now > deadline { throw IOError(operation: "waitUntil", errno: Errno(ETIMEDOUT), detail: "condition never held") }
        try await loop.sleep(for: .milliseconds(1))
    }
}

/// The half-close tests' set-up: a server whose protocol keeps its
/// connection open at the peer's EOF, and a stream client connected to it.
/// Closes the client and the server after `body`.
nonisolated(nonsending) func withKeptOpenConnection<T>(
    _ loop: EventLoop, _ body: (RecordingProtocol, SocketStream) async throws -> T
) async throws -> T {
    let recorder = RecordingProtocol()
    recorder.keepOpenOnEOF = true
    let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
    let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
    let result = try await body(recorder, client)
    try await client.close()
    server.close()
    await server.waitClosed()
    return result
}

/// Loops with the io_uring fallbacks forced: every combination a kernel
/// without multishot or buffer rings would give.
let uringVariants: [(String, URingOptions)] = [
    ("multishot over a buffer ring", URingOptions()),
    ("single-shot over a buffer ring", URingOptions(multishot: false)),
    ("single-shot into pooled buffers", URingOptions(bufferRing: false, multishot: false)),
    ("multishot with sockets in the fixed-file table", URingOptions(fixedFiles: true)),
]

func onLoop<T: Sendable>(
    _ backend: Backend, uring options: URingOptions, receiveBuffers: ReceiveBufferConfiguration = .default,
    _ body: @escaping @Sendable (EventLoop) async throws -> T
) async throws -> T {
    try await onNewThread {
        let loop = try EventLoop(backend: backend, debug: nil, threadPool: nil, ringEntries: 256, receiveBuffers: receiveBuffers,
                                 logger: .init(label: "test"), uringOptions: options, uringProbeFailure: nil)
        defer {
            try? loop.close()
            expectClosedClean(loop)
        }
        return try loop.runUntilComplete { try await body(loop) }
    }
}

extension AllSuites {
    @Suite("Transports and protocols", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct TransportTests {
        @Test("callback order on an orderly close by the peer: made, data, eof, lost(nil) once", arguments: allBackends)
        func orderlyClose(backend: Backend) async throws {
            let before = openDescriptorCount()
            let (events, received, lostNil) = try await onLoop(backend) { loop -> ([String], [UInt8], Bool) in
                let recorder = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                try await client.writeAll(Array("hello".utf8))
                try await client.shutdown(.write)
                try await waitUntil(loop) { recorder.lostCount > 0 }
                try await client.close()
                server.close()
                await server.waitClosed()
                return (recorder.events, recorder.received, recorder.lostError == nil)
            }
            #expect(events == ["made", "data", "eof", "lost"])
            #expect(received == Array("hello".utf8))
            #expect(lostNil)
            #expect(openDescriptorCount() == before)
        }

        @Test("pauseReading: no dataReceived until resumeReading, then the held bytes in order, eof and lost once",
              arguments: allBackends)
        func pauseAndResumeReading(backend: Backend) async throws {
            // On io_uring, each way of receiving holds bytes differently while paused.
            for (name, options) in backend == .uring ? uringVariants : [("epoll", URingOptions())] {
                let (callsWhilePaused, readingWhilePaused, events, received) = try await onLoop(backend, uring: options) {
                    loop -> (Int, Bool, [String], [UInt8]) in
                    let recorder = RecordingProtocol()
                    recorder.pauseReadingOnData = true
                    let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                    try await client.writeAll(Array("first;".utf8))
                    try await waitUntil(loop) { recorder.dataCalls == 1 }
                    for part in ["second;", "third;"] {   // separate segments, each arriving while paused
                        try await client.writeAll(Array(part.utf8))
                        try await loop.sleep(for: .milliseconds(5))
                    }
                    try await client.shutdown(.write)
                    try await loop.sleep(for: .milliseconds(20))
                    let callsWhilePaused = recorder.dataCalls
                    let transport = try #require(recorder.transport)
                    let readingWhilePaused = transport.isReading
                    recorder.pauseReadingOnData = false
                    transport.resumeReading()
                    try await waitUntil(loop) { recorder.lostCount > 0 }
                    try await client.close()
                    server.close()
                    await server.waitClosed()
                    return (callsWhilePaused, readingWhilePaused, recorder.events, recorder.received)
                }
                #expect(callsWhilePaused == 1, "\(name): no dataReceived while paused")
                #expect(!readingWhilePaused, "\(name)")
                #expect(String(decoding: received, as: UTF8.self) == "first;second;third;", "\(name)")
                #expect(events == ["made", "data", "eof", "lost"], "\(name)")
            }
        }

        @Test("callback order when the peer resets: lost carries connectionReset", arguments: allBackends)
        func peerReset(backend: Backend) async throws {
            let (events, code) = try await onLoop(backend) { loop -> ([String], IOError.Code?) in
                let recorder = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                try await client.writeAll(Array("x".utf8))
                try await waitUntil(loop) { recorder.events.contains("data") }
                try client.setLinger(seconds: 0)  // close sends RST
                try await client.close()
                try await waitUntil(loop) { recorder.lostCount > 0 }
                server.close()
                await server.waitClosed()
                return (recorder.events, (recorder.lostError as? IOError)?.code)
            }
            #expect(events.first == "made")
            #expect(events.last == "lost")
            #expect(events.filter { $0 == "lost" }.count == 1)
            #expect(code == .connectionReset)
        }

        @Test("abort() and close() from the protocol side: lost(nil) exactly once, the peer sees EOF", arguments: allBackends)
        func localCloseAndAbort(backend: Backend) async throws {
            let before = openDescriptorCount()
            let results = try await onLoop(backend) { loop -> [[String]] in
                var results: [[String]] = []
                for useAbort in [false, true] {
                    let recorder = RecordingProtocol()
                    let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                    try await waitUntil(loop) { recorder.transport != nil }
                    try recorder.transport!.write(Array("bye".utf8))
                    if useAbort { recorder.transport!.abort() } else { recorder.transport!.close() }
                    recorder.transport!.close()  // idempotent
                    let reply = try await client.readToEnd()
                    try await waitUntil(loop) { recorder.lostCount > 0 }
                    results.append(recorder.events + [useAbort ? "aborted" : String(decoding: reply, as: UTF8.self)])
                    #expect(recorder.lostError == nil)
                    #expect(throws: IOError.self) { try recorder.transport!.write(Array("late".utf8)) }
                    try await client.close()
                    server.close()
                    await server.waitClosed()
                }
                return results
            }
            #expect(results[0] == ["made", "lost", "bye"])  // close() sends what is queued first
            #expect(results[1] == ["made", "lost", "aborted"])
            #expect(openDescriptorCount() == before)
        }

        @Test("half-close: eofReceived returning true keeps the connection open for writing", arguments: allBackends)
        func halfClose(backend: Backend) async throws {
            let reply = try await onLoop(backend) { loop -> [UInt8] in
                try await withKeptOpenConnection(loop) { recorder, client in
                    try await client.shutdown(.write)
                    try await waitUntil(loop) { recorder.events.contains("eof") }
                    try recorder.transport!.write(Array("after eof".utf8))
                    recorder.transport!.close()
                    return try await client.readToEnd()
                }
            }
            #expect(reply == Array("after eof".utf8))
        }

        @Test("half-close both ways closes: writeEOF after a kept-open EOF ends the connection", arguments: allBackends)
        func halfCloseThenWriteEOF(backend: Backend) async throws {
            let before = openDescriptorCount()
            let (reply, events, lostError) = try await onLoop(backend) { loop -> ([UInt8], [String], String?) in
                try await withKeptOpenConnection(loop) { recorder, client in
                    try await client.shutdown(.write)
                    try await waitUntil(loop) { recorder.events.contains("eof") }
                    try recorder.transport!.write(Array("last words".utf8))
                    recorder.transport!.writeEOF()
                    let reply = try await client.readToEnd()
                    // No close() from the protocol: nothing can pass either way now.
                    try await waitUntil(loop) { recorder.lostCount > 0 }
                    return (reply, recorder.events, recorder.lostError.map { "\($0)" })
                }
            }
            #expect(reply == Array("last words".utf8))
            #expect(events == ["made", "eof", "lost"])
            #expect(lostError == nil)
            #expect(openDescriptorCount() == before)
        }

        @Test("half-close both ways closes: a kept-open EOF after writeEOF ends the connection", arguments: allBackends)
        func writeEOFThenHalfClose(backend: Backend) async throws {
            let before = openDescriptorCount()
            let (reply, events) = try await onLoop(backend) { loop -> ([UInt8], [String]) in
                try await withKeptOpenConnection(loop) { recorder, client in
                    try await waitUntil(loop) { recorder.transport != nil }
                    try recorder.transport!.write(Array("first".utf8))
                    recorder.transport!.writeEOF()
                    let reply = try await client.readToEnd()
                    #expect(recorder.lostCount == 0)  // still open for receiving
                    try await client.writeAll(Array("then yours".utf8))
                    try await client.shutdown(.write)
                    try await waitUntil(loop) { recorder.lostCount > 0 }
                    return (reply, recorder.events)
                }
            }
            #expect(reply == Array("first".utf8))
            #expect(events == ["made", "data", "eof", "lost"])
            #expect(openDescriptorCount() == before)
        }

        @Test("createConnection drives a client protocol; bytes echo back intact", arguments: allBackends)
        func clientProtocol(backend: Backend) async throws {
            let message = pattern(300_000, seed: 3)
            let received = try await onLoop(backend) { loop -> [UInt8] in
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) {
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                let (transport, client) = try await loop.createConnection(host: "127.0.0.1", port: server.localAddress.port!) {
                    RecordingProtocol()
                }
                try transport.write(message)
                try await waitUntil(loop) { client.received.count >= message.count }
                transport.close()
                try await waitUntil(loop) { client.lostCount > 0 }
                server.close()
                server.closeClients()
                await server.waitClosed()
                return client.received
            }
            #expect(received == message)
        }

        @Test("Unix-domain server and connection work the same way", arguments: allBackends)
        func unixServer(backend: Backend) async throws {
            let path = temporaryPath("transport.sock")
            let received = try await onLoop(backend) { loop -> [UInt8] in
                let server = try await loop.createServer(unixPath: path) {
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                let (transport, client) = try await loop.createConnection(unixPath: path) { RecordingProtocol() }
                try transport.write(Array("unix".utf8))
                try await waitUntil(loop) { client.received.count >= 4 }
                transport.close()
                server.close()
                server.closeClients()
                await server.waitClosed()
                return client.received
            }
            #expect(received == Array("unix".utf8))
            #expect(access(path, F_OK) != 0)  // the socket file is removed at close
        }

        @Test("receiving works whatever the kernel offers: multishot or not, buffer ring or pool",
              .enabled(if: Capabilities.uringUnavailable == nil, "io_uring is not allowed here"), arguments: uringVariants.indices)
        func uringFallbacks(variant: Int) async throws {
            let (name, options) = uringVariants[variant]
            let message = pattern(1 << 20, seed: UInt64(variant))
            let (received, summary) = try await onLoop(.uring, uring: options) { loop -> ([UInt8], String) in
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) {
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                let reader = loop.spawn { try await stream.readToEnd(limit: message.count) }
                try await stream.writeAll(message)
                let received = try await reader.value
                try await stream.close()
                server.close()
                server.closeClients()
                await server.waitClosed()
                return (received, loop.backendDescription)
            }
            #expect(received == message, "\(name)")
            if !options.multishot { #expect(summary.contains("multishot recv no"), "\(summary)") }
            if !options.bufferRing { #expect(summary.contains("pooled receives"), "\(summary)") }
        }

        @Test("ENOBUFS: 4 receive buffers under 64 connections × 1 MiB lose no byte, do not stall, all come back",
              arguments: allBackends)
        func receiveBufferExhaustion(backend: Backend) async throws {
            let (good, inUse, waited) = try await onLoop(backend, uring: URingOptions(),
                                                         receiveBuffers: .init(count: 4, size: 16 * 1024)) { loop -> (Int, Int, Bool) in
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) {
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                let port = server.localAddress.port!
                let waitedForBuffers = Flag()
                let watcher = loop.spawn {
                    while !Task.isCancelled {
                        if !loop.buffersWaiters.isEmpty { waitedForBuffers.set() }
                        try await loop.sleep(for: .milliseconds(1))
                    }
                }
                let good = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for i in 0..<64 {
                        group.addTask {
                            let message = pattern(1 << 20, seed: UInt64(i))
                            let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                            let reader = Task(executorPreference: loop) { try await stream.readToEnd(limit: message.count) }
                            try await stream.writeAll(message)
                            let back = try await reader.value
                            try await stream.close()
                            return back == message
                        }
                    }
                    return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
                }
                watcher.cancel()
                server.close()
                server.closeClients()
                await server.waitClosed()
                return (good, loop.io.receiveBuffers.inUse, waitedForBuffers.isSet)
            }
            #expect(good == 64)
            #expect(inUse == 0, "every buffer returns after its callback")
            #expect(waited, "the test must really run out of buffers")
        }

        @Test("a cancelled Server.waitClosed (withTimeout) returns early while a connection stays open", arguments: allBackends)
        func serverWaitClosedIsCancellable(backend: Backend) async throws {
            let (waited, openDuring, openAfter) = try await onLoop(backend) { loop -> (Duration, Int, Int) in
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { RecordingProtocol() }
                let (client, _) = try await loop.createConnection(host: "127.0.0.1", port: server.localAddress.port!) {
                    RecordingProtocol()
                }
                try await waitUntil(loop) { server.connectionCount == 1 }
                server.close()
                let start = LoopInstant.now
                try await withTimeout(.milliseconds(50)) { await server.waitClosed() }
                let waited = LoopInstant.now - start
                let openDuring = server.connectionCount
                client.close()
                server.closeClients()
                await server.waitClosed()
                return (waited, openDuring, server.connectionCount)
            }
            #expect(waited < .seconds(5), "the wait ended with its task's cancellation (\(waited))")
            #expect(openDuring == 1, "cancelling the wait leaves the connection alone")
            #expect(openAfter == 0)
        }

        @Test("a closed transport's errors say it was closed and name no stale descriptor", arguments: allBackends)
        func closedTransportErrors(backend: Backend) async throws {
            let (writeError, limitsError) = try await onLoop(backend) { loop -> (IOError?, IOError?) in
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { RecordingProtocol() }
                let (transport, _) = try await loop.createConnection(host: "127.0.0.1", port: server.localAddress.port!) {
                    RecordingProtocol()
                }
                transport.close()
                try await loop.sleep(for: .milliseconds(20))  // let the close finish: the fd is gone
                var writeError: IOError?
                var limitsError: IOError?
                do { try transport.write([1, 2, 3]) } catch let error as IOError { writeError = error }
                do { try transport.setWriteBufferLimits(high: 10, low: 20) } catch let error as IOError { limitsError = error }
                server.close()
                server.closeClients()
                await server.waitClosed()
                return (writeError, limitsError)
            }
            let write = try #require(writeError)
            let limits = try #require(limitsError)
            #expect(write.code == .closed, "\(write)")
            #expect(limits.code == .invalidArgument, "\(limits)")
            for error in [write, limits] {
                #expect(!error.description.contains("fd -1"), "\(error)")
            }
        }

        @Test("write(IOBuffer) sends the buffer itself, alone (in short sends) or between copied bytes, in order", arguments: allBackends)
        func writeRetainedBuffer(backend: Backend) async throws {
            let alone = pattern(2 << 20, seed: 11)
            let (before, buffer, after) = (pattern(100, seed: 12), pattern(5_000, seed: 13), pattern(200, seed: 14))
            let expected = alone + before + buffer + after
            let (received, emptied) = try await onLoop(backend) { loop -> ([UInt8], Bool) in
                let recorder = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                // A small receive buffer: 2 MiB cannot go in one send.
                let peer = rawConnect(port: server.localAddress.port!, receiveBuffer: 16 * 1024)
                defer { close(peer) }
                try await waitUntil(loop) { recorder.transport != nil }
                let transport = recorder.transport!
                // A small send buffer too: each send takes part of it and the
                // next continues from inside the buffer.
                var sendBuffer: Int32 = 16 * 1024
                setsockopt(transport.fileDescriptor, SOL_SOCKET, SO_SNDBUF, &sendBuffer, socklen_t(MemoryLayout<Int32>.size))
                let reading = loop.spawn {
                    try await loop.offload { receiveBlocking(peer, count: expected.count) }
                }
                // The queue is this one buffer until it has gone out.
                try transport.write(IOBuffer(alone))
                try await waitUntil(loop) { transport.writeBufferSize == 0 }
                // Copied, retained, copied: one sendmsg over their regions.
                try transport.write(before)
                try transport.write(IOBuffer(buffer))
                try transport.write(after)
                let received = try await reading.value
                try await waitUntil(loop) { transport.writeBufferSize == 0 }
                transport.close()
                server.close()
                await server.waitClosed()
                return (received, transport.writeBufferSize == 0)
            }
            #expect(received.count == expected.count)
            let intact = received == expected   // not in #expect: it would print megabytes
            #expect(intact)
            #expect(emptied)
        }

        @Test("flow control: pauseWriting at the high-water mark, resumeWriting after the drain, bytes in order",
              arguments: allBackends)
        func flowControl(backend: Backend) async throws {
            let (events, intact, sizeAtPause) = try await onLoop(backend) { loop -> ([String], Bool, Int) in
                let recorder = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                // A peer that does not read, with a tiny receive buffer: what the
                // server writes can only pile up in its send queue.
                let peer = rawConnect(port: server.localAddress.port!, receiveBuffer: 4096)
                try await waitUntil(loop) { recorder.transport != nil }
                let transport = recorder.transport!
                try transport.setWriteBufferLimits(high: 64 * 1024)
                #expect(transport.writeBufferLimits == (low: 16 * 1024, high: 64 * 1024))
                // 4 MiB queued at once, far past the mark, while the client does not read.
                let message = pattern(4 << 20, seed: 9)
                var sizeAtPause = 0
                for start in stride(from: 0, to: message.count, by: 64 * 1024) {
                    try transport.write(message[start..<min(start + 64 * 1024, message.count)])
                    if recorder.pauses == 1 && sizeAtPause == 0 { sizeAtPause = transport.writeBufferSize }
                }
                try await loop.sleep(for: .milliseconds(20))
                #expect(recorder.resumes == 0, "the peer is not reading: no resume yet")
                // Now the peer reads everything, on a thread of its own.
                let received = try await loop.offload { receiveBlocking(peer, count: message.count) }
                try await waitUntil(loop) { recorder.resumes > 0 }
                transport.close()
                close(peer)
                server.close()
                await server.waitClosed()
                return (recorder.events, received == message, sizeAtPause)
            }
            #expect(events.prefix(2) == ["made", "pause"])
            #expect(events.contains("resume"))
            #expect(events.firstIndex(of: "resume")! > events.firstIndex(of: "pause")!)
            #expect(intact)
            #expect(sizeAtPause > 64 * 1024)
        }

        @Test("a stream write suspends above the high-water mark and resumes after the drain", arguments: allBackends)
        func streamWriteSuspends(backend: Backend) async throws {
            let (suspended, intact) = try await onLoop(backend) { loop -> (Bool, Bool) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let peer = try await listener.accept()
                let message = pattern(8 << 20, seed: 4)
                let finished = Flag()
                let writer = loop.spawn {
                    try await stream.writeAll(message)
                    finished.set()
                }
                try await loop.sleep(for: .milliseconds(50))
                // Suspended with bytes queued: how many depends on where the
                // kernel's buffers filled within the current 1 MiB chunk (at
                // least the low-water mark, or the writer would have resumed).
                let suspended = !finished.isSet && stream.writeBufferSize > 16 * 1024
                let received = try await peer.read(upTo: 1)  // start reading
                var all = received
                while all.count < message.count { all += try await peer.read(upTo: 1 << 20) }
                try await writer.value
                try await stream.close()
                try await peer.close()
                try await listener.close()
                return (suspended, all == message)
            }
            #expect(suspended)
            #expect(intact)
        }

        @Test("a throwing callback goes to the exception handler and closes only its own connection", arguments: allBackends)
        func throwingCallback(backend: Backend) async throws {
            let (handled, otherWorks, lostError) = try await onLoop(backend) { loop -> (Int, Bool, String) in
                let handled = Recorder<String>()
                loop.setExceptionHandler { _, context in handled.append("\(context.source)") }
                var made: [RecordingProtocol] = []
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) {
                    let p = RecordingProtocol()
                    p.echo = true
                    p.throwOnData = made.isEmpty
                    made.append(p)
                    return p
                }
                let port = server.localAddress.port!
                let bad = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await waitUntil(loop) { made.count == 1 }
                let good = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await bad.writeAll(Array("boom".utf8))
                let eof = try await bad.read(upTo: 10)
                try await good.writeAll(Array("fine".utf8))
                let reply = try await good.read(upTo: 10)
                try await bad.close()
                try await good.close()
                server.close()
                await server.waitClosed()
                return (handled.count, eof.isEmpty && reply == Array("fine".utf8), "\(made[0].lostError.map { "\($0)" } ?? "nil")")
            }
            #expect(handled == 1)
            #expect(otherWorks)
            #expect(lostError.contains("thrown by dataReceived"))
        }

        @Test("a write to a reset peer surfaces as connectionReset or brokenPipe, in the stream and in connectionLost",
              arguments: allBackends)
        func writeToResetPeer(backend: Backend) async throws {
            let (streamCode, protocolCode) = try await onLoop(backend) { loop -> (IOError.Code?, IOError.Code?) in
                // Stream side.
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let peer = try await listener.accept()
                try peer.setLinger(seconds: 0)
                try await peer.close()
                var streamCode: IOError.Code?
                do {
                    for _ in 0..<200 {
                        try await stream.writeAll(Array(repeating: 1, count: 1024))
                        try await loop.sleep(for: .milliseconds(1))
                    }
                } catch let error as IOError { streamCode = error.code }
                try? await stream.close()
                try await listener.close()
                // Protocol side.
                let recorder = RecordingProtocol()
                let server = try await loop.createServer(host: "127.0.0.1", port: 0) { recorder }
                let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                try await waitUntil(loop) { recorder.transport != nil }
                try client.setLinger(seconds: 0)
                try await client.close()
                for _ in 0..<200 where recorder.lostCount == 0 {
                    try? recorder.transport?.write(Array(repeating: 2, count: 1024))
                    try await loop.sleep(for: .milliseconds(1))
                }
                server.close()
                await server.waitClosed()
                return (streamCode, (recorder.lostError as? IOError)?.code)
            }
            #expect(streamCode == .connectionReset || streamCode == .brokenPipe)
            #expect(protocolCode == .connectionReset || protocolCode == .brokenPipe)
        }
    }
}
