import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// Sockets made elsewhere (systemd's listeners, socketpair ends, a C
    /// library's connection) taken over by streams, listeners and transports.
    @Suite("Adopting sockets made elsewhere", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct AdoptionTests {
        /// A blocking socket, not close-on-exec: as another program hands it over.
        static func rawSocket(_ family: Int32, _ type: Int32 = Int32(SOCK_STREAM.rawValue)) -> Int32 {
            socket(family, type, 0)
        }

        static func isNonBlockingAndCloseOnExec(_ fd: Int32) -> Bool {
            fcntl(fd, F_GETFL) & O_NONBLOCK != 0 && fcntl(fd, F_GETFD) & FD_CLOEXEC != 0
        }

        @Test("socketpair ends: one a SocketStream, the other a protocol transport; each owns and closes its end",
              arguments: allBackends)
        func socketPair(backend: Backend) async throws {
            let (reply, flagsSet, closedAfter, lost) = try await onLoop(backend) { loop -> ([UInt8], Bool, Bool, [String]) in
                var ends: [Int32] = [-1, -1]
                guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) == 0 else { throw Errno.current }
                let stream = try SocketStream(adopting: ends[0])
                let (_, echo) = try loop.createConnection(adopting: ends[1]) { () -> RecordingProtocol in
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                let flagsSet = Self.isNonBlockingAndCloseOnExec(ends[0]) && Self.isNonBlockingAndCloseOnExec(ends[1])
                try await stream.writeAll(Array("over the pair\n".utf8))
                let reply = try await stream.readExactly(14)
                try await stream.close()
                try await waitUntil(loop) { echo.lostCount > 0 }
                let closedAfter = fcntl(ends[0], F_GETFD) == -1 && fcntl(ends[1], F_GETFD) == -1
                return (reply, flagsSet, closedAfter, echo.events)
            }
            #expect(reply == Array("over the pair\n".utf8))
            #expect(flagsSet, "adopted sockets are made non-blocking and close-on-exec")
            #expect(closedAfter, "each owner closed its descriptor")
            #expect(lost == ["made", "data", "eof", "lost"])
        }

        @Test("a listener bound elsewhere (as systemd hands one down) is served by serve(listener:), TCP_NODELAY on",
              arguments: allBackends)
        func adoptedListener(backend: Backend) async throws {
            let (line, noDelay, flagsSet) = try await onLoop(backend) { loop -> (String?, Bool, Bool) in
                let fd = Self.rawSocket(AF_INET)
                let address = try SocketAddress(ip: "127.0.0.1", port: 0)
                try Sockets.bind(fd, address)
                guard listen(fd, 16) == 0 else { throw Errno.current }
                let listener = try SocketListener(adopting: fd)
                let flagsSet = Self.isNonBlockingAndCloseOnExec(fd)
                let noDelay = Locked(false)
                let server = try loop.serve(listener: listener) { stream in
                    noDelay.withLock { $0 = (try? stream.noDelay) ?? false }
                    try await stream.writeAll(Array("adopted\n".utf8))
                }
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let line = try await client.readLine()
                try await client.close()
                server.close()
                await server.waitClosed()
                return (line, noDelay.withLock { $0 }, flagsSet)
            }
            #expect(line == "adopted")
            #expect(noDelay, "accepted connections inherit TCP_NODELAY from the adopted listener")
            #expect(flagsSet)
        }

        @Test("createServer(adopting:) serves a Unix-domain listener bound elsewhere, and leaves its path to its binder",
              arguments: allBackends)
        func adoptedUnixServer(backend: Backend) async throws {
            let path = temporaryPath("adopted.sock")
            defer { unlink(path) }
            let (echoed, pathKept) = try await onLoop(backend) { loop -> ([UInt8], Bool) in
                let fd = Self.rawSocket(AF_UNIX)
                try Sockets.bind(fd, try SocketAddress(unixPath: path))
                guard listen(fd, 16) == 0 else { throw Errno.current }
                let server = try loop.createServer(adopting: fd) { () -> RecordingProtocol in
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                #expect(server.localAddress == .unix(path: path))
                let client = try await SocketStream.connect(unixPath: path)
                try await client.writeAll(Array("unix".utf8))
                let echoed = try await client.readExactly(4)
                try await client.close()
                server.close()
                await server.waitClosed()
                return (echoed, access(path, F_OK) == 0)
            }
            #expect(echoed == Array("unix".utf8))
            #expect(pathKept, "the binder owns the path, not RingLoop")
        }

        @Test("what cannot be adopted is a clear error naming the descriptor, which stays open and unchanged",
              arguments: allBackends)
        func refusals(backend: Backend) async throws {
            let outcomes = try await onLoop(backend) { loop -> [(String, Errno?, Bool)] in
                var pipeEnds: [Int32] = [-1, -1]
                var pair: [Int32] = [-1, -1]
                guard pipe(&pipeEnds) == 0, socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &pair) == 0 else { throw Errno.current }
                let udp = Self.rawSocket(AF_INET, Int32(SOCK_DGRAM.rawValue))
                let unconnected = Self.rawSocket(AF_INET)
                let listening = Self.rawSocket(AF_INET)
                try Sockets.bind(listening, try SocketAddress(ip: "127.0.0.1", port: 0))
                guard listen(listening, 4) == 0 else { throw Errno.current }
                let owned = [pipeEnds[0], pipeEnds[1], pair[0], pair[1], udp, unconnected, listening]
                defer { owned.forEach { close($0) } }
                let attempts: [(String, Int32, (Int32) throws -> Void)] = [
                    ("closed descriptor", 1_000_000, { _ = try SocketStream(adopting: $0) }),
                    ("pipe as stream", pipeEnds[0], { _ = try SocketStream(adopting: $0) }),
                    ("UDP as listener", udp, { _ = try SocketListener(adopting: $0) }),
                    ("unconnected as stream", unconnected, { _ = try SocketStream(adopting: $0) }),
                    ("listener as stream", listening, { _ = try SocketStream(adopting: $0) }),
                    ("listener as connection", listening, { _ = try loop.createConnection(adopting: $0) { RecordingProtocol() } }),
                    ("connected as listener", pair[0], { _ = try SocketListener(adopting: $0) }),
                    ("connected as server", pair[0], { _ = try loop.createServer(adopting: $0) { RecordingProtocol() } }),
                ]
                var outcomes: [(String, Errno?, Bool)] = []
                for (name, fd, attempt) in attempts {
                    do {
                        try attempt(fd)
                        outcomes.append((name, nil, false))
                    } catch let error as IOError {
                        let untouched = fd == 1_000_000 || (fcntl(fd, F_GETFD) != -1 && fcntl(fd, F_GETFL) & O_NONBLOCK == 0)
                        #expect(error.fd == fd, "\(name): \(error)")
                        outcomes.append((name, error.errno, untouched))
                    }
                }
                return outcomes
            }
            let expected: [String: Int32] = [
                "closed descriptor": EBADF, "pipe as stream": ENOTSOCK, "UDP as listener": EPROTOTYPE,
                "unconnected as stream": ENOTCONN, "listener as stream": EINVAL, "listener as connection": EINVAL,
                "connected as listener": EINVAL, "connected as server": EINVAL,
            ]
            #expect(outcomes.count == expected.count)
            for (name, errno, untouched) in outcomes {
                #expect(errno == Errno(expected[name]!), "\(name)")
                #expect(untouched, "\(name): the descriptor is still the caller's, open and blocking")
            }
        }

        @Test("serve(listener:) refuses a listener of another loop", arguments: allBackends)
        func listenerOfAnotherLoop(backend: Backend) async throws {
            let refused = try await onLoop(backend) { _ -> Bool in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let group = try LoopGroup(threads: 1, backend: backend)
                defer { group.shutdown() }
                let other = group.loops[0]
                let refused: Bool
                do {
                    _ = try await other.submit { try other.serve(listener: listener) { _ in } }
                    refused = false
                } catch EventLoopError.wrongLoop {
                    refused = true
                }
                try await listener.close()
                return refused
            }
            #expect(refused)
        }
    }
}
