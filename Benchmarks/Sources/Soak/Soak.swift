import ArgumentParser
import Foundation
import RingLoop

/// The reliability soak (issue 10): a million connect/echo/close cycles with
/// 256 in flight against a RingLoop server, then 10,000 idle connections held
/// for a minute. It prints the process's descriptor count and RSS at the
/// start, the middle and the end of each phase; neither may grow.
///
///     swift run -c release Soak --backend uring --api protocol
///
/// Server and clients share one process, on two loops and two threads, so
/// the counts cover both ends. Not a test: it takes minutes.
@main
struct Soak: AsyncParsableCommand {
    @Option(help: "auto, uring or epoll (both loops).") var backend: String = "auto"
    @Option(help: "stream (a task per connection) or protocol (transports).") var api: String = "protocol"
    @Option(help: "Connect/echo/close cycles.") var cycles: Int = 1_000_000
    @Option(help: "Cycles in flight at once.") var inFlight: Int = 256
    @Option(help: "Idle connections held after the cycles.") var idle: Int = 10_000
    @Option(help: "How long the idle connections are held, in seconds.") var idleSeconds: Int = 60

    func validate() throws {
        guard Backend(rawValue: backend) != nil else { throw ValidationError("--backend \(backend): expected auto, uring or epoll") }
        guard api == "stream" || api == "protocol" else { throw ValidationError("--api \(api): expected stream or protocol") }
        guard cycles > 0, inFlight > 0, idle >= 0, idleSeconds >= 0 else { throw ValidationError("counts must be positive") }
    }

    func run() async throws {
        let descriptorLimit = raiseDescriptorLimit()
        // Both ends of every idle connection live in this process.
        let idle = min(self.idle, max(0, (descriptorLimit - 200) / 2))
        if idle < self.idle { say("soak: RLIMIT_NOFILE is \(descriptorLimit): holding \(idle) idle connections, not \(self.idle)") }
        let backend = Backend(rawValue: backend)!
        let server = try ServerThread(backend: backend, api: api)
        defer { server.stop() }
        let port = try server.port.get()
        let client = try EventLoop(backend: backend)
        defer { try? client.close() }
        say("soak: \(api) API on \(client.backend), \(cycles) cycles with \(inFlight) in flight, then \(idle) idle for \(idleSeconds) s")
        let baseline = report("start")
        let started = ContinuousClock.now
        let failures = try client.runUntilComplete { () async throws -> Int in
            var failures = 0
            var done = 0
            let reasons = Tally()
            let message = [UInt8](repeating: 0x61, count: 64)
            func cycle() async -> Bool {
                do {
                    let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                    try await stream.writeAll(message)
                    var got = 0
                    while got < message.count {
                        let chunk = try await stream.read(upTo: 64 - got)
                        if chunk.isEmpty { break }
                        got += chunk.count
                    }
                    try await stream.close()
                    if got != message.count { reasons.counts["short echo", default: 0] += 1 }
                    return got == message.count
                } catch {
                    reasons.counts["\(error)", default: 0] += 1
                    return false
                }
            }
            let perWorker = (cycles + inFlight - 1) / inFlight
            try await withThrowingTaskGroup(of: Int.self) { group in
                for worker in 0..<inFlight {
                    let count = min(perWorker, cycles - worker * perWorker)
                    guard count > 0 else { continue }
                    group.addTask(executorPreference: client) {
                        var failed = 0
                        for _ in 0..<count where !(await cycle()) { failed += 1 }
                        return failed
                    }
                }
                for try await failed in group {
                    failures += failed
                    done += 1
                    if done == inFlight / 2 { report("middle of the cycles") }
                }
            }
            for (reason, count) in reasons.counts.sorted(by: { $0.value > $1.value }).prefix(5) { say("soak: \(count) × \(reason)") }
            return failures
        }
        let elapsed = ContinuousClock.now - started
        settle(to: baseline)
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        report("after \(cycles) cycles, \(failures) failed, \(String(format: "%.1f", seconds)) s")

        if idle > 0 {
            let held = try client.runUntilComplete { () async throws -> [SocketStream] in
                var streams: [SocketStream] = []
                streams.reserveCapacity(idle)
                for _ in 0..<idle {
                    let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                    try await stream.writeAll([1])
                    _ = try await stream.read(upTo: 1)
                    streams.append(stream)
                }
                return streams
            }
            report("\(held.count) idle connections open")
            try client.runUntilComplete { try await client.sleep(for: .seconds(idleSeconds / 2)) }
            report("idle, halfway")
            try client.runUntilComplete { try await client.sleep(for: .seconds(idleSeconds - idleSeconds / 2)) }
            report("idle, end")
            try client.runUntilComplete {
                for stream in held { try await stream.close() }
            }
            settle(to: baseline)
            report("idle connections closed")
        }
        let leaked = openDescriptors() - baseline
        if leaked > 0 { say("soak: FAILED: \(leaked) descriptor(s) more than at the start") }
        if failures > 0 { say("soak: FAILED: \(failures) cycle(s) failed") }
        if failures > 0 || leaked > 0 { throw ExitCode(1) }
    }
}

/// Prints the process's open descriptors and resident memory; returns the
/// descriptor count.
@discardableResult
func report(_ moment: String) -> Int {
    let fds = openDescriptors()
    let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
    let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
    let rss = Double(pages * Int(sysconf(Int32(_SC_PAGESIZE)))) / 1_048_576
    say("soak: \(moment.padding(toLength: 48, withPad: " ", startingAt: 0)) fds \(String(format: "%6d", fds))  RSS \(String(format: "%8.1f", rss)) MiB")
    return fds
}

func openDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1
}

/// Gives the server's connection handlers a moment to finish closing: the
/// counts are read once the descriptors are back to `baseline`, or after 2 s.
func settle(to baseline: Int) {
    let deadline = ContinuousClock.now + .seconds(2)
    while openDescriptors() > baseline, ContinuousClock.now < deadline { usleep(10_000) }
}

/// Clients and server both live here: 2 descriptors per idle connection.
/// Returns the soft limit now in force.
func raiseDescriptorLimit() -> Int {
    var limit = rlimit()
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    // Root may raise the hard limit too; everyone may raise the soft one to it.
    var wanted = rlimit(rlim_cur: max(limit.rlim_max, 65_536), rlim_max: max(limit.rlim_max, 65_536))
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &wanted) != 0 {
        limit.rlim_cur = limit.rlim_max
        setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    }
    getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
    return Int(clamping: limit.rlim_cur)
}

/// The echo server, on a loop of its own thread.
final class ServerThread: @unchecked Sendable {
    private let ready = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private(set) var port: Result<Int, any Error> = .failure(CancellationError())
    private var loop: EventLoop?

    init(backend: Backend, api: String) throws {
        let thread = Thread { [self] in
            do {
                let loop = try EventLoop(backend: backend)
                self.loop = loop
                try loop.runUntilComplete { () async throws -> Void in
                    if api == "protocol" {
                        let server = try await loop.createServer(host: "127.0.0.1", port: 0) { Echo() }
                        self.port = .success(server.localAddress.port!)
                        self.ready.signal()
                        try await server.serveForever()
                    } else {
                        let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                        self.port = .success(listener.localAddress.port!)
                        self.ready.signal()
                        for try await stream in listener.connections {
                            loop.spawn {
                                defer { Task { try? await stream.close() } }
                                while true {
                                    let chunk = try await stream.read(upTo: 4096)
                                    if chunk.isEmpty { break }
                                    try await stream.writeAll(chunk)
                                }
                                try await stream.close()
                            }
                        }
                    }
                }
            } catch {
                if case .failure = port { port = .failure(error); ready.signal() }
            }
            try? loop?.close()
            finished.signal()
        }
        thread.start()
        ready.wait()
    }

    func stop() {
        guard let loop else { return }
        try? loop.callSoonThreadsafe { loop.stop() }
        finished.wait()
    }
}

/// Echoes every byte back.
final class Echo: TransportProtocol {
    private var transport: Transport?
    func connectionMade(_ transport: Transport) { self.transport = transport }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) throws { try transport?.write(bytes) }
}

/// Prints a line unbuffered: progress shows as it comes, even into a file.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Failure reasons by count; touched only by tasks on the client loop's thread.
final class Tally: @unchecked Sendable {
    var counts: [String: Int] = [:]
}
