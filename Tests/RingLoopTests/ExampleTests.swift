import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// The examples' command lines are a contract: these run the built programs
    /// as a user would, with real sockets and real signals.
    @Suite("Examples: Chat, HTTPHello and EchoServer", .serialized, .checksResources, .timeLimit(.minutes(2)),
           .enabled(if: Child.productExists("Chat") && Child.productExists("HTTPHello"),
                    "needs the Chat and HTTPHello products next to the test bundle (swift build --build-tests)"))
    struct ExampleTests {
        @Test("Chat relays each line to every other client and says goodbye on SIGTERM", arguments: allBackends)
        func chat(backend: Backend) throws {
            let (server, port) = try startListening(["Chat", "--port", "0", "--backend", backend.rawValue])
            defer { server.stop() }
            let clients = try (0..<3).map { _ in try BlockingClient(port: port) }
            defer { clients.forEach { $0.close() } }
            usleep(100_000)   // every client is in the room
            try clients[0].send("hello from 0\n")
            #expect(try clients[1].readLine() == "hello from 0")
            #expect(try clients[2].readLine() == "hello from 0")
            try clients[2].send("and \r back\n")
            #expect(try clients[0].readLine() == "and \r back", "lines go out unchanged")
            #expect(try clients[1].readLine() == "and \r back")
            #expect(clients[2].pending() == 0, "the sender does not get its own line")
            try clients[1].send(bytes: [0xE9, 0xFF, 0x41, 0x0D, 0x0A])   // not UTF-8
            #expect(try clients[0].readLineBytes() == [0xE9, 0xFF, 0x41, 0x0D], "bytes go out unchanged, UTF-8 or not")
            #expect(try clients[2].readLineBytes() == [0xE9, 0xFF, 0x41, 0x0D])
            let talkative = try BlockingClient(port: port)
            defer { talkative.close() }
            usleep(100_000)
            try talkative.send(String(repeating: "y", count: 70_000) + "\n")
            #expect(try talkative.readLine() == "line too long: the limit is 65536 bytes")
            #expect(try talkative.readLine() == nil, "then it is disconnected")
            // One still sending when it is told: the rest is read and dropped,
            // so the reason arrives instead of a reset.
            let flooding = try BlockingClient(port: port)
            defer { flooding.close() }
            try flooding.send(String(repeating: "z", count: 4_000_000) + "\n")
            #expect(try flooding.readLine() == "line too long: the limit is 65536 bytes")
            #expect(try flooding.readLine() == nil)
            try clients[0].send("still here\n")
            #expect(try clients[1].readLine() == "still here", "the others are not affected")
            #expect(try clients[2].readLine() == "still here")

            let start = ContinuousClock.now
            kill(server.pid, SIGTERM)
            for client in clients {
                #expect(try client.readLine() == "server closing")
                #expect(try client.readLine() == nil, "then the connection closes")
            }
            let (status, output) = try server.finish(limit: .seconds(5))
            #expect(status == 0, "\(output)")
            #expect(ContinuousClock.now - start < .seconds(2))
            #expect(throws: (any Error).self, "no longer accepting") { _ = try BlockingClient(port: port) }
        }

        @Test("Chat cuts off a client that stops reading, keeps serving the others, and still exits within 2 s of SIGTERM",
              arguments: allBackends)
        func chatSlowClient(backend: Backend) throws {
            let (server, port) = try startListening(["Chat", "--port", "0", "--backend", backend.rawValue])
            defer { server.stop() }
            let stalled = try BlockingClient(port: port, receiveBuffer: 4096)   // never reads
            let reader = try BlockingClient(port: port)
            let talker = try BlockingClient(port: port)
            defer { [stalled, reader, talker].forEach { $0.close() } }
            usleep(100_000)   // every client is in the room

            // 16 MiB of numbered lines: far more than the 1 MiB a client may fall
            // behind plus what the kernel buffers for the stalled one.
            let lines = 16 * 1024
            @Sendable func line(_ i: Int) -> String { "\(i) " + String(repeating: "x", count: 1018 - String(i).count) }
            let readerResult = Locked<(count: Int, inOrder: Bool, goodbye: Bool)>((0, true, false))
            let readerHandle = UnsafeSendable(reader)
            let join = try onNewThreadSync {
                var count = 0, inOrder = true
                while let got = try? readerHandle.value.readLine() {
                    if got == "server closing" { readerResult.withLock { $0.goodbye = true }; return }
                    if got != line(count) { inOrder = false }
                    count += 1
                    readerResult.withLock { $0 = (count, inOrder, false) }
                }
            }
            // The talker keeps within 256 lines of the reader, as a chat's
            // readers do: only the stalled client falls behind.
            func send(_ range: Range<Int>) throws {
                for start in stride(from: range.lowerBound, to: range.upperBound, by: 128) {
                    var waited = 0
                    while readerResult.withLock({ $0.count }) < start - 256 {
                        waited += 1
                        if waited > 10_000 { throw IOError(operation: "chat test", errno: nil, detail: "the reader stopped at line \(readerResult.withLock { $0.count })") }
                        usleep(1_000)
                    }
                    try talker.send((start..<start + 128).map { line($0) + "\n" }.joined())
                }
            }
            try send(0..<lines)
            // The stalled client was cut off: it reads what the kernel held for
            // it, then the end, far short of everything sent.
            var stalledBytes = 0
            while let chunk = try? stalled.readSome(), !chunk.isEmpty { stalledBytes += chunk.count }
            #expect(stalledBytes < lines * 1024 / 2, "the stalled client got \(stalledBytes) bytes before its connection ended")

            // A second client that does not read, still in the room at SIGTERM,
            // must not hold the shutdown up.
            let stalledAtExit = try BlockingClient(port: port, receiveBuffer: 4096)
            defer { stalledAtExit.close() }
            usleep(100_000)
            try send(lines..<lines + 2048)
            usleep(200_000)
            let start = ContinuousClock.now
            kill(server.pid, SIGTERM)
            let (status, output) = try server.finish(limit: .seconds(5))
            #expect(status == 0, "\(output)")
            #expect(ContinuousClock.now - start < .seconds(2))
            join()
            let result = readerResult.withLock { $0 }
            #expect(result.count == lines + 2048, "the reader got every line")
            #expect(result.inOrder)
            #expect(result.goodbye)
        }

        @Test("EchoServer (stream and protocol API) stops reading from a client that does not read its echo, then echoes every byte",
              arguments: allBackends, ["stream", "protocol"])
        func echoServerFlowControl(backend: Backend, api: String) throws {
            let (server, port) = try startListening(["EchoServer", "--port", "0", "--backend", backend.rawValue, "--api", api])
            defer { server.stop() }
            let client = try BlockingClient(port: port)
            defer { client.close() }
            // Send without reading until the kernel says stop. A server that
            // kept reading would queue every echo in its own memory and take
            // all 256 MiB; one that pauses fills the socket buffers (a few
            // MiB each way on loopback) and its send queue's mark.
            let flags = fcntl(client.fd, F_GETFL)
            _ = fcntl(client.fd, F_SETFL, flags | O_NONBLOCK)
            let chunk = [UInt8](repeating: 0x61, count: 64 << 10)
            var sent = 0, stalls = 0
            while sent < 256 << 20, stalls < 50 {
                let n = chunk.withUnsafeBytes { Glibc.send(client.fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n > 0 { sent += n; stalls = 0; continue }
                #expect(errno == EAGAIN, "send: \(Errno(errno))")
                stalls += 1
                usleep(2_000)   // the server gets its turn; still full after 100 ms means it stopped reading
            }
            #expect(sent < 64 << 20, "the server stopped reading after \(sent) bytes")
            _ = fcntl(client.fd, F_SETFL, flags)
            shutdown(client.fd, Int32(SHUT_WR))
            let echoed = try client.readToEnd()
            #expect(echoed.count == sent, "every byte came back")
            #expect(echoed.allSatisfy { $0 == 0x61 })
        }

        @Test("HTTPHello answers keep-alive, pipelined and closing requests on 2 loops, and stops on SIGINT", arguments: allBackends)
        func httpHello(backend: Backend) throws {
            let server = try Child(["HTTPHello", "--port", "0", "--threads", "2", "--backend", backend.rawValue])
            defer { server.stop() }
            let line = try server.waitForOutput(containing: "listening")
            #expect(line.contains("2 loop(s)"))
            let port = try #require(listeningPort(line))
            let client = try BlockingClient(port: port)
            defer { client.close() }
            try client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\nPOST /form HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /last HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            let replies = String(decoding: try client.readToEnd(), as: UTF8.self)
            #expect(replies.ranges(of: "HTTP/1.1 200 OK\r\n").count == 3, "\(replies)")
            #expect(replies.ranges(of: "\r\n\r\nHello, World!").count == 3)
            #expect(replies.contains("Connection: close"))
            // Typed into `nc`: lines that end in a bare LF.
            let typed = try BlockingClient(port: port)
            defer { typed.close() }
            try typed.send("GET / HTTP/1.1\nHost: x\n\nGET / HTTP/1.1\nConnection: close\n\n")
            let typedReplies = String(decoding: try typed.readToEnd(), as: UTF8.self)
            #expect(typedReplies.ranges(of: "\r\n\r\nHello, World!").count == 2, "\(typedReplies.debugDescription)")

            kill(server.pid, SIGINT)
            let (status, output) = try server.finish(limit: .seconds(5))
            #expect(status == 0, "\(output)")
        }

        @Test("HTTPHello refuses what it must not trust (an overflowing, malformed or conflicting Content-Length, a large body, a Transfer-Encoding it cannot frame, a bad chunk, a huge head) and stays up; chunked bodies are read; HEAD gets no body; Expect: 100-continue gets its interim reply",
              arguments: allBackends)
        func httpHelloRefusals(backend: Backend) throws {
            let (server, port) = try startListening(["HTTPHello", "--port", "0", "--backend", backend.rawValue])
            defer { server.stop() }
            let cases: [(request: String, status: String)] = [
                ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", "413"),
                ("POST / HTTP/1.1\r\nContent-Length: 2000000\r\n\r\n", "413"),
                ("POST / HTTP/1.1\r\nContent-Length: -5\r\n\r\n", "400"),
                ("POST / HTTP/1.1\r\nContent-Length: 5x\r\n\r\nhello", "400"),
                ("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", "400"),
                ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", "400"),
                ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "400"),
                ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", "400"),
                ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", "400"),
                ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello!\r\n0\r\n\r\n", "400"),
                ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n200000\r\n", "413"),
                ("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", "413"),
                ("NOT HTTP\r\n\r\n", "400"),
                ("GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 70_000) + "\r\n\r\n", "431"),
                // Still unread when the answer goes: closing at once would reset
                // the connection, and the client would read ECONNRESET, not 431.
                ("GET / HTTP/1.1\r\nX-Big: " + String(repeating: "a", count: 4_000_000) + "\r\n\r\n", "431"),
                ("POST / HTTP/1.1\r\nContent-Length: \t5 \r\nConnection: close\r\n\r\nhello", "200"),
            ]
            for (request, status) in cases {
                let client = try BlockingClient(port: port)
                defer { client.close() }
                try client.send(request)
                let reply = String(decoding: try client.readToEnd(), as: UTF8.self)
                #expect(reply.hasPrefix("HTTP/1.1 \(status) "), "\(request.debugDescription) got \(reply.debugDescription)")
            }
            // HEAD: the headers alone, so the pipelined GET's reply is the next thing read.
            let head = try BlockingClient(port: port)
            defer { head.close() }
            try head.send("HEAD / HTTP/1.1\r\n\r\nGET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            let replies = String(decoding: try head.readToEnd(), as: UTF8.self)
            #expect(occurrences(of: "Hello, World!", in: replies) == 1, "one body, for the GET: \(replies.debugDescription)")
            #expect(occurrences(of: "HTTP/1.1 200 OK", in: replies) == 2, "\(replies.debugDescription)")
            // A chunked body (extensions, two chunks, a trailer) is read to its end:
            // the pipelined GET after it is answered too.
            let chunked = try BlockingClient(port: port)
            defer { chunked.close() }
            try chunked.send("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, Chunked\r\n\r\n5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"
                             + "GET / HTTP/1.1\r\nConnection: close\r\n\r\n")
            let chunkedReplies = String(decoding: try chunked.readToEnd(), as: UTF8.self)
            #expect(occurrences(of: "HTTP/1.1 200 OK", in: chunkedReplies) == 2, "\(chunkedReplies.debugDescription)")
            // Expect: 100-continue gets its interim reply before the body is sent.
            let expecting = try BlockingClient(port: port)
            defer { expecting.close() }
            try expecting.send("POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
            #expect(try expecting.readLine() == "HTTP/1.1 100 Continue\r")
            try expecting.send("hello")
            let final = String(decoding: try expecting.readToEnd(), as: UTF8.self)
            #expect(final.hasPrefix("\r\nHTTP/1.1 200 OK"), "\(final.debugDescription)")
            // HTTP/1.0 keep-alive (ApacheBench -k): the reply says the connection stays, and it does.
            let keeping = try BlockingClient(port: port)
            for _ in 0..<2 {
                try keeping.send("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
                var head: [String] = []
                while let line = try keeping.readLine(), line != "\r" { head.append(line) }
                #expect(head.contains("Connection: keep-alive\r"), "\(head)")
                #expect(try keeping.readBytes(13) == Array("Hello, World!".utf8))
            }
            keeping.close()   // before the SIGTERM below, which would wait for it
            // Not to HTTP/1.0, which has no interim replies: the body is read at once.
            let old = try BlockingClient(port: port)
            defer { old.close() }
            try old.send("POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello")
            let reply = String(decoding: try old.readToEnd(), as: UTF8.self)
            #expect(reply.hasPrefix("HTTP/1.1 200 OK") && !reply.contains("100 Continue"), "\(reply.debugDescription)")
            #expect(kill(server.pid, 0) == 0, "the server is still up")
            // One loop binds without SO_REUSEPORT: a second server on the port fails, it does not join.
            let second = try Child(["HTTPHello", "--port", "\(port)", "--backend", backend.rawValue])
            let (secondStatus, secondOutput) = try second.finish(limit: .seconds(10))
            #expect(secondStatus == 1 && secondOutput.contains("EADDRINUSE"), "\(secondOutput)")
            kill(server.pid, SIGTERM)
            let (status, output) = try server.finish(limit: .seconds(5))
            #expect(status == 0, "\(output)")
        }
    }
}


/// How many times `word` occurs in `text`, without overlaps.
func occurrences(of word: String, in text: String) -> Int {
    text.split(separator: word, omittingEmptySubsequences: false).count - 1
}

/// Starts an example and waits for its "listening" line: the child and its
/// port. A child that never says where it listens is stopped.
func startListening(_ arguments: [String]) throws -> (child: Child, port: Int) {
    let child = try Child(arguments)
    do {
        return (child, try #require(listeningPort(try child.waitForOutput(containing: "listening"))))
    } catch {
        child.stop()
        throw error
    }
}

/// The port in a "... listening on ADDRESS:PORT ..." line.
func listeningPort(_ line: String) -> Int? {
    line.split(separator: " ").lazy.compactMap { word -> Int? in
        guard word.contains(":"), let last = word.split(separator: ":").last else { return nil }
        return Int(last)
    }.first
}

/// A blocking TCP client with a 10 s receive timeout, for driving examples.
final class BlockingClient {
    let fd: Int32
    private var buffered: [UInt8] = []

    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, 4) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard try SocketAddress(ip: "127.0.0.1", port: port).withSockAddr({ connect(fd, $0, $1) }) == 0 else {
            let error = Errno(errno)
            Glibc.close(fd)
            throw error
        }
    }

    func send(_ text: String) throws { try send(bytes: Array(text.utf8)) }

    /// Sends all of `bytes`, across short sends and signals (EINTR).
    func send(bytes: [UInt8]) throws {
        var sent = 0
        while sent < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Errno(errno)
            }
            sent += n
        }
    }

    /// The next `\n`-terminated line without the `\n`; nil at EOF.
    func readLine() throws -> String? {
        try readLineBytes().map { String(decoding: $0, as: UTF8.self) }
    }

    /// ``readLine()`` as bytes.
    func readLineBytes() throws -> [UInt8]? {
        while true {
            if let newline = buffered.firstIndex(of: 0x0A) {
                let line = Array(buffered[..<newline])
                buffered.removeFirst(newline + 1)
                return line
            }
            guard try fill() else {
                // EOF: what is left is a last, unterminated line.
                defer { buffered = [] }
                return buffered.isEmpty ? nil : buffered
            }
        }
    }

    func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffered = [] }
        return buffered
    }

    /// The next bytes as they come: empty at EOF. Throws on a reset.
    func readSome() throws -> [UInt8] {
        if !buffered.isEmpty { defer { buffered = [] }; return buffered }
        _ = try fill()
        defer { buffered = [] }
        return buffered
    }

    /// Bytes waiting to be read, without blocking.
    func pending() -> Int {
        var count: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &count)
        return Int(count) + buffered.count
    }

    /// The next `count` bytes; fewer only at EOF.
    func readBytes(_ count: Int) throws -> [UInt8] {
        while buffered.count < count, try fill() {}
        defer { buffered.removeFirst(Swift.min(count, buffered.count)) }
        return Array(buffered.prefix(count))
    }

    /// Reads more; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        var n: Int
        repeat { n = recv(fd, &chunk, chunk.count, 0) } while n < 0 && errno == EINTR
        if n < 0 { throw Errno(errno) }
        buffered += chunk.prefix(n)
        return n > 0
    }

    func close() { Glibc.close(fd) }
}
