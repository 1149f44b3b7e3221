import Foundation

/// Where everything the runner starts lives, and which optional peers this
/// machine has. Built once, before the first measurement.
struct Toolbox {
    /// The Benchmarks package directory.
    let benchmarks: String
    /// RingLoop's echo server (the root package's EchoServer example).
    let echoServer: String
    /// The Swift contestants' worker (this package's BenchWorker).
    let worker: String
    /// C programs built by the runner: load_client, epoll_echo, uring_echo.
    let cBinaries: String
    let python: String?
    let fio: String?
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
        worker = "\(benchmarks)/.build/release/BenchWorker"
        cBinaries = "\(benchmarks)/.build/reference"
        var needed = [(worker, "swift build -c release --product BenchWorker (in \(benchmarks))")]
        if needsEchoServer { needed.append((echoServer, "swift build -c release --product EchoServer (in \(root))")) }
        for (binary, build) in needed where !FileManager.default.isExecutableFile(atPath: binary) {
            throw CompareError("\(binary) is missing; build it with: \(build)   (./scripts/bench does both)")
        }
        python = which("python3")
        fio = which("fio")
        try buildC(log: log)
        if python == nil {
            unavailable[.asyncio] = "python3 is not installed"
            unavailable[.uvloop] = "python3 is not installed"
        } else if contestants.contains(.uvloop), let reason = ensureUVLoop(log: log) {
            unavailable[.uvloop] = reason
        }
        if fio == nil { unavailable[.fio] = "fio is not installed (apt-get install fio)" }
    }

    /// Builds the C load client and servers with cc when their source is newer.
    private mutating func buildC(log: (String) -> Void) throws {
        try FileManager.default.createDirectory(atPath: cBinaries, withIntermediateDirectories: true)
        guard let cc = which("cc") else {
            throw CompareError("cc is not installed; the load client is C (apt-get install gcc)")
        }
        for (name, libraries) in [("load_client", [String]()), ("epoll_echo", []), ("uring_echo", ["-luring"])] {
            let source = "\(benchmarks)/C/\(name).c", binary = "\(cBinaries)/\(name)"
            if modified(binary) >= modified(source) { continue }
            log("building \(name) with cc")
            let result = try execute([cc, "-O2", "-Wall", "-o", binary, source] + libraries)
            guard result.succeeded else {
                if name == "uring_echo" {
                    unavailable[.cLiburing] = "cc could not build uring_echo.c: \(result.lastWords)"
                    continue
                }
                throw CompareError("cc could not build \(source): \(result.stderr)")
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

    func c(_ name: String) -> String { "\(cBinaries)/\(name)" }
    func script(_ name: String) -> String { "\(benchmarks)/Python/\(name)" }
}
