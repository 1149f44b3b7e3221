import Foundation
import Glibc
import Testing

/// The C load client's fairness accounting, against servers written here:
/// one that answers every connection, and one that never answers one of
/// them. The client must report the second as starving that connection,
/// count its unanswered request in the latencies, and never hang.
@Suite("The load client's fairness accounting", .serialized, .timeLimit(.minutes(2)))
struct LoadClientTests {
    /// Compiles C/load_client.c once into a temporary directory.
    static let binary: String? = {
        let source = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("C/load_client.c").path
        let output = NSTemporaryDirectory() + "load_client-test-\(getpid())"
        let cc = Process()
        cc.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        cc.arguments = ["cc", "-O2", "-o", output, source]
        guard (try? cc.run()) != nil else { return nil }
        cc.waitUntilExit()
        return cc.terminationStatus == 0 ? output : nil
    }()

    /// Runs the load client's echo mode for half a second against `server`.
    func drive(_ server: TestServer, connections: Int) throws -> [String: Double] {
        let binary = try #require(Self.binary, "cc could not build load_client.c")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = ["echo", "--port", String(server.port), "--server-pid", String(getpid()),
                             "--connections", String(connections), "--size", "64", "--duration", "0.5",
                             "--warmup", "0.1", "--first-echo-timeout", "1"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        let line = try #require(String(decoding: data, as: UTF8.self).split(separator: "\n").last)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }

    @Test("a server that answers everyone starves no one")
    func fairServer() throws {
        let server = try TestServer(ignoring: nil)
        defer { server.stop() }
        let result = try drive(server, connections: 8)
        #expect(result["conn_starved"] == 0)
        #expect(result["first_echo_timeout"] == 0)
        #expect((result["conn_min"] ?? 0) > 0)
        #expect((result["ops_per_s"] ?? 0) > 0)
    }

    @Test("a server that never answers one connection is reported as starving it")
    func starvingServer() throws {
        let server = try TestServer(ignoring: 3)
        defer { server.stop() }
        let result = try drive(server, connections: 8)
        #expect(result["conn_starved"] == 1)
        #expect(result["conn_min"] == 0)
        #expect((result["conn_median"] ?? 0) > 0)
        // The window opened on the first-echo timeout, not on every connection's first reply.
        #expect(result["first_echo_timeout"] == 1)
        // The unanswered request is a latency sample of at least the window's length.
        #expect((result["censored"] ?? 0) >= 1)
        #expect((result["max_us"] ?? 0) >= 400_000)
    }
}

/// A blocking echo server on 127.0.0.1, a thread per connection. The
/// `ignoring`-th accepted connection (from 0) is accepted and never read.
final class TestServer: @unchecked Sendable {
    let listener: Int32
    let port: Int
    private let ignoring: Int?
    private var threads: [pthread_t] = []
    private let lock = NSLock()
    private var connections: [Int32] = []

    init(ignoring: Int?) throws {
        self.ignoring = ignoring
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 64) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        guard bound else {
            close(listener)
            throw POSIXError(.EADDRNOTAVAIL)
        }
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
        spawn { [self] in acceptLoop() }
    }

    private func spawn(_ body: @escaping () -> Void) {
        final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
        var thread = pthread_t()
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        pthread_create(&thread, nil, { raw in
            Unmanaged<Box>.fromOpaque(raw!).takeRetainedValue().body()
            return nil
        }, box)
        lock.withLock { threads.append(thread) }
    }

    private func acceptLoop() {
        var index = 0
        while true {
            let fd = accept(listener, nil, nil)
            if fd < 0 { return }
            lock.withLock { connections.append(fd) }
            defer { index += 1 }
            if index == ignoring { continue }
            spawn {
                var buffer = [UInt8](repeating: 0, count: 4096)
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                    if n <= 0 { return }
                    if buffer.withUnsafeBytes({ send(fd, $0.baseAddress, n, Int32(MSG_NOSIGNAL)) }) != n { return }
                }
            }
        }
    }

    func stop() {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in lock.withLock({ connections }) { shutdown(fd, Int32(SHUT_RDWR)) }
        for thread in lock.withLock({ threads }) { pthread_join(thread, nil) }
        for fd in lock.withLock({ connections }) { close(fd) }
    }
}
