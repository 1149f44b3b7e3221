import ArgumentParser

/// The Swift half of the comparison. `Compare` starts one `BenchWorker`
/// process per measurement, so no contestant shares a heap, a thread pool or a
/// warm cache with another, and each prints one JSON line of metrics.
///
///     BenchWorker micro --contestant uring --workload callSoon --count 1000000
///     BenchWorker file /var/tmp/data --contestant nio --pattern random --depth 32 --seconds 3
///     BenchWorker copy /var/tmp/data /var/tmp/copy --contestant uring
///     BenchWorker nio-echo --port 7000 [--async]
///     BenchWorker uring-info
@main
struct BenchWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "One measurement of one contestant, printed as a JSON line (driven by Compare).",
        subcommands: [MicroCommand.self, FileCommand.self, CopyCommand.self, WholeFileCommand.self, StreamWriteCommand.self, SendFileCommand.self, NIOEchoCommand.self, NIOHTTPCommand.self, URingInfoCommand.self]
    )
}

/// The Swift contestants a worker can run.
enum SwiftContestant: String, ExpressibleByArgument, CaseIterable {
    case uring, epoll, nio
}
