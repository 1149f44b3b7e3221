import CompareCore
import Foundation

/// Where everything the runner starts lives, and which optional peers this
/// machine has. Built once, before the first measurement.
struct Toolbox {
    /// The Benchmarks package directory.
    let benchmarks: String
    /// RingLoop's echo server (the root package's EchoServer example).
    let echoServer: String
    /// The HTTPHello example, for the http-hello workload.
    let httpHello: String
    /// The Swift contestants' worker (this package's BenchWorker).
    let worker: String
    /// C and Go programs built by the runner.
    let referenceBinaries: String
    let python: String?
    let fio: String?
    let go: String?
    /// Contestants that cannot run here, with the reason.
    var unavailable: [Contestant: String] = [:]

    /// Finds the Benchmarks package from this executable's own path, so the
    /// runner works from any directory.
    static func locateBenchmarks() throws -> String {
        var url = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]).deletingLastPathComponent()
        while url.path != "/" {
            if FileManager.default.fileExists(atPath: url.appendingPathComponent("Sources/Compare").path) { return url.path }
            url.deleteLastPathComponent()
        }
        throw CompareError("cannot find the Benchmarks package above \(CommandLine.arguments[0])")
    }

    /// `needsEchoServer`: a socket workload with a RingLoop contestant is selected.
    init(benchmarks: String, contestants: Set<Contestant>, needsEchoServer: Bool, log: (String) -> Void) throws {
        self.benchmarks = benchmarks
        let root = URL(fileURLWithPath: benchmarks).deletingLastPathComponent().path
        echoServer = "\(root)/.build/release/EchoServer"
        httpHello = "\(root)/.build/release/HTTPHello"
        worker = "\(benchmarks)/.build/release/BenchWorker"
        referenceBinaries = "\(benchmarks)/.build/reference"
        var needed = [(worker, "swift build -c release --product BenchWorker (in \(benchmarks))")]
        if needsEchoServer {
            needed.append((echoServer, "swift build -c release --product EchoServer (in \(root))"))
            needed.append((httpHello, "swift build -c release --product HTTPHello (in \(root))"))
        }
        for (binary, build) in needed where !FileManager.default.isExecutableFile(atPath: binary) {
            throw CompareError("\(binary) is missing; build it with: \(build)   (./scripts/bench does both)")
        }
        python = which("python3")
        fio = which("fio")
        go = which("go")
        try buildReferences(contestants: contestants, log: log)
        if python == nil {
            for contestant in [Contestant.asyncio, .asyncioStreams, .uvloop, .uvloopStreams] {
                unavailable[contestant] = "python3 is not installed"
            }
        } else if contestants.contains(.uvloop) || contestants.contains(.uvloopStreams), let reason = ensureUVLoop(log: log) {
            unavailable[.uvloop] = reason
            unavailable[.uvloopStreams] = reason
        }
        if fio == nil {
            unavailable[.fio] = "fio is not installed (apt-get install fio)"
            unavailable[.fioFixed] = unavailable[.fio]
        }
        if which("cp") == nil { unavailable[.cp] = "cp is not on PATH" }
    }

    /// Builds the C load client and servers with cc, and the Go server with
    /// go, when their source is newer than the binary. A peer that cannot be
    /// built is skipped with the reason; the load client is required.
    private mutating func buildReferences(contestants: Set<Contestant>, log: (String) -> Void) throws {
        try FileManager.default.createDirectory(atPath: referenceBinaries, withIntermediateDirectories: true)
        guard let cc = which("cc") else {
            throw CompareError("cc is not installed; the load client is C (apt-get install gcc)")
        }
        let programs: [(name: String, libraries: [String], contestant: Contestant?)] = [
            ("load_client", [], nil), ("epoll_echo", [], .cEpoll), ("uring_echo", ["-luring"], .cLiburing),
            ("uring_echo_tuned", ["-luring"], .cLiburingTuned), ("libuv_echo", ["-luv"], .libuv),
        ]
        for program in programs {
            if let contestant = program.contestant, !contestants.contains(contestant) { continue }
            let source = "\(benchmarks)/C/\(program.name).c", binary = c(program.name)
            if modified(binary) >= modified(source) { continue }
            log("building \(program.name) with cc")
            let result = try execute([cc, "-O2", "-Wall", "-o", binary, source] + program.libraries)
            guard result.succeeded else {
                guard let contestant = program.contestant else {
                    throw CompareError("cc could not build \(source): \(result.stderr)")
                }
                let hint = contestant == .libuv ? " (apt-get install libuv1-dev)" : ""
                unavailable[contestant] = "cc could not build \(program.name).c\(hint): \(result.lastWords)"
                continue
            }
        }
        if contestants.contains(.go) {
            guard let go else {
                unavailable[.go] = "go is not installed (apt-get install golang-go)"
                return
            }
            let source = "\(benchmarks)/Go/echo.go", binary = c("echo_go")
            if modified(binary) < modified(source) {
                log("building echo.go with go")
                var environment = ProcessInfo.processInfo.environment
                environment["GOCACHE"] = "\(referenceBinaries)/gocache"
                environment["GOFLAGS"] = "-mod=mod"
                let result = try execute([go, "build", "-o", binary, source], environment: environment, timeout: 300)
                if !result.succeeded { unavailable[.go] = "go could not build echo.go: \(result.lastWords)" }
            }
        }
    }

    /// Imports uvloop, installing it with pip when missing; the reason when neither works.
    private func ensureUVLoop(log: (String) -> Void) -> String? {
        guard let python else { return "python3 is not installed" }
        if (try? execute([python, "-c", "import uvloop"]))?.succeeded == true { return nil }
        log("installing uvloop with pip")
        let install = try? execute([python, "-m", "pip", "install", "--quiet", "uvloop"], timeout: 300)
        if install?.succeeded == true, (try? execute([python, "-c", "import uvloop"]))?.succeeded == true { return nil }
        return "uvloop is not installed and pip could not install it: \(install?.lastWords ?? "pip did not start")"
    }

    private func modified(_ path: String) -> Date {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date) ?? .distantPast
    }

    func c(_ name: String) -> String { "\(referenceBinaries)/\(name)" }
    func script(_ name: String) -> String { "\(benchmarks)/Python/\(name)" }
}
