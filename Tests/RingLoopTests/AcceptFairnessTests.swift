import Glibc
@testable import RingLoop
import Synchronization
import Testing

extension AllSuites {
    @Suite("Accepting under load", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct AcceptFairnessTests {
        /// A backend, and for io_uring the options a kernel without multishot
        /// accept (before 5.19) would give.
        struct Setup: Sendable, CustomTestStringConvertible {
            let backend: Backend
            let options: URingOptions
            let testDescription: String
        }
        static let setups = [
            Setup(backend: .uring, options: URingOptions(), testDescription: "uring"),
            Setup(backend: .epoll, options: URingOptions(), testDescription: "epoll"),
            Setup(backend: .uring, options: URingOptions(multishot: false), testDescription: "uring with single-shot accepts"),
        ]

        @Test("500 connections opened at once while 200 others echo: each accepted within a bounded number of iterations",
              arguments: setups)
        func acceptBurst(setup: Setup) async throws {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            if limit.rlim_cur < 4096 { limit.rlim_cur = min(limit.rlim_max, 4096); setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
            let (accepted, iterations) = try await onLoop(setup.backend, uring: setup.options) { loop -> (Int, Int) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0, backlog: 1024)
                let port = listener.localAddress.port!
                let acceptedCount = Box(0)
                let serverTask = loop.spawn {
                    for try await connection in listener.connections {
                        acceptedCount.value += 1
                        loop.spawn {
                            let buffer = try IOBuffer(capacity: 4096)
                            while try await connection.read(into: buffer) > 0 { try await connection.writeAll(buffer) }
                            try await connection.close()
                        }
                    }
                }
                // 200 busy connections, echoing all the time, from a client thread.
                let stop = Flag()
                let busy = try onNewThreadSync {
                    var fds: [Int32] = []
                    for _ in 0..<200 { fds.append(rawConnect(port: port, noDelay: true)) }
                    var byte: UInt8 = 1
                    while !stop.isSet {
                        for fd in fds {
                            _ = send(fd, &byte, 1, Int32(MSG_NOSIGNAL))
                            _ = recv(fd, &byte, 1, 0)
                        }
                    }
                    for fd in fds { close(fd) }
                }
                try await waitUntil(loop) { acceptedCount.value >= 200 }
                // The burst: 500 non-blocking connects at once.
                let startIteration = loop.iterations
                let burst = (0..<500).map { _ in rawConnect(port: port, nonBlocking: true) }
                try await waitUntil(loop, limit: .seconds(30)) { acceptedCount.value >= 700 }
                let iterations = loop.iterations - startIteration
                stop.set()
                try await loop.offload { busy() }  // joined off the loop: the busy thread needs the loop to finish
                for fd in burst { close(fd) }
                try await listener.close()
                _ = try? await serverTask.value
                return (acceptedCount.value, iterations)
            }
            #expect(accepted == 700)
            // Accepting one connection per iteration would take 500; draining the
            // queue takes a handful of batches (64 per poll on epoll, and after
            // each single-shot accept's completion on io_uring without multishot).
            #expect(iterations < 200, "took \(iterations) iterations")
        }
    }
}
