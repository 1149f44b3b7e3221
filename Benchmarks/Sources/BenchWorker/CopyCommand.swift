import ArgumentParser
import Glibc
import RingLoop

/// `copyFile` on one RingLoop backend: the time to copy a file, for the
/// comparison against `cp`.
struct CopyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "copy", abstract: "Copy a file with RingLoop's copyFile and print the seconds it took.")

    @Argument(help: "The file to copy.") var source: String
    @Argument(help: "Where to copy it (replaced).") var destination: String
    @Option(help: "uring or epoll.") var contestant: SwiftContestant

    func validate() throws {
        if contestant == .nio { throw ValidationError("copy runs on RingLoop only (uring or epoll)") }
    }

    func run() throws {
        let seconds = try EventLoop.run(backend: contestant == .uring ? .uring : .epoll) { [source, destination] in
            let started = monotonicNanoseconds()
            try await copyFile(from: source, to: destination)
            return (monotonicNanoseconds() - started) / 1e9
        }
        printMetrics(["seconds": seconds])
    }
}
