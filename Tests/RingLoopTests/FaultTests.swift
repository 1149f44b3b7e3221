import Glibc
import Logging
@testable import RingLoop
import Testing

extension AllSuites {
    /// Exhaustion, hostile or broken peers and bad input: the server survives,
    /// never spins, never hangs, and every error names what went wrong.
    @Suite("Faults: exhaustion, peers and bad input", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct FaultTests {
        @Test("EMFILE on accept: the server backs off without spinning, logs once, and accepts again once descriptors are free",
              .enabled(if: ResourceCheck.enabled, "lowers the process's RLIMIT_NOFILE, so only in serial runs (scripts/test)"),
              arguments: allBackends, ["stream", "protocol"])
        func acceptSurvivesEMFILE(backend: Backend, api: String) async throws {
            let (records, recordsLog) = capturingLogger()
            let outcome = try await onNewThread { () -> (cpu: Duration, replies: [String], backoffLogs: Int, recovered: Int, hinted: Bool) in
                let loop = try EventLoop(backend: backend, logger: records)
                defer {
                    try? loop.close()
                    expectClosedClean(loop)
                }
                return try loop.runUntilComplete { () async throws -> (cpu: Duration, replies: [String], backoffLogs: Int, recovered: Int, hinted: Bool) in
                    // Lower the limit before the server exists: io_uring takes
                    // RLIMIT_NOFILE when an accept is prepared, not when it runs.
                    var old = rlimit()
                    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &old)
                    var low = old
                    low.rlim_cur = rlim_t(Swift.max(openDescriptorCount() + 40, 128))
                    setrlimit(Int32(RLIMIT_NOFILE.rawValue), &low)
                    defer { setrlimit(Int32(RLIMIT_NOFILE.rawValue), &old) }
                    let (port, stop) = try await echoServer(api)
                    let clients = EMFILEClients(port: port, count: 3)
                    let join = try onNewThreadSync { clients.run() }
                    try await waitUntil(loop) { clients.ready.isSet }
                    var hogs: [Int32] = []
                    while true {
                        let fd = dup(0)
                        if fd < 0 { break }
                        hogs.append(fd)
                    }
                    clients.go.set()   // they connect now; the server cannot accept them

                    let cpuBefore = threadCPUTime()
                    try await loop.sleep(for: .milliseconds(500))
                    let cpu = threadCPUTime() - cpuBefore
                    let backoffLogs = recordsLog.all.filter { $0.1.contains("retrying with backoff") }.count
                    let hinted = recordsLog.all.contains { $0.1.contains("retrying with backoff") && $0.1.contains("DescriptorLimit.raiseToMaximum()") }

                    for fd in hogs { close(fd) }
                    try await waitUntil(loop) { clients.done.isSet }
                    join()
                    try await stop()
                    let recovered = recordsLog.all.filter { $0.1.contains("Accepting again") }.count
                    return (cpu, clients.replies.all, backoffLogs, recovered, hinted)
                }
            }
            #expect(outcome.replies == ["hi 0", "hi 1", "hi 2"], "every connection made during the stall was served after it")
            #expect(outcome.cpu < .milliseconds(150), "the loop spun while descriptors ran out: \(outcome.cpu) of CPU in 500 ms")
            #expect(outcome.backoffLogs == 1, "one log line per episode, not one per retry")
            #expect(outcome.recovered == 1)
            #expect(outcome.hinted, "the EMFILE warning names the descriptor limit and how to lift it")
        }

        @Test("connect to a Unix-domain listener whose backlog is full fails at once with EAGAIN, naming the backlog; it never succeeds unconnected or waits", arguments: allBackends)
        func unixBacklogFull(backend: Backend) async throws {
            let path = temporaryPath("full.sock")
            // A raw listener that never accepts, so its backlog really fills.
            let raw = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(raw); unlink(path) }
            try #require(try SocketAddress(unixPath: path).withSockAddr { bind(raw, $0, $1) } == 0)
            try #require(listen(raw, 0) == 0)
            let outcomes = try await onLoop(backend) { loop -> [String] in
                var outcomes: [String] = []
                var connected: [SocketStream] = []
                for attempt in 0..<4 {
                    do {
                        let stream = try await withTimeout(.seconds(1)) {
                            attempt.isMultiple(of: 2)
                                ? try await SocketStream.connect(unixPath: path)
                                : try await SocketStream.connect(to: SocketAddress(unixPath: path))
                        }
                        // Connected for real: a write reaches the listener's queue.
                        try await stream.writeAll([1])
                        connected.append(stream)
                        outcomes.append("connected")
                    } catch let error as IOError where error.errno == Errno(EAGAIN) {
                        outcomes.append(error.description.contains("backlog is full") ? "EAGAIN" : "EAGAIN without the reason: \(error)")
                    } catch is TimeoutError {
                        outcomes.append("waited")
                    }
                }
                // The protocol API's connect is the same call.
                do {
                    let (transport, _) = try await loop.createConnection(unixPath: path) { RecordingProtocol() }
                    transport.abort()
                    outcomes.append("connected")
                } catch let error as IOError where error.errno == Errno(EAGAIN) {
                    outcomes.append("EAGAIN")
                }
                for stream in connected { try await stream.close() }
                return outcomes
            }
            // Linux lets a Unix-domain listener hold backlog + 1 connections.
            #expect(outcomes == ["connected", "EAGAIN", "EAGAIN", "EAGAIN", "EAGAIN"])
        }

        @Test("a listener that closes with our connection unaccepted: the read ends with connectionReset", arguments: allBackends)
        func peerClosesDuringConnect(backend: Backend) async throws {
            let code = try await onLoop(backend) { _ -> IOError.Code? in
                let raw = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
                var address = try SocketAddress(ip: "127.0.0.1", port: 0)
                _ = address.withSockAddr { bind(raw, $0, $1) }
                listen(raw, 4)
                var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
                var storage = sockaddr_storage()
                _ = withUnsafeMutablePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(raw, $0, &length) } }
                let port = withUnsafePointer(to: &storage) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
                address = try SocketAddress(ip: "127.0.0.1", port: port)
                let client = try await SocketStream.connect(to: address)
                close(raw)   // the handshake finished in the backlog; nobody accepted
                defer { Task { try? await client.close() } }
                do {
                    _ = try await withTimeout(.seconds(5)) { try await client.read(upTo: 16) }
                    try await client.close()
                    return nil
                } catch let error as IOError {
                    try await client.close()
                    return error.code
                }
            }
            #expect(code == .connectionReset)
        }

        @Test("a peer that never reads: the blocked writer times out, or is cancelled, cleanly", arguments: allBackends)
        func neverReadingPeer(backend: Backend) async throws {
            let (timedOut, cancelled, laterWrite) = try await onLoop(backend) { loop -> (Bool, Bool, IOError.Code?) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let big = [UInt8](repeating: 7, count: 16 << 20)
                // One connection times out, another is cancelled; neither peer reads.
                let first = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let firstPeer = try await listener.accept()
                var timedOut = false
                do { try await withTimeout(.milliseconds(200)) { try await first.writeAll(big) } } catch is TimeoutError { timedOut = true }
                var laterWrite: IOError.Code?
                do { try await first.writeAll([1]) } catch let error as IOError { laterWrite = error.code }
                try await first.close()   // prompt: the timed-out write aborted the connection

                let second = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let secondPeer = try await listener.accept()
                let writer = loop.spawn { try await second.writeAll(big) }
                try await loop.sleep(for: .milliseconds(50))
                writer.cancel()
                var cancelled = false
                do { try await writer.value } catch is CancellationError { cancelled = true }
                try await second.close()
                try await firstPeer.close(); try await secondPeer.close(); try await listener.close()
                return (timedOut, cancelled, laterWrite)
            }
            #expect(timedOut)
            #expect(cancelled)
            #expect(laterWrite != nil, "a write after the aborted one fails at once")
        }

        @Test("a peer that resets while a large write is under way: the write fails with connectionReset or brokenPipe", arguments: allBackends)
        func resetMidWrite(backend: Backend) async throws {
            let code = try await onLoop(backend) { loop -> IOError.Code? in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                let writer = loop.spawn { try await client.writeAll([UInt8](repeating: 1, count: 32 << 20)) }
                _ = try await server.read(upTo: 64 * 1024)   // the write is under way
                try server.setLinger(seconds: 0)
                try await server.close()                      // RST
                var code: IOError.Code?
                do { try await withTimeout(.seconds(10)) { try await writer.value } } catch let error as IOError { code = error.code }
                try await client.close()
                try await listener.close()
                return code
            }
            #expect(code == .connectionReset || code == .brokenPipe, "got \(String(describing: code))")
        }

        @Test("a slowloris peer at 1 byte per 100 ms delays no other connection", arguments: allBackends)
        func slowloris(backend: Backend) async throws {
            let (fastFinishedFirst, echoes) = try await onLoop(backend) { loop -> (Bool, Int) in
                let (port, stop) = try await echoServer("stream")
                let slowDone = Flag()
                let slow = loop.spawn {
                    let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                    for _ in 0..<30 {
                        try await stream.writeAll([UInt8(ascii: "s")])
                        try await loop.sleep(for: .milliseconds(100))
                    }
                    slowDone.set()
                    try await stream.close()
                }
                let echoes = Box(0)
                var fast: [LoopTask<Void>] = []
                for i in 0..<20 {
                    fast.append(loop.spawn {
                        let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                        for j in 0..<20 {
                            let message = Array("m\(i).\(j)".utf8)
                            try await stream.writeAll(message)
                            var reply: [UInt8] = []
                            while reply.count < message.count { reply += try await stream.read(upTo: 64) }
                            if reply == message { echoes.value += 1 }
                        }
                        try await stream.close()
                    })
                }
                for task in fast { try await task.value }
                let fastFinishedFirst = !slowDone.isSet
                try await slow.value
                try await stop()
                return (fastFinishedFirst, echoes.value)
            }
            #expect(echoes == 400)
            #expect(fastFinishedFirst, "400 echoes on 20 connections finished while the slow peer was still dribbling")
        }

        @Test("bad input is a thrown error that names it; the process lives", arguments: allBackends)
        func badInput(backend: Backend) async throws {
            let errors = try await onLoop(backend) { _ -> [String: IOError] in
                var errors: [String: IOError] = [:]
                func record(_ name: String, _ body: () async throws -> Void) async {
                    do { try await body() } catch let error as IOError { errors[name] = error } catch {}
                }
                await record("port 70000") { _ = try SocketAddress(ip: "127.0.0.1", port: 70_000) }
                await record("negative port") { _ = try await SocketStream.connect(host: "127.0.0.1", port: -1) }
                await record("host name as ip") { _ = try SocketAddress(ip: "localhost", port: 80) }
                await record("NUL in host") { _ = try await SocketStream.connect(host: "127.0.0.1\0evil", port: 80) }
                await record("NUL in path") { _ = try await File.open("/tmp/a\0b") }
                await record("long unix path") { _ = try await SocketListener.bind(unixPath: "/tmp/" + String(repeating: "x", count: 200)) }
                await record("zero-capacity stream read") {
                    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                    let server = try await listener.accept()
                    defer { Task { try? await client.close(); try? await server.close(); try? await listener.close() } }
                    do { _ = try await client.read(into: IOBuffer(capacity: 0)) } catch {
                        try await client.close(); try await server.close(); try await listener.close()
                        throw error
                    }
                }
                await record("bad alignment") { _ = try IOBuffer(capacity: 16, alignment: 3) }
                let path = temporaryPath("regular")
                try await writeFile(path, [1])
                await record("removeExisting on a regular file") { _ = try await SocketListener.bind(unixPath: path, removeExisting: true) }
                #expect(access(path, F_OK) == 0, "removeExisting left the regular file alone")
                unlink(path)
                return errors
            }
            let expected = ["port 70000", "negative port", "host name as ip", "NUL in host", "NUL in path", "long unix path",
                            "zero-capacity stream read", "bad alignment", "removeExisting on a regular file"]
            for name in expected {
                let error = try #require(errors[name], "\(name): no IOError thrown")
                #expect(!error.description.isEmpty)
            }
            #expect(errors["port 70000"]?.description.contains("70000") == true)
            #expect(errors["NUL in path"]?.code == .invalidArgument)
            #expect(errors["zero-capacity stream read"]?.code == .invalidArgument)
        }

        @Test("readToEnd(limit:) stops at the limit and refuses a negative one; shutdown(.read) and (.both) behave", arguments: allBackends)
        func readLimitsAndShutdown(backend: Backend) async throws {
            let (limited, afterShutdownRead, peerSawEOF) = try await onLoop(backend) { _ -> (Int, [UInt8], [UInt8]) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                try await server.writeAll([UInt8](repeating: 5, count: 10_000))
                let limited = try await client.readToEnd(limit: 4_096)
                #expect(try await client.readToEnd(limit: 0).isEmpty)
                await #expect(throws: IOError.self) { try await client.readToEnd(limit: -1) }
                try await client.shutdown(.read)
                let afterShutdownRead = try await client.read(upTo: 100_000).filter { $0 != 5 }
                try await client.shutdown(.both)
                let peerSawEOF = try await server.readToEnd()
                try await client.close(); try await server.close(); try await listener.close()
                return (limited.count, afterShutdownRead, peerSawEOF)
            }
            #expect(limited == 4_096)
            #expect(afterShutdownRead.isEmpty)
            #expect(peerSawEOF.isEmpty)
        }

        @Test("socket options read back what was set; a bad option is an error naming it", arguments: allBackends)
        func socketOptions(backend: Backend) async throws {
            let (noDelay, keepAlive, lingerOK, badOption) = try await onLoop(backend) { _ -> (Bool, Int32, Bool, IOError?) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                try client.setNoDelay(true)
                try client.setKeepAlive(true)
                var value: Int32 = 0
                var length = socklen_t(4)
                getsockopt(client.fileDescriptor, SOL_SOCKET, SO_KEEPALIVE, &value, &length)
                try client.setLinger(seconds: 1)
                var linger = Glibc.linger()
                length = socklen_t(MemoryLayout<Glibc.linger>.size)
                getsockopt(client.fileDescriptor, SOL_SOCKET, SO_LINGER, &linger, &length)
                var bad: IOError?
                do { try client.setOption(level: SOL_SOCKET, name: 9_999, value: 1) } catch let error as IOError { bad = error } catch {}
                let noDelay = try client.noDelay
                try await client.close(); try await server.close(); try await listener.close()
                return (noDelay, value, linger.l_onoff == 1 && linger.l_linger == 1, bad)
            }
            #expect(noDelay)
            #expect(keepAlive == 1)
            #expect(lingerOK)
            #expect(badOption?.operation.contains("setsockopt") == true, "\(String(describing: badOption))")
        }

        @Test("one reader and one writer on the same stream at once both progress", arguments: allBackends)
        func concurrentReaderAndWriter(backend: Backend) async throws {
            let (sent, received) = try await onLoop(backend) { loop -> (Int, Int) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                let echo = loop.spawn {
                    while true {
                        let chunk = try await server.read(upTo: 65_536)
                        if chunk.isEmpty { break }
                        try await server.writeAll(chunk)
                    }
                    try await server.close()
                }
                let total = 4 << 20
                let reader = loop.spawn { () async throws -> Int in
                    var received = 0
                    while received < total {
                        let chunk = try await client.read(upTo: 65_536)
                        if chunk.isEmpty { break }
                        received += chunk.count
                    }
                    return received
                }
                let writer = loop.spawn { () async throws -> Int in
                    let block = [UInt8](repeating: 3, count: 65_536)
                    for _ in 0..<(total / block.count) { try await client.writeAll(block) }
                    return total
                }
                let sent = try await writer.value
                let received = try await reader.value
                try await client.close()
                try await echo.value
                try await listener.close()
                return (sent, received)
            }
            #expect(sent == 4 << 20)
            #expect(received == sent)
        }

        @Test("two loops share one thread pool; closing one leaves the other working", arguments: allBackends)
        func sharedPool(backend: Backend) async throws {
            let path = temporaryPath("shared-pool")
            defer { unlink(path) }
            let (first, second) = try await onNewThread { () -> ([UInt8], [UInt8]) in
                let pool = try ThreadPool(threads: 2)
                defer { pool.shutdown() }
                let a = try EventLoop(backend: backend, threadPool: pool)
                let b = try EventLoop(backend: backend, threadPool: pool)
                let first = try a.runUntilComplete {
                    try await writeFile(path, Array("shared".utf8))
                    return try await a.offload { Array("pool".utf8) } + (try await readFile(path))
                }
                try a.close()
                let second = try b.runUntilComplete {
                    try await b.offload { Array("pool".utf8) } + (try await readFile(path))
                }
                try b.close()
                #expect(pool.threadCount == 2, "the shared pool outlives the loops that borrowed it")
                return (first, second)
            }
            #expect(first == Array("poolshared".utf8))
            #expect(second == first)
        }

        @Test("O_DIRECT: aligned reads work; a misaligned buffer is a clear EINVAL", arguments: allBackends)
        func directIO(backend: Backend) async throws {
            // tmpfs may refuse O_DIRECT; the package directory is on a real file system.
            let path = "\(FileManagerless.currentDirectory)/.build/ringloop-direct-\(getpid())"
            defer { unlink(path) }
            let outcome = try await onLoop(backend) { _ -> (Int, IOError?)? in
                try await writeFile(path, pattern(16_384))
                let file: File
                do { file = try await File.open(path, File.Options.read.direct) } catch let error as IOError where error.code == .invalidArgument {
                    return nil   // this file system has no O_DIRECT
                }
                let aligned = try IOBuffer(capacity: 4_096, alignment: 4_096)
                let n = try await file.read(into: aligned, at: 4_096)
                var misaligned: IOError?
                do { _ = try await file.read(into: IOBuffer(capacity: 100, alignment: 16), at: 1) } catch let error as IOError { misaligned = error }
                try await file.close()
                return (n, misaligned)
            }
            guard let (n, misaligned) = outcome else {
                print("note: O_DIRECT is not supported on the file system of \(path); skipped")
                return
            }
            #expect(n == 4_096)
            #expect(misaligned?.code == .invalidArgument)
            #expect(misaligned?.path == path)
        }

        @Test("a FIFO is read by readiness: a read with no data times out and close is prompt", arguments: allBackends)
        func fifoDoesNotWedge(backend: Backend) async throws {
            let path = temporaryPath("fifo")
            try #require(mkfifo(path, 0o600) == 0)
            defer { unlink(path) }
            let (timedOut, got) = try await onLoop(backend) { _ -> (Bool, [UInt8]) in
                let file = try await File.open(path)
                let writer = open(path, O_WRONLY | O_NONBLOCK)
                defer { close(writer) }
                var timedOut = false
                do { _ = try await withTimeout(.milliseconds(100)) { try await file.read(into: IOBuffer(capacity: 16)) } } catch is TimeoutError {
                    timedOut = true
                }
                _ = "later".withCString { write(writer, $0, 5) }
                let buffer = try IOBuffer(capacity: 16)
                let n = try await withTimeout(.seconds(5)) { try await file.read(into: buffer) }
                let got = buffer.withUnsafeBytes { Array($0.prefix(n)) }
                try await file.close()
                return (timedOut, got)
            }
            #expect(timedOut)
            #expect(got == Array("later".utf8))
        }

        @Test("a descriptor closed behind the loop's back does not block the number's next owner", arguments: allBackends)
        func rawClosedNumberReused(backend: Backend) async throws {
            let reply = try await onLoop(backend) { loop -> [UInt8] in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let port = listener.localAddress.port!
                let first = try await SocketStream.connect(host: "127.0.0.1", port: port)
                let firstServer = try await listener.accept()
                let pending = loop.spawn { try await first.read(upTo: 16) }   // registers the number
                try await loop.sleep(for: .milliseconds(10))
                let number = first.fileDescriptor
                close(number)                                                  // behind RingLoop's back
                let second = try await SocketStream.connect(host: "127.0.0.1", port: port)
                let secondServer = try await listener.accept()
                #expect(second.fileDescriptor == number, "the kernel reused the number (lowest free)")
                try await secondServer.writeAll(Array("reused".utf8))
                let reply = try await withTimeout(.seconds(5)) { try await second.read(upTo: 16) }
                pending.cancel()
                _ = await pending.result
                try await second.close()
                try? await first.close()   // its number is free again: EBADF at worst
                try await firstServer.close(); try await secondServer.close(); try await listener.close()
                return reply
            }
            #expect(reply == Array("reused".utf8))
        }
    }
}

/// The process's working directory, without Foundation.
enum FileManagerless {
    static var currentDirectory: String {
        guard let path = getcwd(nil, 0) else { return "." }
        defer { free(path) }
        return String(cString: path)
    }
}

/// CPU time the calling thread has used.
func threadCPUTime() -> Duration {
    var ts = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
    return .seconds(ts.tv_sec) + .nanoseconds(ts.tv_nsec)
}

/// An echo server on a running loop, through the stream API (a task per
/// connection) or the protocol API; returns its port and a stop function.
func echoServer(_ api: String) async throws -> (port: Int, stop: () async throws -> Void) {
    let loop = try EventLoop.running()
    if api == "protocol" {
        let server = try await loop.createServer(host: "127.0.0.1", port: 0) {
            let echo = RecordingProtocol()
            echo.echo = true
            return echo
        }
        return (server.localAddress.port!, {
            server.close()
            server.abortClients()
            await server.waitClosed()
        })
    }
    let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
    let connections = Box<[LoopTask<Void>]>([])
    let acceptor = loop.spawn {
        while true {
            let stream: SocketStream
            do { stream = try await listener.accept() } catch { return }
            connections.value.append(loop.spawn {
                defer { Task { try? await stream.close() } }
                while true {
                    let chunk = try await stream.read(upTo: 4_096)
                    if chunk.isEmpty { break }
                    try await stream.writeAll(chunk)
                }
                try await stream.close()
            })
        }
    }
    return (listener.localAddress.port!, {
        try await listener.close()
        _ = await acceptor.result
        for task in connections.value { task.cancel(); _ = await task.result }
    })
}

/// Three blocking clients on their own thread, made before the server's
/// descriptors run out and connected while they are out.
final class EMFILEClients: Sendable {
    let port: Int
    let count: Int
    let ready = Flag(), go = Flag(), done = Flag()
    let replies = Recorder<String>()

    init(port: Int, count: Int) {
        self.port = port
        self.count = count
    }

    func run() {
        defer { done.set() }
        let sockets = (0..<count).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        defer { for fd in sockets { close(fd) } }
        ready.set()
        while !go.isSet { usleep(1_000) }
        guard let address = try? SocketAddress(ip: "127.0.0.1", port: port) else { return }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        for (i, fd) in sockets.enumerated() {
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            guard address.withSockAddr({ connect(fd, $0, $1) }) == 0 else { return }
            let message = "hi \(i)"
            _ = message.withCString { send(fd, $0, message.utf8.count, 0) }
        }
        for (i, fd) in sockets.enumerated() {
            var buffer = [UInt8](repeating: 0, count: 16)
            let n = recv(fd, &buffer, 16, 0)
            if n > 0 { replies.append(String(decoding: buffer.prefix(n), as: UTF8.self)) } else { replies.append("client \(i): recv \(n)") }
        }
    }
}
