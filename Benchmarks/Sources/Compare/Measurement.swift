import Foundation

/// Runs one workload on one contestant once and returns its metrics: the
/// JSON line a worker, a Python script, the load client or fio printed.
struct Measurement {
    let tools: Toolbox
    let settings: Settings
    let dataFile: String
    /// Each server gets a fresh port, so no run meets another's TIME_WAIT sockets.
    private var nextPort = 21_000

    init(tools: Toolbox, settings: Settings, dataFile: String) {
        self.tools = tools
        self.settings = settings
        self.dataFile = dataFile
    }

    mutating func run(_ workload: Workload, _ contestant: Contestant) throws -> [String: Double] {
        switch workload.kind {
        case .micro(let name):
            let count = String(settings.microCount)
            return try metrics(of: clientCommand(contestant, worker: ["micro", "--workload", name, "--count", count],
                                                 script: "asyncio_micro.py", [name, count]), timeout: 300)
        case .echo(let connections, let size):
            return try againstServer(contestant, client: ["echo", String(connections), String(size)])
        case .accept(let concurrency):
            return try againstServer(contestant, client: ["accept", String(concurrency)])
        case .file(let pattern, let direct, let depth, let blockSize):
            if contestant == .fio { return try fio(pattern: pattern, direct: direct, depth: depth, blockSize: blockSize) }
            let arguments = [dataFile, "--pattern", pattern, "--depth", String(depth), "--block-size", String(blockSize),
                             "--seconds", String(settings.fileSeconds)] + (direct ? ["--direct"] : [])
            return try metrics(of: clientCommand(contestant, worker: ["file"] + arguments, script: "asyncio_file.py", arguments),
                               timeout: settings.fileSeconds + 120)
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
        case .cLiburing, .cEpoll, .fio: throw CompareError("\(contestant.displayName) does not run this workload")
        }
    }

    private func python(_ script: String, _ arguments: [String], _ contestant: Contestant) throws -> [String] {
        guard let python = tools.python else { throw CompareError("python3 is not installed") }
        return [python, tools.script(script)] + arguments + (contestant == .uvloop ? ["--uvloop"] : [])
    }

    private func serverCommand(_ contestant: Contestant, port: Int) throws -> [String] {
        switch contestant {
        case .ringloopURing: return [tools.echoServer, "--port", String(port), "--backend", "uring"]
        case .ringloopEpoll: return [tools.echoServer, "--port", String(port), "--backend", "epoll"]
        case .nio: return [tools.worker, "nio-echo", "--port", String(port)]
        case .asyncio, .uvloop: return try python("asyncio_echo.py", [String(port)], contestant)
        case .cLiburing: return [tools.c("uring_echo"), String(port)]
        case .cEpoll: return [tools.c("epoll_echo"), String(port)]
        case .fio: throw CompareError("fio is not a server")
        }
    }

    /// Starts the contestant's server on a fresh port, drives it with the C
    /// load client, and stops it.
    private mutating func againstServer(_ contestant: Contestant, client: [String]) throws -> [String: Double] {
        nextPort = nextPort >= 29_000 ? 21_000 : nextPort + 1
        let port = nextPort
        let server = try start(serverCommand(contestant, port: port), captureOutput: false)
        defer { stop(server) }
        try waitUntilListening(port: port, server: server)
        let timing = [String(settings.socketSeconds), String(settings.socketWarmup), String(server.processIdentifier)]
        let command = [tools.c("load_client"), client[0], "127.0.0.1", String(port)] + client.dropFirst() + timing
        return try metrics(of: command, timeout: settings.socketSeconds + settings.socketWarmup + 60)
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

    private func fio(pattern: String, direct: Bool, depth: Int, blockSize: Int) throws -> [String: Double] {
        guard let fio = tools.fio else { throw CompareError("fio is not installed") }
        // --mem=mmap: page-aligned buffers, as the other contestants use. With fio's
        // default malloc'd buffers its buffered 1 MiB reads ran at a quarter of
        // dd's speed here (1.5 against 6.5 GiB/s, even with psync).
        var command = [fio, "--name=ringloop-compare", "--filename=\(dataFile)", "--ioengine=io_uring", "--mem=mmap",
                       "--rw=\(pattern == "random" ? "randread" : "read")", "--bs=\(blockSize)", "--iodepth=\(depth)",
                       "--direct=\(direct ? 1 : 0)", "--invalidate=0", "--output-format=json"]
        // Pure random offsets, as the other contestants draw them (fio's default
        // random map would avoid re-reading a block within a pass).
        command += pattern == "random"
            ? ["--norandommap", "--randrepeat=0", "--time_based", "--runtime=\(settings.fileSeconds)"]
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
        return ["ops_per_s": iops, "mib_per_s": bandwidth / 1_048_576, "cpu_us_per_op": ios > 0 ? cpuMicroseconds / ios : 0]
    }

    /// Runs a command that prints one JSON object of numbers as its last line.
    private func metrics(of command: [String], timeout: Double) throws -> [String: Double] {
        let output = try execute(command, timeout: timeout)
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
