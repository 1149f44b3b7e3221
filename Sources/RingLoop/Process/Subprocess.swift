import CUring
import Glibc

/// A child process started on the loop: asyncio's `create_subprocess_exec`.
///
/// ```swift
/// let child = try await Subprocess.spawn("sort", arguments: ["-r"], stdin: .pipe, stdout: .pipe)
/// let (output, _, status) = try await child.communicate(input: Array("a\nb\n".utf8))
/// // output == "b\na\n", status == .exited(0)
/// ```
///
/// The child starts with `posix_spawn`: no `fork` of a multi-threaded Swift
/// process, every descriptor of the parent close-on-exec except the three it
/// is given, a clean signal mask and default dispositions. Piped stdio are
/// Unix-domain socket pairs (as libuv makes them), so the parent's ends are
/// ordinary ``SocketStream``s with every stream helper.
///
/// Its exit is awaited through a pidfd: one `IORING_OP_WAITID` SQE that
/// reaps it on kernels that have the opcode (6.7+, probed at set-up), a poll
/// SQE on older ones, readiness on epoll. A `Subprocess` dropped before
/// ``wait()`` still has its child reaped when it exits, so no zombie is left
/// behind while the loop runs.
public final class Subprocess: @unchecked Sendable {
    /// Where a standard stream of the child goes.
    public enum Stdio: Sendable, Equatable {
        /// A new pipe; the parent's end is a ``SocketStream``.
        case pipe
        /// The parent's own descriptor.
        case inherit
        /// `/dev/null`.
        case null
        /// An open descriptor of the parent (it stays open in the parent).
        case fileDescriptor(Int32)
    }

    /// How the child ended.
    public enum Termination: Sendable, Equatable, CustomStringConvertible {
        /// It exited with this status code.
        case exited(Int32)
        /// A signal ended it.
        case signaled(Int32)

        public var description: String {
            switch self {
            case .exited(let code): "exited with status \(code)"
            case .signaled(let signal): "killed by signal \(signal) (\(String(cString: strsignal(signal))))"
            }
        }
    }

    /// The child's process id.
    public let pid: pid_t
    /// The parent's end of the child's stdin, when it is `.pipe`.
    public let stdin: SocketStream?
    /// The parent's end of the child's stdout, when it is `.pipe`.
    public let stdout: SocketStream?
    /// The parent's end of the child's stderr, when it is `.pipe`.
    public let stderr: SocketStream?
    /// The executable as it was asked for.
    public let executable: String
    private let reaper: Reaper

    private init(pid: pid_t, reaper: Reaper, executable: String, stdin: SocketStream?, stdout: SocketStream?, stderr: SocketStream?) {
        self.pid = pid
        self.reaper = reaper
        self.executable = executable
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
    }

    deinit { reaper.reapWhenDone() }

    /// Starts `executable` (looked up in `PATH` when it has no `/`) with
    /// `arguments` on the running loop.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; nil inherits the parent's.
    ///   - workingDirectory: where the child starts; nil for the parent's.
    /// - Throws: ``IOError`` naming the executable (`.noSuchFile` when it
    ///   does not exist, `.permissionDenied` when it may not run),
    ///   ``EventLoopError`` off the loop thread.
    public static nonisolated(nonsending) func spawn(
        _ executable: String, arguments: [String] = [], environment: [String: String]? = nil,
        workingDirectory: String? = nil,
        stdin: Stdio = .inherit, stdout: Stdio = .inherit, stderr: Stdio = .inherit
    ) async throws -> Subprocess {
        let loop = try EventLoop.running()
        try loop.requireLoopThread("spawn")
        let texts: [(String, [String])] = [
            ("the executable's path", [executable]), ("an argument", arguments),
            ("an environment variable", environment.map { Array($0.keys) + Array($0.values) } ?? []),
            ("the working directory", [workingDirectory ?? ""]),
        ]
        for (what, strings) in texts where strings.contains(where: { $0.utf8.contains(0) }) {
            throw IOError(operation: "posix_spawn", errno: Errno(EINVAL), path: executable, detail: "\(what) contains a NUL byte")
        }
        // "A=B" → "c" would reach the child as A="B=c": refuse it, as
        // CPython's os.posix_spawn does.
        if let name = environment?.keys.first(where: { $0.isEmpty || $0.contains("=") }) {
            throw IOError(operation: "posix_spawn", errno: Errno(EINVAL), path: executable,
                          detail: "the environment variable name \"\(name)\" is empty or contains \"=\"")
        }
        var launch = try Launch()
        defer { launch.closeChildEnds() }
        let streams: [Int32?]
        let pid: pid_t
        do {
            streams = try [stdin, stdout, stderr].enumerated().map { index, stdio in
                try launch.attach(stdio, to: Int32(index), path: executable)
            }
            pid = try launch.spawn(executable, arguments: arguments, environment: environment, workingDirectory: workingDirectory)
        } catch {
            launch.closeParentEnds()
            throw error
        }
        let pidfd = cu_pidfd_open(pid)
        guard pidfd >= 0 else {
            // Without a pidfd the child cannot be awaited safely: end it now,
            // and close the parent's ends of its pipes.
            launch.closeParentEnds()
            Glibc.kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            throw IOError(operation: "pidfd_open", errno: Errno(pidfd), path: executable)
        }
        let reaper = Reaper(pidfd: File(wrapping: pidfd, path: "pidfd of \(executable)", loop: loop), loop: loop)
        func stream(_ fd: Int32?) -> SocketStream? { fd.map { SocketStream(fd: $0, loop: loop) } }
        return Subprocess(pid: pid, reaper: reaper, executable: executable,
                          stdin: stream(streams[0]), stdout: stream(streams[1]), stderr: stream(streams[2]))
    }

    /// Waits for the child to exit and reaps it; later calls return the same
    /// outcome at once. Cancelling the wait leaves the child running.
    public nonisolated(nonsending) func wait() async throws -> Termination {
        try await reaper.wait()
    }

    /// The outcome if the child has exited and been awaited; nil otherwise.
    public var termination: Termination? { reaper.outcome }

    /// Sends SIGTERM.
    public func terminate() throws { try sendSignal(SIGTERM) }

    /// Sends SIGKILL.
    public func kill() throws { try sendSignal(SIGKILL) }

    /// Sends `signal` to exactly this child (through its pidfd, so never to a
    /// process that reused the pid). A child already reaped is not an error.
    public func sendSignal(_ signal: Int32) throws {
        try reaper.sendSignal(signal, executable: executable)
    }

    /// Writes `input` to stdin and closes it, while reading stdout and stderr
    /// to their ends, then waits for the exit: asyncio's `communicate`. The
    /// three run at once, so a child that fills one pipe while the parent
    /// writes the other never deadlocks. Streams that are not `.pipe` give `[]`.
    ///
    /// Streams already closed (by an earlier `communicate`, or by the caller)
    /// are left out, as asyncio does: a second call returns empty output and
    /// the same termination, and `input` for a closed stdin is dropped, as it
    /// is when the child stops reading.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for `input` when stdin was
    ///   not spawned as `.pipe`: there is no way to give it to the child
    ///   (asyncio drops it without a word).
    public nonisolated(nonsending) func communicate(input: [UInt8]? = nil) async throws -> (stdout: [UInt8], stderr: [UInt8], termination: Termination) {
        if let input, !input.isEmpty, self.stdin == nil {
            throw IOError(operation: "communicate", errno: Errno(EINVAL), path: executable,
                          detail: "\(input.count) bytes of input, but stdin is not a pipe (spawn with stdin: .pipe)")
        }
        func unclosed(_ stream: SocketStream?) -> SocketStream? { stream.flatMap { $0.fileDescriptor >= 0 ? $0 : nil } }
        let stdin = unclosed(self.stdin), stdout = unclosed(self.stdout), stderr = unclosed(self.stderr)
        async let output = stdout?.readToEnd() ?? []
        async let errors = stderr?.readToEnd() ?? []
        if let stdin {
            if let input, !input.isEmpty {
                do { try await stdin.writeAll(input) } catch let error as IOError where error.code == .brokenPipe || error.code == .connectionReset {
                    // The child stopped reading: what it read is what it gets.
                }
            }
            try? await stdin.close()
        }
        let collected = (try await output, try await errors)
        try? await stdout?.close()
        try? await stderr?.close()
        return (collected.0, collected.1, try await wait())
    }
}

/// The parent's side of a child's exit: its pidfd, the one wait, the outcome.
final class Reaper: @unchecked Sendable {
    let pidfd: File
    /// Strong: a child dropped after its loop's last other reference must
    /// still be reaped there.
    let loop: EventLoop
    var outcome: Subprocess.Termination?
    /// A loop task is reaping the child (one at a time, for every waiter).
    private var reaping = false
    /// Callers of ``wait()`` until the reap ends; each leaves on its own
    /// cancellation without stopping the reap for the others.
    private let waiters: Waiters<Result<Subprocess.Termination, any Error>>

    init(pidfd: File, loop: EventLoop) {
        self.pidfd = pidfd
        self.loop = loop
        waiters = Waiters(loop: loop)
    }

    /// The outcome, once the child has exited. Cancelling a wait (a
    /// `withTimeout`, a cancelled task) ends that wait with
    /// `CancellationError`; the child runs on and a later wait still gets its
    /// outcome.
    nonisolated(nonsending) func wait() async throws -> Subprocess.Termination {
        try loop.requireLoopThread("Subprocess.wait")
        if let outcome { return outcome }
        try Task.checkCancellation()
        startReaping()
        return try await waiters.wait(cancelled: .failure(CancellationError())).get()
    }

    /// Starts the one reap, unless it runs already; its end resumes every waiter.
    private func startReaping() {
        guard outcome == nil, !reaping else { return }
        reaping = true
        _ = loop.spawn(name: "subprocess reaper") { [self] in
            let result: Result<Subprocess.Termination, any Error>
            do { result = .success(try await reap()) } catch { result = .failure(error) }
            reaping = false
            waiters.resumeAll(result)
        }
    }

    /// Waits for the child's exit and reaps it: one IORING_OP_WAITID where
    /// the kernel has it; pidfd readiness then a `WNOHANG` waitid otherwise
    /// (and on epoll, whose wait does that `waitid` itself).
    private nonisolated(nonsending) func reap() async throws -> Subprocess.Termination {
        precondition(MemoryLayout<siginfo_t>.size <= MemoryLayout<sockaddr_storage>.size
                     && MemoryLayout<siginfo_t>.alignment <= MemoryLayout<sockaddr_storage>.alignment)
        let fd = pidfd.fileDescriptor
        var exited: Int32 = 0, status: Int32 = 0
        while true {
            var info = try await pidfd.descriptor.perform("waitid", keepAlive: nil, { fd, scratch in
                .waitid(pidfd: fd, info: scratch.siginfo)
            }, extract: { scratch, result in
                result >= 0 ? UnsafeRawPointer(scratch.address).load(as: siginfo_t.self) : siginfo_t()
            })
            if cu_siginfo_outcome(&info, &exited, &status) == 1 { break }
            // Readiness only (a kernel without the opcode): reap it now.
            let rc = cu_waitid_pidfd(fd, &info)
            if rc < 0 { throw IOError(operation: "waitid", errno: Errno(rc), fd: fd) }
            if cu_siginfo_outcome(&info, &exited, &status) == 1 { break }
        }
        let result: Subprocess.Termination = exited != 0 ? .exited(status) : .signaled(status)
        outcome = result
        try? await pidfd.close()
        return result
    }

    /// The Subprocess was dropped: reap in the background once the child exits.
    func reapWhenDone() {
        guard outcome == nil else { return }
        _ = loop.onLoopThread { [self] in startReaping() }
    }

    func sendSignal(_ signal: Int32, executable: String) throws {
        guard outcome == nil else { return }
        let rc = cu_pidfd_send_signal(pidfd.fileDescriptor, signal)
        if rc < 0, rc != -ESRCH {
            throw IOError(operation: "pidfd_send_signal", errno: Errno(rc), path: executable, detail: "signal \(signal)")
        }
    }
}

/// What `posix_spawn` is given: the child's stdio and the parent's ends.
private struct Launch: ~Copyable {
    var actions = posix_spawn_file_actions_t()
    var attributes = posix_spawnattr_t()
    /// Descriptors only the child needs; closed in the parent after the spawn.
    var childEnds: [Int32] = []
    /// The parent's ends, closed only when the spawn fails.
    var parentEnds: [Int32] = []

    init() throws(IOError) {
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        // The loop thread blocks SIGPIPE; the child starts clean.
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)
        var defaults = sigset_t()
        sigfillset(&defaults)
        sigdelset(&defaults, SIGKILL)
        sigdelset(&defaults, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    }

    deinit {
        // Both hold only pointers to their heap parts, so a copy frees them.
        var actions = self.actions
        var attributes = self.attributes
        posix_spawn_file_actions_destroy(&actions)
        posix_spawnattr_destroy(&attributes)
    }

    /// Arranges `stdio` as the child's descriptor `target`; returns the
    /// parent's end for `.pipe`.
    mutating func attach(_ stdio: Subprocess.Stdio, to target: Int32, path: String) throws(IOError) -> Int32? {
        switch stdio {
        case .inherit:
            return nil
        case .null:
            posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            return nil
        case .fileDescriptor(let fd):
            guard fcntl(fd, F_GETFD) >= 0 else {
                throw IOError(operation: "posix_spawn", errno: Errno(EBADF), fd: fd, path: path, detail: "stdio descriptor \(fd) is not open")
            }
            posix_spawn_file_actions_adddup2(&actions, fd, target)
            return nil
        case .pipe:
            var pair: [Int32] = [-1, -1]
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw IOError(operation: "socketpair", errno: Errno(errno), path: path)
            }
            _ = fcntl(pair[0], F_SETFL, fcntl(pair[0], F_GETFL) | O_NONBLOCK)
            childEnds.append(pair[1])
            parentEnds.append(pair[0])
            posix_spawn_file_actions_adddup2(&actions, pair[1], target)
            return pair[0]
        }
    }

    mutating func spawn(_ executable: String, arguments: [String], environment: [String: String]?,
                        workingDirectory: String?) throws(IOError) -> pid_t {
        if let workingDirectory {
            // posix_spawn_file_actions_addchdir_np: glibc 2.29.
            guard cu_spawn_addchdir(&actions, workingDirectory) == 0 else {
                throw IOError(operation: "posix_spawn", errno: Errno(ENOSYS), path: workingDirectory, detail: "cannot set the working directory")
            }
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let envp: [UnsafeMutablePointer<CChar>?]? = environment.map { $0.map { strdup("\($0.key)=\($0.value)") } + [nil] }
        defer { envp?.forEach { free($0) } }
        var pid: pid_t = 0
        let rc: Int32 = if var envp {
            posix_spawnp(&pid, executable, &actions, &attributes, argv, &envp)
        } else {
            posix_spawnp(&pid, executable, &actions, &attributes, argv, environ)
        }
        guard rc == 0 else {
            // The chdir runs in the child before the exec and fails with the
            // same errnos a missing executable would: say which it was.
            if let workingDirectory, [ENOENT, ENOTDIR, EACCES].contains(rc), let problem = Self.directoryProblem(workingDirectory) {
                throw IOError(operation: "posix_spawn", errno: Errno(problem), path: workingDirectory,
                              detail: "cannot use it as the working directory of \(executable)")
            }
            throw IOError(operation: "posix_spawn", errno: Errno(rc), path: executable)
        }
        return pid
    }

    /// Why `path` cannot be a working directory (an errno), or nil if it can.
    private static func directoryProblem(_ path: String) -> Int32? {
        var info = stat()
        if stat(path, &info) != 0 { return errno }
        if info.st_mode & S_IFMT != S_IFDIR { return ENOTDIR }
        return access(path, X_OK) != 0 ? errno : nil
    }

    mutating func closeParentEnds() {
        for fd in parentEnds { Glibc.close(fd) }
        parentEnds = []
    }

    mutating func closeChildEnds() {
        for fd in childEnds { Glibc.close(fd) }
        childEnds = []
    }
}
