import Glibc
@testable import RingLoop
import Testing

/// The examples' command lines are a contract: these run the built programs
/// as a user would, with real sockets and real signals.
@Suite("Examples: Chat and HTTPHello", .serialized, .checksResources, .timeLimit(.minutes(2)),
       .enabled(if: Child.productExists("Chat") && Child.productExists("HTTPHello"),
                "needs the Chat and HTTPHello products next to the test bundle (swift build --build-tests)"))
struct ExampleTests {
    @Test("Chat relays each line to every other client and says goodbye on SIGTERM", arguments: allBackends)
    func chat(backend: Backend) throws {
        let server = try Child(["Chat", "--port", "0", "--backend", backend.rawValue])
        defer { server.stop() }
        let port = try #require(listeningPort(try server.waitForOutput(containing: "listening")))
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

        kill(server.pid, SIGINT)
        let (status, output) = try server.finish(limit: .seconds(5))
        #expect(status == 0, "\(output)")
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

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard try SocketAddress(ip: "127.0.0.1", port: port).withSockAddr({ connect(fd, $0, $1) }) == 0 else {
            let error = Errno(errno)
            Glibc.close(fd)
            throw error
        }
    }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        guard bytes.withUnsafeBytes({ Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }) == bytes.count else { throw Errno(errno) }
    }

    /// The next `\n`-terminated line without the `\n`; nil at EOF.
    func readLine() throws -> String? {
        while true {
            if let newline = buffered.firstIndex(of: 0x0A) {
                let line = String(decoding: buffered[..<newline], as: UTF8.self)
                buffered.removeFirst(newline + 1)
                return line
            }
            guard try fill() else { return buffered.isEmpty ? nil : String(decoding: buffered, as: UTF8.self) }
        }
    }

    func readToEnd() throws -> [UInt8] {
        while try fill() {}
        defer { buffered = [] }
        return buffered
    }

    /// Bytes waiting to be read, without blocking.
    func pending() -> Int {
        var count: Int32 = 0
        _ = ioctl(fd, UInt(FIONREAD), &count)
        return Int(count) + buffered.count
    }

    /// Reads more; false at EOF.
    private func fill() throws -> Bool {
        var chunk = [UInt8](repeating: 0, count: 4096)
        let n = recv(fd, &chunk, chunk.count, 0)
        if n < 0 { throw Errno(errno) }
        buffered += chunk.prefix(n)
        return n > 0
    }

    func close() { Glibc.close(fd) }
}
