import CompareCore
import Foundation

/// Runs one workload on one contestant once and returns its metrics: the
/// JSON line a worker, a Python script, the load client or fio printed, plus
/// what the runner measured around it.
struct Measurement {
    let tools: Toolbox
    let settings: Settings
    let dataFile: String
    let accounting: CPUAccounting?
    let pinning: Pinning?
    /// Each server gets a fresh port, so no run meets another's TIME_WAIT sockets.
    private var nextPort = 21_000
    private var runCount = 0

    init(tools: Toolbox, settings: Settings, dataFile: String, accounting: CPUAccounting?, pinning: Pinning?) {
        self.tools = tools
        self.settings = settings
        self.dataFile = dataFile
        self.accounting = accounting
        self.pinning = pinning
    }

    /// `countSyscalls`: the dedicated counting pass (perf attached to the
    /// server for the measured window), kept out of the timed rounds.
    mutating func run(_ workload: Workload, _ contestant: Contestant, countSyscalls: Bool = false) throws -> [String: Double] {
        switch workload.kind {
        case .micro(let name, let batch):
            let count = String(name == "timersSpread" ? settings.spreadTimerCount : settings.microCount)
            var worker = ["micro", "--workload", name, "--count", count]
            var script = [name, count]
            if batch > 0 {
                worker += ["--batch", String(batch)]
                script += ["--batch", String(batch)]
            }
            return try metrics(of: clientCommand(contestant, worker: worker, script: "asyncio_micro.py", script), timeout: 300)
        case .echo(let connections, let size):
            var values = try againstServer(contestant, client: ["echo", "--connections", String(connections), "--size", String(size)],
                                           countSyscalls: countSyscalls)
            if size >= 65536 {
                values["gb_per_s"] = (values["ops_per_s"] ?? 0) * Double(size) / 1e9
                values["cpu_ms_per_gb"] = (values["server_cpu_ns_per_op"] ?? 0) * 1000 / Double(size)
            }
            return values
        case .rate(let connections, let size, let perSecond):
            return try againstServer(contestant, client: ["rate", "--connections", String(connections), "--size", String(size),
                                                          "--rate", String(perSecond)], countSyscalls: countSyscalls)
        case .accept(let concurrency):
            return try againstServer(contestant, client: ["accept", "--connections", String(concurrency)], countSyscalls: countSyscalls)
        case .idle(let size):
            return try againstServer(contestant, client: ["idle", "--connections", String(settings.idleConnections),
                                                          "--size", String(size)], countSyscalls: false, idle: true)
        case .file(let pattern, let direct, let depth, let blockSize):
            var residency: (before: Double, after: Double)?
            if !direct { residency = DataFile.ensureCached(dataFile) }
            var values: [String: Double]
            if contestant == .fio || contestant == .fioFixed {
                values = try fio(pattern: pattern, direct: direct, depth: depth, blockSize: blockSize, fixed: contestant == .fioFixed)
            } else {
                let arguments = [dataFile, "--pattern", pattern, "--depth", String(depth), "--block-size", String(blockSize),
                                 "--seconds", String(settings.fileSeconds)] + (direct ? ["--direct"] : [])
                values = try metrics(of: clientCommand(contestant, worker: ["file"] + arguments, script: "asyncio_file.py", arguments),
                                     timeout: settings.fileSeconds + 120)
            }
            if let cpu = values["cpu_us_per_op"], cpu > 0 { values["ops_per_cpu_s"] = 1e6 / cpu }
            if let residency {
                values["resident_before"] = residency.before
                values["resident_warmed"] = residency.after
                values["resident_after"] = DataFile.residency(dataFile) ?? 0
            }
            return values
        case .http(let connections):
            return try httpHello(contestant, connections: connections)
        case .copy:
            _ = DataFile.ensureCached(dataFile)
            let target = dataFile + ".copy"
            defer { unlink(target) }
            unlink(target)
            // Every copy starts with no dirty pages: otherwise the kernel is
            // still writing the previous round's 1 GiB out while this one
            // runs, and which contestant pays for it depends on the order.
            sync()
            if contestant == .cp {
                let started = Date()
                let result = try execute(["cp", dataFile, target], timeout: 300)
                guard result.succeeded else { throw CompareError("cp failed: \(result.lastWords)") }
                return ["seconds": Date().timeIntervalSince(started)]
            }
            return try metrics(of: clientCommand(contestant, worker: ["copy", dataFile, target], script: "", []), timeout: 300)
        }
    }

    /// A contestant that runs in-process: BenchWorker (`worker` arguments, plus
    /// the contestant) for the Swift ones, a Python script for asyncio and uvloop.
    private func clientCommand(_ contestant: Contestant, worker: [String], script: String, _ arguments: [String]) throws -> [String] {
        switch contestant {
        case .ringloopURing: return [tools.worker] + worker + ["--contestant", "uring"]
        case .ringloopEpoll: return [tools.worker] + worker + ["--contestant", "epoll"]
        case .nio: return [tools.worker] + worker + ["--contestant", "nio"]
        case .asyncio, .uvloop: return try python(script, arguments, contestant)
        default: throw CompareError("\(contestant.displayName) does not run this workload")
        }
    }

    private func python(_ script: String, _ arguments: [String], _ contestant: Contestant) throws -> [String] {
        guard let python = tools.python else { throw CompareError("python3 is not installed") }
        let uvloop = contestant == .uvloop || contestant == .uvloopStreams
        return [python, tools.script(script)] + arguments + (uvloop ? ["--uvloop"] : [])
    }

    private func serverCommand(_ contestant: Contestant, port: Int) throws -> (command: [String], environment: [String: String]?) {
        let p = String(port)
        let threads = ["--threads", String(settings.serverThreads ?? 1)]
        switch contestant {
        case .ringloopURing: return ([tools.echoServer, "--port", p, "--backend", "uring", "--api", "stream"] + threads, nil)
        case .ringloopEpoll: return ([tools.echoServer, "--port", p, "--backend", "epoll", "--api", "stream"] + threads, nil)
        case .ringloopURingProtocol: return ([tools.echoServer, "--port", p, "--backend", "uring", "--api", "protocol"] + threads, nil)
        case .ringloopEpollProtocol: return ([tools.echoServer, "--port", p, "--backend", "epoll", "--api", "protocol"] + threads, nil)
        case .nio: return ([tools.worker, "nio-echo", "--port", p] + threads, nil)
        case .nioAsync: return ([tools.worker, "nio-echo", "--port", p, "--async"] + threads, nil)
        case .asyncio, .uvloop: return (try python("asyncio_echo.py", [p], contestant), nil)
        case .asyncioStreams, .uvloopStreams: return (try python("asyncio_echo.py", [p, "--streams"], contestant), nil)
        case .cLiburing: return ([tools.c("uring_echo"), p], nil)
        case .cLiburingTuned: return ([tools.c("uring_echo_tuned"), p], nil)
        case .cEpoll: return ([tools.c("epoll_echo"), p], nil)
        case .libuv: return ([tools.c("libuv_echo"), p], nil)
        case .go:
            var environment = ProcessInfo.processInfo.environment
            environment["GOMAXPROCS"] = "1"
            return ([tools.c("echo_go"), p], environment)
        case .fio, .fioFixed, .cp: throw CompareError("\(contestant.displayName) is not a server")
        }
    }

    /// Starts the contestant's server pinned on a fresh port, in a cgroup of
    /// its own, drives it with the C load client, and stops it.
    private mutating func againstServer(_ contestant: Contestant, client: [String], countSyscalls: Bool,
                                        idle: Bool = false) throws -> [String: Double] {
        nextPort = nextPort >= 29_000 ? 21_000 : nextPort + 1
        runCount += 1
        let port = nextPort
        let (command, environment) = try serverCommand(contestant, port: port)
        let server = try start(pinning?.server(command) ?? command, environment: environment, captureOutput: false)
        let group = accounting?.group(for: server.processIdentifier, name: "run-\(runCount)")
        defer {
            stop(server)
            if let group { accounting?.remove(group) }
        }
        try waitUntilListening(port: port, server: server)
        var arguments = [tools.c("load_client")] + client.prefix(1) + ["--port", String(port),
                         "--server-pid", String(server.processIdentifier)] + client.dropFirst()
        if !idle {
            arguments += ["--duration", String(settings.socketSeconds), "--warmup", String(settings.socketWarmup)]
        } else {
            arguments += ["--duration", "1"]
        }
        if let group { arguments += ["--cgroup", group] }
        if countSyscalls { arguments.append("--count-syscalls") }
        var values = try metrics(of: pinning?.client(arguments) ?? arguments,
                                 timeout: settings.socketSeconds + settings.socketWarmup + 120)
        if !idle {
            let schedstat = values["server_cpu_ns_per_op"] ?? 0
            values["schedstat_cpu_ns_per_op"] = schedstat
            if let cgroup = values["cgroup_cpu_ns_per_op"], cgroup > 0 { values["server_cpu_ns_per_op"] = cgroup }
        }
        return values
    }

    /// The http-hello workload: the contestant's HTTP server pinned, wrk on
    /// the client CPU for a warm-up and then the measured window; server CPU
    /// from its cgroup (or schedstat) over the window, per request.
    private mutating func httpHello(_ contestant: Contestant, connections: Int) throws -> [String: Double] {
        guard let wrk = which("wrk") else { throw CompareError("wrk is not installed (apt-get install wrk)") }
        nextPort = nextPort >= 29_000 ? 21_000 : nextPort + 1
        runCount += 1
        let port = nextPort, p = String(port)
        let command: [String]
        let threads = ["--threads", String(settings.serverThreads ?? 1)]
        switch contestant {
        case .ringloopURing: command = [tools.httpHello, "--port", p, "--backend", "uring"] + threads
        case .ringloopEpoll: command = [tools.httpHello, "--port", p, "--backend", "epoll"] + threads
        case .nio: command = [tools.worker, "nio-http", "--port", p] + threads
        case .uvloop, .asyncio: command = try python("http_hello.py", [p], contestant)
        default: throw CompareError("\(contestant.displayName) has no HTTP server")
        }
        let server = try start(pinning?.server(command) ?? command, environment: nil, captureOutput: false)
        let group = accounting?.group(for: server.processIdentifier, name: "run-\(runCount)")
        defer {
            stop(server)
            if let group { accounting?.remove(group) }
        }
        try waitUntilListening(port: port, server: server)
        func load(_ seconds: Int) throws -> String {
            let arguments = [wrk, "-t1", "-c\(connections)", "-d\(seconds)s", "--latency", "http://127.0.0.1:\(port)/"]
            let result = try execute(pinning?.client(arguments) ?? arguments, timeout: Double(seconds) + 60)
            guard result.succeeded else { throw CompareError("wrk failed: \(result.lastWords)") }
            return result.stdout
        }
        _ = try load(max(1, Int(settings.socketWarmup.rounded(.up))))
        let before = serverCPUNanoseconds(pid: server.processIdentifier, cgroup: group)
        let output = try load(max(1, Int(settings.socketSeconds.rounded())))
        let cpu = serverCPUNanoseconds(pid: server.processIdentifier, cgroup: group) - before
        let report = WrkReport(output)
        guard report.requests > 0 else { throw CompareError("wrk completed no request: \(output.suffix(300))") }
        if report.errors > 0 { throw CompareError("wrk saw \(report.errors) socket errors or non-2xx replies") }
        return ["ops_per_s": report.requestsPerSecond, "server_cpu_ns_per_op": cpu / report.requests,
                "p50_us": report.p50Microseconds, "p99_us": report.p99Microseconds]
    }

    private func waitUntilListening(port: Int, server: Process) throws {
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            guard server.isRunning else {
                throw CompareError("the server exited before listening: \(stop(server).split(separator: "\n").last ?? "")")
            }
            if canConnect(port: port) { return }
            usleep(20_000)
        }
        throw CompareError("the server did not listen on 127.0.0.1:\(port) within 15 s")
    }

    private func fio(pattern: String, direct: Bool, depth: Int, blockSize: Int, fixed: Bool) throws -> [String: Double] {
        guard let fio = tools.fio else { throw CompareError("fio is not installed") }
        // --mem=mmap: page-aligned buffers, as the other contestants use. With fio's
        // default malloc'd buffers its buffered 1 MiB reads ran at a quarter of
        // dd's speed here (1.5 against 6.5 GiB/s, even with psync).
        var command = [fio, "--name=ringloop-compare", "--filename=\(dataFile)", "--ioengine=io_uring", "--mem=mmap",
                       "--rw=\(pattern == "random" ? "randread" : "read")", "--bs=\(blockSize)", "--iodepth=\(depth)",
                       "--direct=\(direct ? 1 : 0)", "--invalidate=0", "--output-format=json"]
        if fixed { command += ["--fixedbufs", "--registerfiles"] }
        // fio 3.33 reads "--runtime=0.4" as 0 seconds (and then reads the whole
        // file): give it milliseconds, and check what it reports back.
        let requestedMilliseconds = Int((settings.fileSeconds * 1000).rounded())
        // Pure random offsets, as the other contestants draw them (fio's default
        // random map would avoid re-reading a block within a pass).
        command += pattern == "random"
            ? ["--norandommap", "--randrepeat=0", "--time_based", "--runtime=\(requestedMilliseconds)ms"]
            : ["--size=\(DataFile.size)"]
        let output = try execute(command, timeout: settings.fileSeconds + 120)
        guard output.succeeded else { throw CompareError("fio failed: \(output.lastWords)") }
        guard let start = output.stdout.firstIndex(of: "{"),
              let report = try JSONSerialization.jsonObject(with: Data(output.stdout[start...].utf8)) as? [String: Any],
              let job = (report["jobs"] as? [[String: Any]])?.first, let read = job["read"] as? [String: Any],
              let iops = read["iops"] as? Double, let bandwidth = read["bw_bytes"] as? Double,
              let ios = read["total_ios"] as? Double, let runtime = job["job_runtime"] as? Double,
              let user = job["usr_cpu"] as? Double, let system = job["sys_cpu"] as? Double
        else { throw CompareError("cannot read fio's JSON report") }
        // usr_cpu and sys_cpu are percentages of the job's runtime (ms).
        let cpuMicroseconds = (user + system) / 100 * runtime * 1000
        var values = ["ops_per_s": iops, "mib_per_s": bandwidth / 1_048_576, "cpu_us_per_op": ios > 0 ? cpuMicroseconds / ios : 0,
                      "runtime_ms": runtime]
        if pattern == "random" {
            let requested = Double(requestedMilliseconds)
            values["runtime_shortfall"] = abs(runtime - requested) > 0.1 * requested ? 1 : 0
            if values["runtime_shortfall"] == 1 {
                throw CompareError("fio ran \(Int(runtime)) ms where \(requestedMilliseconds) ms were asked for")
            }
        }
        return values
    }

    /// Runs a command that prints one JSON object of numbers as its last line.
    private func metrics(of command: [String], environment: [String: String]? = nil, timeout: Double) throws -> [String: Double] {
        let output = try execute(command, environment: environment, timeout: timeout)
        if output.timedOut { throw CompareError("timed out after \(Int(timeout)) s") }
        guard output.succeeded else { throw CompareError(output.lastWords) }
        guard let line = output.stdout.split(separator: "\n").last,
              let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
        else { throw CompareError("no JSON result line in: \(output.stdout.suffix(200))") }
        return object.compactMapValues { ($0 as? NSNumber)?.doubleValue }
    }
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// CPU time of a server so far: its cgroup's usage when it has one (every
/// thread, also exited ones), else the sum of its threads' schedstat.
func serverCPUNanoseconds(pid: pid_t, cgroup: String?) -> Double {
    if let cgroup, let stat = try? String(contentsOfFile: "\(cgroup)/cpu.stat", encoding: .utf8),
       let line = stat.split(separator: "\n").first(where: { $0.hasPrefix("usage_usec") }),
       let usec = Double(line.split(separator: " ").last ?? "") {
        return usec * 1_000
    }
    let tasks = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
    return tasks.reduce(0) { total, task in
        let stat = (try? String(contentsOfFile: "/proc/\(pid)/task/\(task)/schedstat", encoding: .utf8)) ?? ""
        return total + (Double(stat.split(separator: " ").first ?? "") ?? 0)
    }
}

/// What `wrk --latency` printed: requests, rate, errors, percentiles.
struct WrkReport {
    var requests = 0.0
    var requestsPerSecond = 0.0
    var errors = 0.0
    var p50Microseconds = 0.0
    var p99Microseconds = 0.0

    init(_ output: String) {
        for raw in output.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            let words = line.split(separator: " ", omittingEmptySubsequences: true)
            if line.hasPrefix("Requests/sec:"), let value = words.last.flatMap({ Double($0) }) { requestsPerSecond = value }
            if line.contains("requests in"), let value = words.first.flatMap({ Double($0) }) { requests = value }
            if line.hasPrefix("Non-2xx"), let value = words.last.flatMap({ Double($0) }) { errors += value }
            if line.hasPrefix("Socket errors:") {
                errors += words.compactMap { Double($0.trimmingCharacters(in: .punctuationCharacters)) }.reduce(0, +)
            }
            if line.hasPrefix("50%"), let value = words.last { p50Microseconds = Self.microseconds(String(value)) }
            if line.hasPrefix("99%"), let value = words.last { p99Microseconds = Self.microseconds(String(value)) }
        }
    }

    /// wrk prints "812.00us", "1.23ms", "2.00s".
    static func microseconds(_ text: String) -> Double {
        for (suffix, scale) in [("us", 1.0), ("ms", 1_000.0), ("s", 1_000_000.0)] where text.hasSuffix(suffix) {
            return (Double(text.dropLast(suffix.count)) ?? 0) * scale
        }
        return Double(text) ?? 0
    }
}
