import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// Where io_uring is forbidden (a container's seccomp profile, the
    /// `kernel.io_uring_disabled` sysctl), `.auto` runs on epoll and says why,
    /// `.uring` fails with a clear error, and servers still serve. Real processes:
    /// the examples run under `no-uring`, a seccomp helper built with the tests.
    @Suite("io_uring denied", .serialized, .checksResources, .timeLimit(.minutes(2)),
           .enabled(if: Child.productExists("no-uring") && Child.productExists("Hello") && Child.productExists("EchoServer"),
                    "needs the no-uring, Hello and EchoServer products next to the test bundle (swift build --build-tests)"))
    struct URingDeniedTests {
        @Test("seccomp denies io_uring_setup: .auto falls back and logs why; .uring is a clear error")
        func seccompDenied() throws {
            let auto = try Child.run(["no-uring", "Hello"], environment: ["RINGLOOP_BACKEND": "auto"])
            #expect(auto.status == 0, "\(auto.output)")
            #expect(auto.output.contains("Hello from RingLoop on epoll"), "\(auto.output)")
            #expect(auto.output.contains("io_uring unavailable, using epoll"), "\(auto.output)")
            #expect(auto.output.contains("EPERM"), "the log names the errno: \(auto.output)")

            let forced = try Child.run(["no-uring", "Hello"], environment: ["RINGLOOP_BACKEND": "uring"])
            #expect(forced.status != 0)
            #expect(forced.output.contains("io_uring_setup failed: EPERM"), "\(forced.output)")
        }

        @Test("an echo server under seccomp serves on epoll")
        func echoUnderSeccomp() throws {
            let server = try Child(["no-uring", "EchoServer", "--port", "0", "--backend", "auto"])
            defer { server.stop() }
            let line = try server.waitForOutput(containing: "listening")
            #expect(line.contains("with the epoll backend"), "\(line)")
            let port = try #require(line.split(separator: " ").lazy.compactMap { word -> Int? in
                guard word.hasPrefix("127.0.0.1:") || word.hasPrefix("0.0.0.0:") else { return nil }
                return Int(word.split(separator: ":").last ?? "")
            }.first, "no port in \(line)")
            #expect(try echoOnce(port: port, message: "under seccomp") == "under seccomp")
        }

        @Test("kernel.io_uring_disabled=2: .auto falls back, where the test may set the sysctl")
        func sysctlDisabled() throws {
            let path = "/proc/sys/kernel/io_uring_disabled"
            guard let original = try? String(contentsOfProcFile: path), access(path, W_OK) == 0 else {
                print("note: \(path) is missing or not writable here; the sysctl case is skipped (the seccomp cases cover the fallback)")
                return
            }
            try writeProcFile(path, "2")
            defer { try? writeProcFile(path, original) }
            let auto = try Child.run(["Hello"], environment: ["RINGLOOP_BACKEND": "auto"])
            #expect(auto.output.contains("Hello from RingLoop on epoll"), "\(auto.output)")
            #expect(auto.output.contains("io_uring unavailable, using epoll"), "\(auto.output)")
        }
    }
}

/// One connect-send-receive round trip with blocking sockets and a timeout.
func echoOnce(port: Int, message: String) throws -> String {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var timeout = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    guard try SocketAddress(ip: "127.0.0.1", port: port).withSockAddr({ connect(fd, $0, $1) }) == 0 else { throw Errno(errno) }
    _ = message.withCString { send(fd, $0, message.utf8.count, 0) }
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 256)
    while reply.count < message.utf8.count {
        let n = recv(fd, &buffer, buffer.count, 0)
        guard n > 0 else { break }
        reply += buffer.prefix(n)
    }
    return String(decoding: reply, as: UTF8.self)
}

extension String {
    init(contentsOfProcFile path: String) throws {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw Errno(errno) }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        guard n >= 0 else { throw Errno(errno) }
        self = String(String(decoding: buffer.prefix(n), as: UTF8.self).filter { !$0.isWhitespace })
    }
}

func writeProcFile(_ path: String, _ value: String) throws {
    let fd = open(path, O_WRONLY)
    guard fd >= 0 else { throw Errno(errno) }
    defer { close(fd) }
    guard value.withCString({ write(fd, $0, strlen($0)) }) >= 0 else { throw Errno(errno) }
}

/// A child process running one of the package's products, its stdout and
/// stderr captured through a pipe.
final class Child {
    let pid: pid_t
    private let output: Int32
    private var captured: [UInt8] = []
    private var exited = false

    /// The directory the package's products are built into: the test bundle's.
    static let productsDirectory: String = {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let exe = String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(exe[..<(exe.lastIndex(of: "/") ?? exe.endIndex)])
    }()

    static func productExists(_ name: String) -> Bool { access("\(productsDirectory)/\(name)", X_OK) == 0 }

    /// Starts `arguments` (the first names a product) with `environment` added.
    init(_ arguments: [String], environment: [String: String] = [:]) throws {
        var pipeFDs: [Int32] = [0, 0]
        guard pipe(&pipeFDs) == 0 else { throw Errno(errno) }
        // Not inherited as such: the child gets the write end as 1 and 2 only.
        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 1)
        posix_spawn_file_actions_adddup2(&actions, pipeFDs[1], 2)
        var path = "\(Self.productsDirectory):" + (getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin")
        var env = environment
        env["PATH"] = path
        var inherited: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let pair = String(cString: pointer)
            let key = String(pair.prefix(while: { $0 != "=" }))
            if env[key] == nil { inherited.append(pair) }
            entry += 1
        }
        let envStrings = inherited + env.map { "\($0.key)=\($0.value)" }
        path = "\(Self.productsDirectory)/\(arguments[0])"
        let argv = arguments.map { strdup($0) } + [nil]
        let envp = envStrings.map { strdup($0) } + [nil]
        defer { (argv + envp).forEach { free($0) } }
        // A clean signal mask and default SIGINT/SIGTERM: the test runner's
        // threads block most signals, and a child would inherit that.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, argv, envp)
        close(pipeFDs[1])
        guard rc == 0 else {
            close(pipeFDs[0])
            throw IOError(operation: "posix_spawn", errno: Errno(rc), path: path)
        }
        self.pid = pid
        output = pipeFDs[0]
    }

    deinit { stop() }

    /// Reads output until a line contains `text`; returns that line.
    func waitForOutput(containing text: String, limit: Duration = .seconds(20)) throws -> String {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let lines = String(decoding: captured, as: UTF8.self).split(separator: "\n")
            if let line = lines.first(where: { $0.contains(text) }) { return String(line) }
            guard readSome(timeoutMilliseconds: 100) else { break }
        }
        throw IOError(operation: "waitForOutput", errno: Errno(ETIMEDOUT), detail: "no line with '\(text)' in: \(String(decoding: captured, as: UTF8.self))")
    }

    /// Reads what is available within the timeout; false at EOF.
    private func readSome(timeoutMilliseconds: Int32) -> Bool {
        var descriptor = pollfd(fd: output, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, timeoutMilliseconds) > 0 else { return true }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = read(output, &buffer, buffer.count)
        if n <= 0 { return false }
        captured += buffer.prefix(n)
        return true
    }

    /// Waits for the child to exit (killing it after `limit`); returns its
    /// status and everything it printed.
    func finish(limit: Duration = .seconds(30)) throws -> (status: Int32, output: String) {
        let deadline = ContinuousClock.now + limit
        while readSome(timeoutMilliseconds: 100), ContinuousClock.now < deadline {}
        let status = try waitForChild(pid, limit: max(.milliseconds(100), deadline - ContinuousClock.now))
        exited = true
        close(output)
        return (status, String(decoding: captured, as: UTF8.self))
    }

    /// Kills the child if it still runs and reaps it.
    func stop() {
        guard !exited else { return }
        exited = true
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(output)
    }

    /// Runs `arguments` to the end.
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> (status: Int32, output: String) {
        try Child(arguments, environment: environment).finish()
    }
}
