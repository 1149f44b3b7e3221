import Foundation

/// What a finished command left behind.
struct CommandOutput {
    var status: Int32
    var stdout: String
    var stderr: String
    var timedOut: Bool

    var succeeded: Bool { status == 0 && !timedOut }

    /// The last line of stderr (or stdout), for a one-line failure note.
    var lastWords: String {
        let text = stderr.isEmpty ? stdout : stderr
        return text.split(separator: "\n").last.map(String.init) ?? "exit status \(status)"
    }
}

/// A failure of the runner itself, with what it was doing.
struct CompareError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Children the runner has started and not yet reaped, killed if the runner
/// is interrupted, so no echo server outlives a ^C.
enum Children {
    nonisolated(unsafe) static var pids = Set<pid_t>()
    static let lock = NSLock()

    static func add(_ pid: pid_t) { lock.withLock { _ = pids.insert(pid) } }
    static func remove(_ pid: pid_t) { lock.withLock { _ = pids.remove(pid) } }

    static func killAllOnInterrupt() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig) { signo in
                // Not async-signal-safe in general, but the set is only read here
                // and the process exits right after.
                for pid in Children.pids { kill(pid, SIGKILL) }
                _exit(128 + signo)
            }
        }
    }
}

/// Runs `arguments` to completion, capturing its output; kills it after
/// `timeout` seconds.
func execute(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
             timeout: Double = 600) throws -> CommandOutput {
    let process = try start(arguments, in: directory, environment: environment, captureOutput: true)
    return wait(for: process, timeout: timeout)
}

/// Starts `arguments` with captured (or discarded) output.
func start(_ arguments: [String], in directory: String? = nil, environment: [String: String]? = nil,
           captureOutput: Bool) throws -> Process {
    let process = Process()
    if let environment { process.environment = environment }
    process.executableURL = URL(fileURLWithPath: try resolve(arguments[0]))
    process.arguments = Array(arguments.dropFirst())
    if let directory { process.currentDirectoryURL = URL(fileURLWithPath: directory) }
    if captureOutput {
        process.standardOutput = Pipe()
        process.standardError = Pipe()
    } else {
        process.standardOutput = FileHandle.nullDevice
        process.standardError = Pipe()
    }
    do {
        try process.run()
    } catch {
        throw CompareError("cannot start \(arguments[0]): \(error.localizedDescription)")
    }
    Children.add(process.processIdentifier)
    return process
}

/// Waits for `process` for at most `timeout` seconds, then kills it.
func wait(for process: Process, timeout: Double) -> CommandOutput {
    // Drain both pipes on their own threads so a chatty child never blocks on a full pipe.
    func drain(_ pipe: Any?) -> () -> String {
        guard let pipe = pipe as? Pipe else { return { "" } }
        let box = TextBox()
        let thread = Thread { box.text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self) }
        thread.start()
        return { box.done.wait(); return box.text }
    }
    let out = drain(process.standardOutput), err = drain(process.standardError)
    let deadline = Date().addingTimeInterval(timeout)
    var timedOut = false
    while process.isRunning {
        if Date() > deadline {
            timedOut = true
            kill(process.processIdentifier, SIGKILL)
            break
        }
        usleep(2_000)
    }
    process.waitUntilExit()
    Children.remove(process.processIdentifier)
    return CommandOutput(status: process.terminationStatus, stdout: out(), stderr: err(), timedOut: timedOut)
}

/// Kills a server started with `start` and reaps it; returns its stderr.
@discardableResult
func stop(_ process: Process) -> String {
    if process.isRunning { kill(process.processIdentifier, SIGKILL) }
    return wait(for: process, timeout: 10).stderr
}

/// Finds a command on PATH, or checks a path.
func resolve(_ command: String) throws -> String {
    if command.contains("/") {
        guard FileManager.default.isExecutableFile(atPath: command) else { throw CompareError("\(command) is missing; build it first") }
        return command
    }
    if let path = which(command) { return path }
    throw CompareError("\(command) is not on PATH")
}

func which(_ command: String) -> String? {
    let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
    return path.split(separator: ":").map { "\($0)/\(command)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
}

private final class TextBox: @unchecked Sendable {
    var text = "" { didSet { done.signal() } }
    let done = DispatchSemaphore(value: 0)
}
