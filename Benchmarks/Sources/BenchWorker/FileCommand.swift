import ArgumentParser
import Glibc

/// File reads with a fixed number in flight, on one contestant: random
/// blocks for a fixed time, or the whole file once in order. Reports reads
/// per second, MiB per second, and this process's CPU time per read. The
/// clocks start once the loop, its pool and the open file are set up.
struct FileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "file", abstract: "Read a file with N reads in flight and print reads/s, MiB/s and CPU per read.")

    @Argument(help: "The file to read (at least one block long).") var path: String
    @Option(help: "uring, epoll or nio.") var contestant: SwiftContestant
    @Option(help: "random or sequential.") var pattern: ReadPlan.Pattern = .random
    @Flag(help: "Open with O_DIRECT, bypassing the page cache.") var direct = false
    @Option(help: "Reads in flight.") var depth: Int = 32
    @Option(help: "Bytes per read.") var blockSize: Int = 4096
    @Option(help: "Seconds to run (random pattern).") var seconds: Double = 3
    @Flag(help: "Read into RegisteredBuffers (READ_FIXED on io_uring).") var registered = false

    func validate() throws {
        guard depth > 0 else { throw ValidationError("--depth must be positive (got \(depth))") }
        guard blockSize > 0, blockSize % 4096 == 0 else {
            throw ValidationError("--block-size must be a positive multiple of 4096 (got \(blockSize))")
        }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive (got \(seconds))") }
        if registered && contestant == .nio {
            throw ValidationError("--registered is RingLoop's RegisteredBuffers (uring or epoll)")
        }
        if direct && contestant == .nio {
            throw ValidationError("NIOFileSystem has no O_DIRECT option, and its reads allocate unaligned buffers")
        }
    }

    func run() throws {
        var status = stat()
        guard stat(path, &status) == 0 else {
            throw ValidationError("cannot stat \(path): \(String(cString: strerror(errno)))")
        }
        guard Int64(status.st_size) >= Int64(blockSize) else {
            throw ValidationError("\(path) is \(status.st_size) bytes, smaller than one \(blockSize)-byte block")
        }
        let plan = ReadPlan(pattern: pattern, blockSize: blockSize, fileSize: Int64(status.st_size), seconds: seconds)
        let tally: ReadTally
        switch contestant {
        case .uring, .epoll:
            tally = try ringLoopReads(path: path, backend: contestant == .uring ? .uring : .epoll, direct: direct, plan: plan, depth: depth,
                                 registered: registered)
        case .nio:
            tally = try nioReads(path: path, plan: plan, depth: depth)
        }
        let (cpu, wall) = plan.startTimes
        let elapsed = (monotonicNanoseconds() - wall) / 1e9
        printMetrics([
            "ops_per_s": Double(tally.reads) / elapsed,
            "mib_per_s": Double(tally.bytes) / elapsed / 1_048_576,
            "cpu_us_per_op": (processCPUNanoseconds() - cpu) / 1e3 / Double(max(tally.reads, 1)),
        ])
    }
}
