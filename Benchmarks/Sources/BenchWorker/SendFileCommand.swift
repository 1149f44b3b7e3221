import ArgumentParser
import Glibc
import RingLoop

/// `SocketStream.sendFile` on one RingLoop backend: a file sent over
/// loopback TCP to a reader thread outside the loop, warm or cold. Reports
/// the time, the CPU the sending side spent (the process less the reader
/// thread: the loop thread plus the kernel workers a splice runs on), and the
/// longest the loop went without running a 1 ms ticker (a loop stalled by a
/// blocking read of a cold page shows here).
struct SendFileCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sendfile", abstract: "Send a file over loopback with SocketStream.sendFile; print time, CPU and the loop's longest stall.")

    @Argument(help: "The file to send.") var path: String
    @Option(help: "uring or epoll.") var contestant: SwiftContestant
    @Flag(help: "Drop the file's pages from the page cache before sending.") var cold = false

    func validate() throws {
        if contestant == .nio { throw ValidationError("sendfile runs on RingLoop only (uring or epoll)") }
    }

    func run() throws {
        let metrics = try EventLoop.run(backend: contestant == .uring ? .uring : .epoll) { [path, cold] () async throws -> (Double, Double, Double) in
            let loop = try EventLoop.running()
            let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
            let reader = ReaderThread(port: UInt16(listener.localAddress.port!))
            let server = try await listener.accept()
            try await listener.close()
            let file = try await File.open(path)
            let size = Int(try await file.stat().size)
            if cold {
                _ = fsync(file.fileDescriptor)
                _ = posix_fadvise(file.fileDescriptor, 0, 0, POSIX_FADV_DONTNEED)
            }
            let ticker = loop.spawn { () -> Double in
                var last = monotonicNanoseconds(), longest = 0.0
                while !Task.isCancelled {
                    try? await loop.sleep(for: .milliseconds(1))
                    let now = monotonicNanoseconds()
                    longest = Swift.max(longest, now - last)
                    last = now
                }
                return longest
            }
            let cpuBefore = processCPUNanoseconds(), started = monotonicNanoseconds()
            let sent = try await server.sendFile(file, count: size)
            try await server.close()
            let received = reader.join()
            let seconds = (monotonicNanoseconds() - started) / 1e9
            let senderCPU = processCPUNanoseconds() - cpuBefore - reader.cpuNanoseconds
            ticker.cancel()
            let stall = try await ticker.value
            try await file.close()
            guard sent == size, received == size else {
                throw ValidationError("sent \(sent) and received \(received) of \(size) bytes")
            }
            return (seconds, senderCPU / Double(size) * Double(1 << 20), stall / 1e6)
        }
        printMetrics(["seconds": metrics.0, "cpuNanosecondsPerMiB": metrics.1, "longestStallMilliseconds": metrics.2])
    }
}

/// A blocking reader on its own thread: connects, reads to the end, counts.
private final class ReaderThread: @unchecked Sendable {
    private var thread = pthread_t()
    private(set) var received = 0
    private(set) var cpuNanoseconds = 0.0
    private let port: UInt16

    init(port: UInt16) {
        self.port = port
        let box = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let reader = Unmanaged<ReaderThread>.fromOpaque(raw!).takeRetainedValue()
            reader.read()
            return nil
        }, box)
    }

    private func read() {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        if connected == 0 {
            let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
            while true {
                let n = recv(fd, buffer, 1 << 20, 0)
                if n <= 0 { break }
                received += n
            }
            buffer.deallocate()
        }
        close(fd)
        var cpu = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu)
        cpuNanoseconds = Double(cpu.tv_sec) * 1e9 + Double(cpu.tv_nsec)
    }

    /// Waits for the reader to finish; the bytes it read.
    func join() -> Int {
        pthread_join(thread, nil)
        return received
    }
}
