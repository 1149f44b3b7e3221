import ArgumentParser
import Glibc
import RingLoop

/// `readFile` and `writeFile` of one whole file on one RingLoop backend: the
/// helpers a script reaches for first, timed against Python's
/// `Path.read_bytes` / `write_bytes` on the same file.
struct WholeFileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "whole-file",
        abstract: "Read a file whole with readFile, then write the bytes to another with writeFile; print the seconds each took.")

    @Argument(help: "The file to read (read once before, so it is in the page cache).") var source: String
    @Argument(help: "Where to write its bytes (replaced).") var destination: String
    @Option(help: "uring or epoll.") var contestant: SwiftContestant

    func validate() throws {
        if contestant == .nio { throw ValidationError("whole-file runs on RingLoop only (uring or epoll)") }
    }

    func run() throws {
        let (read, write) = try EventLoop.run(backend: contestant == .uring ? .uring : .epoll) { [source, destination] in
            var started = monotonicNanoseconds()
            let bytes = try await readFile(source)
            let read = (monotonicNanoseconds() - started) / 1e9
            sync()   // the write's time is its own, not the last round's writeback
            started = monotonicNanoseconds()
            try await writeFile(destination, bytes)
            return (read, (monotonicNanoseconds() - started) / 1e9)
        }
        printMetrics(["read_seconds": read, "write_seconds": write])
    }
}
