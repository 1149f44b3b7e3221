import ArgumentParser
import Glibc
import RingLoop

/// One large `SocketStream.writeAll` to a reader on the same loop: how long it
/// takes to arrive, and how much the process's peak RSS grows meanwhile (the
/// payload itself is made before the measurement starts).
struct StreamWriteCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream-write",
        abstract: "Write one large array with writeAll over loopback TCP to a reader on the same loop; print seconds and peak RSS growth.")

    @Option(help: "Payload size in MiB.") var mebibytes = 512
    @Option(help: "uring or epoll.") var contestant: SwiftContestant
    @Flag(help: "Write an IOBuffer instead of an array.") var buffer = false

    func validate() throws {
        if contestant == .nio { throw ValidationError("stream-write runs on RingLoop only (uring or epoll)") }
        if mebibytes < 1 { throw ValidationError("--mebibytes must be at least 1") }
    }

    func run() throws {
        let payload = [UInt8](unsafeUninitializedCapacity: mebibytes << 20) { bytes, count in
            for index in bytes.indices { bytes[index] = UInt8(truncatingIfNeeded: index &* 31 &+ index >> 13) }
            count = bytes.count
        }
        let ioBuffer = buffer ? IOBuffer(payload) : nil
        let rssBefore = peakResidentBytes()
        let started = monotonicNanoseconds()
        let received = try EventLoop.run(backend: contestant == .uring ? .uring : .epoll) { [payload] in
            let loop = try EventLoop.running()
            let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
            let reader = loop.spawn { () async throws -> Int in
                let stream = try await listener.accept()
                let chunk = try IOBuffer(capacity: 1 << 20)
                var total = 0
                while case let n = try await stream.read(into: chunk), n > 0 { total += n }
                try await stream.close()
                return total
            }
            let writer = try await SocketStream.connect(to: listener.localAddress)
            if let ioBuffer { try await writer.writeAll(ioBuffer) } else { try await writer.writeAll(payload) }
            try await writer.close()
            let total = try await reader.value
            try await listener.close()
            return total
        }
        guard received == payload.count else { throw ValidationError("received \(received) of \(payload.count) bytes") }
        printMetrics(["seconds": (monotonicNanoseconds() - started) / 1e9,
                      "peak_rss_growth_mib": Double(peakResidentBytes() - rssBefore) / Double(1 << 20)])
    }

    /// The process's peak resident set so far (`getrusage`), in bytes.
    private func peakResidentBytes() -> Int {
        var usage = rusage()
        getrusage(Int32(RUSAGE_SELF.rawValue), &usage)
        return usage.ru_maxrss * 1024
    }
}
