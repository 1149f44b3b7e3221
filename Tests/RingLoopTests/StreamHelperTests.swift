import Glibc
@testable import RingLoop
import Testing

/// A connected pair of streams on the running loop, with a listener to close.
func connectedPair() async throws -> (client: SocketStream, server: SocketStream, close: () async throws -> Void) {
    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
    let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
    let server = try await listener.accept()
    return (client, server, {
        try await client.close()
        try await server.close()
        try await listener.close()
    })
}

extension AllSuites {
    /// asyncio's StreamReader helpers on the inbound queue: lines, separators,
    /// exact counts, limits; vectored writes; the stream server.
    @Suite("Stream helpers and stream servers", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct StreamHelperTests {
        @Test("readLine, readUntil and readExactly across partial arrivals", arguments: allBackends)
        func delimitedReads(backend: Backend) async throws {
            let (lines, until, exact, last, end) = try await onLoop(backend) { loop -> ([String], [UInt8], [UInt8], String?, String?) in
                let (client, server, close) = try await connectedPair()
                // Bytes arrive in pieces that split lines and separators.
                let writer = loop.spawn {
                    for piece in ["first li", "ne\nsecond\r", "\nhead", "er\r\n\r", "\nABCDE", "FGHIJ", "tail"] {
                        try await server.writeAll(Array(piece.utf8))
                        try await loop.sleep(for: .milliseconds(5))
                    }
                    try await server.shutdown(.write)
                }
                var lines: [String] = []
                lines.append(try #require(try await client.readLine()))
                lines.append(try #require(try await client.readLine()))
                let until = try await client.readUntil(Array("\r\n\r\n".utf8))
                // Bounded: a read that lost its first half would wait forever.
                let exact = try await withTimeout(.seconds(5)) { try await client.readExactly(10) }
                let last = try await client.readLine()
                let end = try await client.readLine()
                try await writer.value
                try await close()
                return (lines, until, exact, last, end)
            }
            #expect(lines == ["first line", "second\r"], "a \\r before the \\n is part of the line")
            #expect(until == Array("header\r\n\r\n".utf8))
            #expect(exact == Array("ABCDEFGHIJ".utf8))
            #expect(last == "tail", "an unterminated last line is returned")
            #expect(end == nil)
        }

        @Test("readUntil(anyOf:) returns the shortest read that ends in any separator, across partial arrivals; bad lists are refused",
              arguments: allBackends)
        func readUntilAnyOf(backend: Backend) async throws {
            let endOfHead = [Array("\n\r\n".utf8), Array("\n\n".utf8)]
            let (heads, refusals, end) = try await onLoop(backend) { loop -> ([String], [String], IncompleteReadError?) in
                let (client, server, close) = try await connectedPair()
                // A CRLF head, a bare-LF head, then one whose "\n\n" ends
                // before the "\n\r\n" that starts earlier in the list; the
                // pieces split separators.
                let writer = loop.spawn {
                    for piece in ["GET /a\r\nHost: x\r\n\r", "\nGET /b\nHost: y\n", "\nX\n\n\r\n", "tail"] {
                        try await server.writeAll(Array(piece.utf8))
                        try await loop.sleep(for: .milliseconds(5))
                    }
                    try await server.shutdown(.write)
                }
                var heads: [String] = []
                for _ in 0..<3 { heads.append(String(decoding: try await client.readUntil(anyOf: endOfHead), as: UTF8.self)) }
                var refusals: [String] = []
                for bad in [[[UInt8]](), [Array("x".utf8), []]] {
                    do { _ = try await client.readUntil(anyOf: bad) } catch let error as IOError where error.code == .invalidArgument {
                        refusals.append(error.detail ?? "")
                    }
                }
                var end: IncompleteReadError?
                do { _ = try await client.readUntil(anyOf: endOfHead) } catch let error as IncompleteReadError { end = error }
                try await writer.value
                try await close()
                return (heads, refusals, end)
            }
            #expect(heads == ["GET /a\r\nHost: x\r\n\r\n", "GET /b\nHost: y\n\n", "X\n\n"])
            #expect(refusals == ["no separator was given", "a separator is empty"])
            #expect(end?.partial == Array("\r\ntail".utf8), "the stream's end leaves what came after the last separator")
        }

        @Test("a line past the limit throws LimitOverrunError naming it, and the bytes stay readable", arguments: allBackends)
        func limitOverrun(backend: Backend) async throws {
            let (error, recovered) = try await onLoop(backend) { _ -> (LimitOverrunError?, Int) in
                let (client, server, close) = try await connectedPair()
                try await server.writeAll([UInt8](repeating: 0x61, count: 70_000) + [0x0A])
                var caught: LimitOverrunError?
                do { _ = try await client.readLine() } catch let error as LimitOverrunError { caught = error }
                // Everything is still there: read it another way.
                let rest = try await client.readExactly(70_001)
                try await close()
                return (caught, rest.count)
            }
            let overrun = try #require(error)
            #expect(overrun.limit == 64 * 1024)
            #expect(overrun.description.contains("65536"))
            #expect(recovered == 70_001)
        }

        @Test("setLimit raises the limit: the same long line then reads whole, and receiving paused at twice the old limit resumes",
              arguments: allBackends)
        func raisedLimit(backend: Backend) async throws {
            let (overrun, line, badLimit) = try await onLoop(backend) { loop -> (Bool, Int, IOError.Code?) in
                let (client, server, close) = try await connectedPair()
                // 300 KB without a newline: more than twice the default limit, so
                // receiving pauses with the rest still in the kernel.
                let writer = loop.spawn { try await server.writeAll([UInt8](repeating: 0x62, count: 300_000) + [0x0A]) }
                var overrun = false
                do { _ = try await client.readLine() } catch is LimitOverrunError { overrun = true }
                try await loop.sleep(for: .milliseconds(50))   // the queue passes 128 KiB: receiving pauses
                try client.setLimit(1 << 20)
                #expect(client.limit == 1 << 20)
                let line = try await withTimeout(.seconds(5)) { try await client.readLine() }
                try await writer.value
                var badLimit: IOError.Code?
                do { try client.setLimit(0) } catch let error as IOError { badLimit = error.code }
                try await close()
                return (overrun, line?.count ?? -1, badLimit)
            }
            #expect(overrun, "the default 64 KiB limit refuses the line")
            #expect(line == 300_000)
            #expect(badLimit == .invalidArgument)
        }

        @Test("isAtEOF only once the peer's end and every byte before it are read; isClosing after close or abort, not after the peer's half-close",
              arguments: allBackends)
        func atEOFAndClosing(backend: Backend) async throws {
            let seen = try await onLoop(backend) { loop -> [String] in
                var seen: [String] = []
                let (client, server, close) = try await connectedPair()
                seen.append("open: eof \(client.isAtEOF), closing \(client.isClosing)")
                try await server.writeAll(Array("abcdef".utf8))
                try await server.shutdown(.write)
                // Both the bytes and the end have arrived; none is read yet.
                var spins = 0
                while !client.state.eof, spins < 5_000 {
                    try await loop.sleep(for: .milliseconds(1))
                    spins += 1
                }
                seen.append("end arrived, bytes unread: eof \(client.isAtEOF)")
                _ = try await client.readExactly(4)
                seen.append("2 bytes left: eof \(client.isAtEOF)")
                _ = try await client.readExactly(2)
                seen.append("all read: eof \(client.isAtEOF), closing \(client.isClosing)")
                // The peer's half-close leaves this side writing.
                try await client.writeAll(Array("still writable".utf8))
                seen.append("peer got: \(String(decoding: try await server.readExactly(14), as: UTF8.self))")
                try await client.close()
                seen.append("closed: closing \(client.isClosing)")
                server.abort()
                seen.append("aborted: closing \(server.isClosing)")
                try await close()
                return seen
            }
            #expect(seen == [
                "open: eof false, closing false",
                "end arrived, bytes unread: eof false",
                "2 bytes left: eof false",
                "all read: eof true, closing false",
                "peer got: still writable",
                "closed: closing true",
                "aborted: closing true",
            ])
        }

        @Test("EOF before readExactly or readUntil completes: IncompleteReadError with the partial bytes", arguments: allBackends)
        func incompleteReads(backend: Backend) async throws {
            let (exact, until, huge) = try await onLoop(backend) { _ -> (IncompleteReadError?, IncompleteReadError?, IncompleteReadError?) in
                var exact: IncompleteReadError?, until: IncompleteReadError?, huge: IncompleteReadError?
                do {
                    let (client, server, close) = try await connectedPair()
                    try await server.writeAll(Array("12345".utf8))
                    try await server.shutdown(.write)
                    do { _ = try await client.readExactly(8) } catch let error as IncompleteReadError { exact = error }
                    try await close()
                }
                do {
                    let (client, server, close) = try await connectedPair()
                    try await server.writeAll(Array("no separator".utf8))
                    try await server.shutdown(.write)
                    do { _ = try await client.readUntil(Array("\r\n".utf8)) } catch let error as IncompleteReadError { until = error }
                    try await close()
                }
                // A count far beyond memory is bad input only if it allocates
                // up front: it must wait for bytes like any other count.
                do {
                    let (client, server, close) = try await connectedPair()
                    try await server.writeAll(Array("12345".utf8))
                    try await server.shutdown(.write)
                    do { _ = try await client.readExactly(Int.max) } catch let error as IncompleteReadError { huge = error }
                    try await close()
                }
                return (exact, until, huge)
            }
            #expect(exact?.partial == Array("12345".utf8))
            #expect(exact?.expected == 8)
            #expect(huge?.partial == Array("12345".utf8))
            #expect(huge?.expected == Int.max)
            #expect(until?.partial == Array("no separator".utf8))
            #expect(until?.expected == nil)
        }

        @Test("a readExactly or readToEnd that times out or is cancelled half-way loses no byte; past the limit the queue grows to the count",
              arguments: allBackends)
        func interruptedReadsKeepBytes(backend: Backend) async throws {
            let (exact, toEnd, big, queuedAfter) = try await onLoop(backend) { loop -> ([UInt8], [UInt8], Bool, Int) in
                let (client, server, close) = try await connectedPair()
                try await server.writeAll(Array("12345".utf8))
                await #expect(throws: TimeoutError.self) { try await withTimeout(.milliseconds(30)) { try await client.readExactly(10) } }
                try await server.writeAll(Array("67890".utf8))
                // Bounded: a read that lost its first half would wait forever.
                let exact = try await withTimeout(.seconds(5)) { try await client.readExactly(10) }

                // Cancelled rather than timed out, with a count past the pause
                // mark: the queue takes all it needs, and the read that follows
                // gets every byte.
                try client.setLimit(1024)
                let payload = pattern(1 << 20, seed: 5)
                let half = Array(payload.prefix(payload.count / 2))
                try await server.writeAll(half)
                let reader = loop.spawn { try await client.readExactly(payload.count) }
                try await waitUntil(loop) { client.state.inbound.count == half.count }
                reader.cancel()
                await #expect(throws: CancellationError.self) { try await reader.value }
                try await server.writeAll(payload.dropFirst(half.count))
                let big = try await withTimeout(.seconds(5)) { try await client.readExactly(payload.count) } == payload
                // The wait is over: receiving pauses at twice the limit again.
                try await server.writeAll(pattern(512 << 10, seed: 6))
                try await loop.sleep(for: .milliseconds(50))
                let queuedAfter = client.state.inbound.count
                _ = try await client.readExactly(512 << 10)

                try await server.writeAll(Array("abc".utf8))
                await #expect(throws: TimeoutError.self) { try await withTimeout(.milliseconds(30)) { try await client.readToEnd() } }
                try await server.writeAll(Array("def".utf8))
                try await server.shutdown(.write)
                let toEnd = try await withTimeout(.seconds(5)) { try await client.readToEnd() }
                try await close()
                return (exact, toEnd, big, queuedAfter)
            }
            #expect(exact == Array("1234567890".utf8))
            #expect(big, "the half read before the cancel was still queued, in order")
            #expect(queuedAfter < 256 << 10, "receiving paused near twice the 1 KiB limit (queued \(queuedAfter))")
            #expect(toEnd == Array("abcdef".utf8))
        }

        @Test("shutdownAndDrain: a client still sending reads the reply, not a reset; a client that never closes costs the limit; a closed stream throws",
              arguments: allBackends)
        func shutdownAndDrain(backend: Backend) async throws {
            let (sent, reply, drained, waited, quiet, closedThrows) = try await onLoop(backend) { loop -> (Bool, [UInt8], Bool, Duration, Bool, Bool) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                // 4 MB, far more than the socket buffers hold: the sender is
                // still sending when the server refuses it.
                let client = try await SocketStream.connect(to: listener.localAddress)
                let server = try await listener.accept()
                let sender = loop.spawn { () async -> (Bool, [UInt8]) in
                    let sent = (try? await client.writeAll(pattern(4 << 20, seed: 9))) != nil
                    let reply = (try? await client.readToEnd()) ?? []
                    try? await client.close()
                    return (sent, reply)
                }
                _ = try await server.readExactly(100)
                try await server.writeAll(Array("refused\n".utf8))
                let drained = try await server.shutdownAndDrain(within: .seconds(10))
                try await server.close()
                let (sent, reply) = try await sender.value

                // A peer that neither sends nor closes: false, after the limit.
                let idle = try await SocketStream.connect(to: listener.localAddress)
                let quietServer = try await listener.accept()
                let start = ContinuousClock.now
                let quiet = try await quietServer.shutdownAndDrain(within: .milliseconds(100))
                let waited = ContinuousClock.now - start
                try await quietServer.close()
                try await idle.close()

                let closedThrows = await (try? quietServer.shutdownAndDrain(within: .seconds(1))) == nil
                try await listener.close()
                return (sent, reply, drained, waited, quiet, closedThrows)
            }
            #expect(sent, "the client's whole 4 MB went: it was read and dropped, not reset")
            #expect(reply == Array("refused\n".utf8), "then the reply and EOF")
            #expect(drained, "the drain ended with the client's close")
            #expect(!quiet && waited >= .milliseconds(100) && waited < .seconds(5), "\(quiet) after \(waited)")
            #expect(closedThrows)
        }

        @Test("lines iterates to the end; write(contentsOf:) keeps the order of its buffers", arguments: allBackends)
        func linesAndVectoredWrites(backend: Backend) async throws {
            let got = try await onLoop(backend) { loop -> [String] in
                let (client, server, close) = try await connectedPair()
                let writer = loop.spawn {
                    for i in 0..<100 {
                        try await server.write(contentsOf: [IOBuffer(Array("line ".utf8)), IOBuffer(Array("\(i)".utf8)), IOBuffer([0x0A])])
                    }
                    try await server.shutdown(.write)
                }
                var got: [String] = []
                for try await line in client.lines { got.append(line) }
                try await writer.value
                try await close()
                return got
            }
            #expect(got == (0..<100).map { "line \($0)" })
        }

        @Test("byteLines and readLineBytes give lines exactly as sent, not UTF-8 included; lines repairs them", arguments: allBackends)
        func byteLines(backend: Backend) async throws {
            let (bytes, text) = try await onLoop(backend) { _ -> ([[UInt8]], String?) in
                let (client, server, close) = try await connectedPair()
                try await server.writeAll([0x61, 0xE9, 0x0A, 0xFF, 0xFE, 0x0D, 0x0A, 0x80, 0x0A, 0x7A])
                try await server.shutdown(.write)
                var bytes: [[UInt8]] = []
                bytes.append(try await client.readLineBytes() ?? [])
                let text = try await client.readLine()
                for try await line in client.byteLines { bytes.append(line) }
                try await close()
                return (bytes, text)
            }
            #expect(bytes == [[0x61, 0xE9], [0x80], [0x7A]], "the last line comes without a terminator")
            #expect(text == "\u{FFFD}\u{FFFD}\r")
        }

        @Test("serve: a task per connection; close stops accepting; waitClosed cancels a stuck handler at the deadline", arguments: allBackends)
        func serveGracefulClose(backend: Backend) async throws {
            let (echoed, refused, stuckCancelled, waited, reported) = try await onLoop(backend) { loop -> (String?, Bool, Bool, Duration, [String]) in
                let reports = Box<[String]>([])
                loop.setExceptionHandler { _, context in reports.value.append(context.message) }
                let stuckCancelled = Flag()
                let server = try await loop.serve(host: "127.0.0.1", port: 0) { stream in
                    let line = try await stream.readLine()
                    if line == "stuck" {
                        do { try await loop.sleep(for: .seconds(60)) } catch { stuckCancelled.set(); throw error }
                    } else if line == "throw" {
                        throw IOError(operation: "handler", errno: nil, detail: "thrown on purpose")
                    }
                    try await stream.writeAll(Array("echo \(line ?? "")\n".utf8))
                }
                let port = server.localAddress.port!
                let normal = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await normal.writeAll(Array("hi\n".utf8))
                let echoed = try await normal.readLine()
                let thrower = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await thrower.writeAll(Array("throw\n".utf8))
                _ = try await thrower.readToEnd()   // the server closed it after the handler threw
                let stuck = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await stuck.writeAll(Array("stuck\n".utf8))
                try await waitUntil(loop) { server.connectionCount == 1 }   // only the stuck handler is left

                server.close()
                let start = LoopInstant.now
                await server.waitClosed(deadline: .milliseconds(200))
                let waited = LoopInstant.now - start
                var refused = false
                do { _ = try await SocketStream.connect(host: "127.0.0.1", port: port) } catch let error as IOError {
                    refused = error.code == .connectionRefused
                }
                try await normal.close(); try await thrower.close(); try await stuck.close()
                return (echoed, refused, stuckCancelled.isSet, waited, reports.value)
            }
            #expect(echoed == "echo hi")
            #expect(refused, "close() stopped accepting")
            #expect(stuckCancelled, "the handler still running at the deadline was cancelled")
            #expect(waited >= .milliseconds(150) && waited < .seconds(5))
            #expect(reported == ["serve handler failed"], "the thrown error went to the exception handler")
        }

        @Test("serve: a client that resets its own connection is no error report; a reset on another connection is",
              arguments: allBackends)
        func servePeerResetIsNotReported(backend: Backend) async throws {
            let (ended, reported) = try await onLoop(backend) { loop -> ([IOError.Code?], [String]) in
                let reports = Box<[String]>([])
                loop.setExceptionHandler { _, context in reports.value.append("\(context.error.map { "\($0)" } ?? context.message)") }
                let ended = Box<[IOError.Code?]>([])
                // A stand-in upstream that resets whoever connects to it.
                let upstream = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                loop.spawn {
                    let connection = try await upstream.accept()
                    try connection.setLinger(seconds: 0)
                    try await connection.close()
                }
                let server = try await loop.serve(host: "127.0.0.1", port: 0) { stream in
                    do {
                        if try await stream.readLine() == "upstream" {
                            let other = try await SocketStream.connect(host: "127.0.0.1", port: upstream.localAddress.port!)
                            do { _ = try await other.read(upTo: 10) } catch { try? await other.close(); throw error }
                            try await other.close()
                        } else {
                            for try await _ in stream.lines {}
                        }
                        ended.value.append(nil)
                    } catch let error as IOError {
                        ended.value.append(error.code)
                        throw error
                    }
                }
                let port = server.localAddress.port!
                // The client's own reset: SO_LINGER 0, then close, mid-read.
                let leaving = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await leaving.writeAll(Array("hello\n".utf8))
                try await waitUntil(loop) { server.connectionCount == 1 }
                try leaving.setLinger(seconds: 0)
                try await leaving.close()
                try await waitUntil(loop) { server.connectionCount == 0 }
                // The handler's upstream resets: that error is the handler's to report.
                let asking = try await SocketStream.connect(host: "127.0.0.1", port: port)
                try await asking.writeAll(Array("upstream\n".utf8))
                _ = try await asking.readToEnd()
                try await waitUntil(loop) { server.connectionCount == 0 }
                try await asking.close()
                server.close()
                await server.waitClosed()
                try await upstream.close()
                return (ended.value, reports.value)
            }
            #expect(ended == [.connectionReset, .connectionReset], "both handlers ended on a reset")
            #expect(reported.count == 1, "\(reported)")
            #expect(reported.first?.contains("ECONNRESET") == true, "only the upstream's reset was reported: \(reported)")
        }

        @Test("serve: echo handlers whose clients reset while they write end on the reset, with no error report", arguments: allBackends)
        func serveEchoResetWhileWriting(backend: Backend) async throws {
            let (ended, reported, closeErrors) = try await onLoop(backend) { loop -> ([IOError.Code], [String], [String]) in
                let reports = Box<[String]>([])
                loop.setExceptionHandler { _, context in reports.value.append("\(context.error.map { "\($0)" } ?? context.message)") }
                let ended = Box<[IOError.Code]>([])
                let closeErrors = Box<[String]>([])
                let server = try await loop.serve(host: "127.0.0.1", port: 0) { stream in
                    let buffer = try IOBuffer(capacity: 16 * 1024)
                    do {
                        while try await stream.read(into: buffer) > 0 { try await stream.writeAll(buffer) }
                    } catch let error as IOError {
                        ended.value.append(error.code)
                        #expect(error.isDisconnect, "\(error)")
                        // The reset was thrown once: closing after it is no second error.
                        do { try await stream.close() } catch { closeErrors.value.append("\(error)") }
                        throw error
                    }
                }
                // Each client has one echo, then sends 50 KB and resets at
                // once: the reset lands while the handler echoes (on io_uring,
                // between the transport's abort and connectionLost reaching
                // the stream, the window where a write said "closing").
                // Blocking clients on a thread of their own, as a load tool's.
                let port = server.localAddress.port!
                try await Task.detached {
                    for _ in 0..<50 {
                        let client = try BlockingClient(port: port)
                        try client.send(bytes: pattern(100))
                        _ = try client.readBytes(100)
                        try client.send(bytes: pattern(50_000))
                        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
                        setsockopt(client.fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                        client.close()
                    }
                }.value
                try await waitUntil(loop) { server.connectionCount == 0 && ended.value.count == 50 }
                server.close()
                await server.waitClosed()
                return (ended.value, reports.value, closeErrors.value)
            }
            #expect(ended.allSatisfy { $0 == .connectionReset || $0 == .brokenPipe }, "\(ended)")
            #expect(reported.isEmpty, "a client's own reset is no server fault: \(reported)")
            #expect(closeErrors.isEmpty, "\(closeErrors)")
        }

        @Test("a cancelled waitClosed (withTimeout) returns early; the handler runs on until a later waitClosed cancels it",
              arguments: allBackends)
        func waitClosedIsCancellable(backend: Backend) async throws {
            let (early, stillRunning, cancelledEarly, remaining) = try await onLoop(backend) { loop -> (Duration, Int, Bool, Int) in
                let stuckCancelled = Flag()
                let server = try await loop.serve(host: "127.0.0.1", port: 0) { stream in
                    _ = try await stream.readLine()
                    do { try await loop.sleep(for: .seconds(60)) } catch { stuckCancelled.set(); throw error }
                }
                let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
                try await client.writeAll(Array("stuck\n".utf8))
                try await waitUntil(loop) { server.connectionCount == 1 }
                server.close()
                let start = LoopInstant.now
                try await withTimeout(.milliseconds(50)) { await server.waitClosed() }
                let early = LoopInstant.now - start
                let stillRunning = server.connectionCount
                let cancelledBefore = stuckCancelled.isSet
                await server.waitClosed(deadline: .zero)
                try await client.close()
                return (early, stillRunning, cancelledBefore, server.connectionCount)
            }
            #expect(early < .seconds(5), "the wait ended with its task's cancellation (\(early))")
            #expect(stillRunning == 1, "cancelling the wait does not touch the handlers")
            #expect(!cancelledEarly, "the handler ran on until the second waitClosed's deadline")
            #expect(remaining == 0)
        }

        @Test("serve on a Unix-domain path", arguments: allBackends)
        func serveUnix(backend: Backend) async throws {
            let path = temporaryPath("serve.sock")
            let reply = try await onLoop(backend) { _ -> String? in
                let server = try await serveEchoLine(path)
                let client = try await SocketStream.connect(unixPath: path)
                try await client.writeAll(Array("unix\n".utf8))
                let reply = try await client.readLine()
                try await client.close()
                server.close()
                await server.waitClosed()
                return reply
            }
            #expect(reply == "unix")
            #expect(access(path, F_OK) != 0, "the socket file is removed at close")
        }
    }
}

/// An echo-a-line server on a Unix path, on the running loop.
func serveEchoLine(_ path: String) async throws -> StreamServer {
    try await EventLoop.running().serve(unixPath: path) { stream in
        if let line = try await stream.readLine() { try await stream.writeAll(Array((line + "\n").utf8)) }
    }
}
