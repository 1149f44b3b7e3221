import Glibc
@testable import RingLoop
import Testing

/// Starts an echo server on `listener`: each connection echoes until EOF.
@discardableResult
func startEchoServer(_ listener: SocketListener, loop: EventLoop) -> LoopTask<Void> {
    loop.spawn {
        for try await connection in listener.connections {
            loop.spawn {
                let buffer = try IOBuffer(capacity: 64 * 1024)
                while try await connection.read(into: buffer) > 0 {
                    try await connection.writeAll(buffer)
                }
                try await connection.close()
            }
        }
    }
}

/// Sends `message` and reads the same number of bytes back.
func roundTrip(_ stream: SocketStream, _ message: [UInt8]) async throws -> [UInt8] {
    let writer = Task(executorPreference: try EventLoop.running()) { try await stream.writeAll(message) }
    var received: [UInt8] = []
    let buffer = try IOBuffer(capacity: 64 * 1024)
    while received.count < message.count {
        let n = try await stream.read(into: buffer)
        if n == 0 { break }
        received += buffer.bytes
    }
    try await writer.value
    return received
}

extension AllSuites {
    @Suite("TCP, UDP and Unix sockets", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct SocketTests {
        @Test("TCP echo of messages from 1 B to 1 MiB on one connection", arguments: allBackends)
        func echoSizes(backend: Backend) async throws {
            let ok = try await onLoop(backend) { loop -> Bool in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                startEchoServer(listener, loop: loop)
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                var ok = true
                for size in [1, 2, 100, 4096, 65_537, 1 << 20] {
                    let message = pattern(size, seed: UInt64(size))
                    ok = try await roundTrip(stream, message) == message && ok
                }
                #expect(try stream.noDelay)
                #expect(stream.remoteAddress == listener.localAddress)
                try await stream.close()
                try await listener.close()
                return ok
            }
            #expect(ok)
        }

        @Test("1,000 concurrent TCP connections each exchange messages", arguments: allBackends)
        func thousandConnections(backend: Backend) async throws {
            var limit = rlimit()
            getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
            if limit.rlim_cur < 4096 { limit.rlim_cur = min(limit.rlim_max, 4096); setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) }
            let good = try await onLoop(backend) { loop -> Int in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0, backlog: 1024)
                startEchoServer(listener, loop: loop)
                let port = listener.localAddress.port!
                let good = try await withThrowingTaskGroup(of: Bool.self) { group in
                    for i in 0..<1_000 {
                        group.addTask {
                            let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                            let message = pattern(1 + (i * 37) % 3000, seed: UInt64(i))
                            let first = try await roundTrip(stream, message)
                            let second = try await roundTrip(stream, Array(message.reversed()))
                            try await stream.close()
                            return first == message && second == message.reversed()
                        }
                    }
                    var good = 0
                    for try await ok in group where ok { good += 1 }
                    return good
                }
                try await listener.close()
                return good
            }
            #expect(good == 1_000)
        }

        @Test("half-close: shutdown(.write) then read the reply to EOF; the stream stays open until close()", arguments: allBackends)
        func halfClose(backend: Backend) async throws {
            let (reply, stillOpen) = try await onLoop(backend) { loop -> ([UInt8], Bool) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                loop.spawn {
                    let connection = try await listener.accept()
                    let request = try await connection.readToEnd()   // until the client's FIN
                    try await connection.writeAll(request.reversed())
                    try await connection.close()
                }
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                try await stream.writeAll(Array("abc".utf8))
                try await stream.shutdown(.write)
                let reply = try await stream.readToEnd()
                // Both directions have ended, but a stream is its owner's to
                // close (a protocol's transport closes itself here).
                try await loop.sleep(for: .milliseconds(10))
                let stillOpen = stream.fileDescriptor >= 0
                try await stream.close()
                try await listener.close()
                return (reply, stillOpen)
            }
            #expect(reply == Array("cba".utf8))
            #expect(stillOpen)
        }

        @Test("a peer reset (SO_LINGER 0) mid-read is connectionReset", arguments: allBackends)
        func peerReset(backend: Backend) async throws {
            let code = try await onLoop(backend) { loop -> IOError.Code? in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                loop.spawn {
                    let connection = try await listener.accept()
                    try await loop.sleep(for: .milliseconds(20))
                    try connection.setLinger(seconds: 0)
                    try await connection.close()   // RST
                }
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                var code: IOError.Code?
                do {
                    _ = try await stream.read(upTo: 100)
                } catch let error as IOError {
                    code = error.code
                }
                try await stream.close()
                try await listener.close()
                return code
            }
            #expect(code == .connectionReset)
        }

        @Test("readToEnd after a reset: the bytes that came before it are read, then the reset is the error", arguments: allBackends)
        func readToEndAfterReset(backend: Backend) async throws {
            let (head, code) = try await onLoop(backend) { loop -> ([UInt8], IOError.Code?) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                loop.spawn {
                    let connection = try await listener.accept()
                    try await connection.writeAll(Array("hello".utf8))
                    try await loop.sleep(for: .milliseconds(20))
                    try connection.setLinger(seconds: 0)
                    try await connection.close()   // RST
                }
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                try await waitUntil(loop) { stream.state.lost }
                // All five bytes came before the reset: asking for them is no error.
                let head = try await stream.readToEnd(limit: 5)
                var code: IOError.Code?
                do { _ = try await stream.readToEnd() } catch let error as IOError { code = error.code }
                try await stream.close()
                try await listener.close()
                return (head, code)
            }
            #expect(head == Array("hello".utf8))
            #expect(code == .connectionReset)
        }

        @Test("connecting to a closed port is connectionRefused", arguments: allBackends)
        func connectRefused(backend: Backend) async throws {
            let error = try await onLoop(backend) { _ -> IOError? in
                // Bind a port, then close it: nothing listens there now.
                let probe = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let port = probe.localAddress.port!
                try await probe.close()
                do { _ = try await SocketStream.connect(host: "127.0.0.1", port: port) } catch let error as IOError { return error }
                return nil
            }
            #expect(error?.code == .connectionRefused)
            #expect(error?.operation == "connect")
            #expect(error?.description.contains("ECONNREFUSED") == true)
        }

        @Test("IPv6 loopback echo", arguments: allBackends)
        func ipv6(backend: Backend) async throws {
            let (echoed, family) = try await onLoop(backend) { loop -> ([UInt8], String) in
                let listener = try await SocketListener.bind(host: "::1", port: 0)
                startEchoServer(listener, loop: loop)
                let stream = try await SocketStream.connect(host: "::1", port: listener.localAddress.port!)
                let echoed = try await roundTrip(stream, Array("six".utf8))
                let local = stream.localAddress?.description ?? ""
                try await stream.close()
                try await listener.close()
                return (echoed, local)
            }
            #expect(echoed == Array("six".utf8))
            #expect(family.hasPrefix("[::1]:"))
        }

        @Test("accept then close with no data: the client reads EOF", arguments: allBackends)
        func acceptThenClose(backend: Backend) async throws {
            let n = try await onLoop(backend) { loop -> Int in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                loop.spawn {
                    let connection = try await listener.accept()
                    try await connection.close()
                }
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let n = try await stream.read(into: IOBuffer(capacity: 10))
                try await stream.close()
                try await listener.close()
                return n
            }
            #expect(n == 0)
        }

        @Test("addresses come from the socket: each end sees the other's, Unix peers are unnamed, nil after close", arguments: allBackends)
        func addresses(backend: Backend) async throws {
            let path = temporaryPath("sock")
            try await onLoop(backend) { loop in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let accepted = try await listener.accept()
                #expect(accepted.remoteAddress != nil)
                #expect(accepted.remoteAddress == client.localAddress)
                #expect(client.remoteAddress == accepted.localAddress)
                try await accepted.close()
                #expect(accepted.remoteAddress == nil && accepted.localAddress == nil)
                try await client.close()
                try await listener.close()

                let unixListener = try await SocketListener.bind(unixPath: path)
                let unixClient = try await SocketStream.connect(unixPath: path)
                let unixAccepted = try await unixListener.accept()
                #expect(unixClient.remoteAddress == .unix(path: path))
                #expect(unixAccepted.localAddress == .unix(path: path))
                #expect(unixAccepted.remoteAddress == .unix(path: ""), "a client that did not bind is unnamed")
                try await unixAccepted.close()
                try await unixClient.close()
                try await unixListener.close()
            }
        }

        @Test("UDP round trip; a failed send names its destination", arguments: allBackends)
        func udp(backend: Backend) async throws {
            let (reply, from) = try await onLoop(backend) { loop -> ([UInt8], Bool) in
                let server = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                let client = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                loop.spawn {
                    let buffer = try IOBuffer(capacity: 1500)
                    let sender = try await server.receive(into: buffer)
                    try await server.send(IOBuffer(buffer.bytes.reversed()), to: sender)
                }
                try await client.send(IOBuffer(Array("ping".utf8)), to: server.localAddress)
                let buffer = try IOBuffer(capacity: 1500)
                let from = try await client.receive(into: buffer)
                // A failed send names where it was going.
                var failures: [IOError] = []
                for (bytes, destination) in [(1, try SocketAddress(ip: "::1", port: 9)), (1, try SocketAddress(unixPath: "/tmp/ringloop-none")),
                                             (70_000, server.localAddress)] {
                    do { try await client.send(IOBuffer([UInt8](repeating: 1, count: bytes)), to: destination) } catch let error as IOError { failures.append(error) }
                }
                #expect(failures.map(\.errno) == [Errno(EAFNOSUPPORT), Errno(EAFNOSUPPORT), Errno(EMSGSIZE)])
                #expect(failures.map(\.path) == ["[::1]:9", "unix:/tmp/ringloop-none", server.localAddress.description])
                #expect(failures[1].detail?.hasPrefix("the destination is Unix-domain, the socket IPv4 (bound to \(client.localAddress))") == true,
                        "\(failures[1])")
                try await client.close()
                try await server.close()
                return (buffer.bytes, from == server.localAddress)
            }
            #expect(reply == Array("gnip".utf8))
            #expect(from)
        }

        @Test("UDP broadcast: refused with an error that says what to set, delivered with allowBroadcast", arguments: allBackends)
        func udpBroadcast(backend: Backend) async throws {
            let (refusal, received) = try await onLoop(backend) { loop -> (IOError?, [UInt8]) in
                // 127.255.255.255 is the loopback's broadcast address: the
                // kernel treats a send to it as a broadcast, as on a LAN.
                let receiver = try await UDPSocket.bind(host: "0.0.0.0", port: 0)
                let destination = try SocketAddress(ip: "127.255.255.255", port: receiver.localAddress.port!)
                let plain = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                var refusal: IOError?
                do { try await plain.send(IOBuffer(Array("no".utf8)), to: destination) } catch let error as IOError { refusal = error }
                let broadcaster = try await UDPSocket.bind(host: "127.0.0.1", port: 0, allowBroadcast: true)
                try await broadcaster.send(IOBuffer(Array("all".utf8)), to: destination)
                let buffer = try IOBuffer(capacity: 64)
                _ = try await withTimeout(.seconds(5)) { try await receiver.receive(into: buffer) }
                try await plain.close(); try await broadcaster.close(); try await receiver.close()
                return (refusal, buffer.bytes)
            }
            #expect(refusal?.code == .permissionDenied)
            #expect(refusal?.path?.hasPrefix("127.255.255.255:") == true, "the error names the destination")
            #expect(refusal?.detail?.contains("allowBroadcast: true") == true)
            #expect(received == Array("all".utf8))
        }

        @Test("UDP connect: send without an address, only the peer's datagrams arrive, an unreachable port is refused", arguments: allBackends)
        func udpConnected(backend: Backend) async throws {
            let (reply, second, refused, unconnected, peerMatches) = try await onLoop(backend) { loop -> ([UInt8], [UInt8], IOError?, IOError?, Bool) in
                let server = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                let client = try await UDPSocket.connect(host: "127.0.0.1", port: server.localAddress.port!)
                let peerMatches = client.remoteAddress == server.localAddress
                try await client.send(IOBuffer(Array("ping".utf8)))
                let request = try IOBuffer(capacity: 64)
                let from = try await withTimeout(.seconds(5)) { try await server.receive(into: request) }
                try await server.send(IOBuffer(Array("pong".utf8)), to: from)
                let reply = try IOBuffer(capacity: 64)
                _ = try await withTimeout(.seconds(5)) { try await client.receive(into: reply) }
                // The same through an address already known.
                let direct = try await UDPSocket.connect(to: server.localAddress)
                try await direct.send(IOBuffer(Array("direct".utf8)))
                let directRequest = try IOBuffer(capacity: 64)
                let directFrom = try await withTimeout(.seconds(5)) { try await server.receive(into: directRequest) }
                let directMatches = directFrom == direct.localAddress && directRequest.bytes == Array("direct".utf8)
                try await direct.close()
                // A datagram from anyone but the peer is dropped by the kernel.
                let stranger = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                try await stranger.send(IOBuffer(Array("stray".utf8)), to: client.localAddress)
                try await server.send(IOBuffer(Array("second".utf8)), to: from)
                let next = try IOBuffer(capacity: 64)
                _ = try await withTimeout(.seconds(5)) { try await client.receive(into: next) }
                // A port nobody listens on: the ICMP answer fails the next receive.
                let gone = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                let gonePort = gone.localAddress.port!
                try await gone.close()
                let lonely = try await UDPSocket.connect(host: "127.0.0.1", port: gonePort)
                try await lonely.send(IOBuffer(Array("anyone?".utf8)))
                var refused: IOError?
                do {
                    _ = try await withTimeout(.seconds(5)) { try await lonely.receive(into: try IOBuffer(capacity: 64)) }
                } catch let error as IOError { refused = error }
                // send(_:) on a socket that is not connected says so.
                var unconnected: IOError?
                do { try await server.send(IOBuffer([1])) } catch let error as IOError { unconnected = error }
                for socket in [server, client, stranger, lonely] { try await socket.close() }
                return (reply.bytes, next.bytes, refused, unconnected, peerMatches && directMatches)
            }
            #expect(peerMatches)
            #expect(reply == Array("pong".utf8))
            #expect(second == Array("second".utf8), "the stranger's datagram must not reach a connected socket")
            #expect(refused?.code == .connectionRefused)
            #expect(unconnected?.errno == Errno(EDESTADDRREQ))
            #expect(unconnected?.detail?.contains("UDPSocket.connect") == true)
        }

        @Test("UDP: two receivers on one socket share its datagrams; none is lost, doubled or an error until the close", arguments: allBackends)
        func udpSharedReceivers(backend: Backend) async throws {
            let (values, endings) = try await onLoop(backend) { loop -> ([Int], [String]) in
                let sender = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                let shared = try await UDPSocket.bind(host: "127.0.0.1", port: 0)
                final class Received: @unchecked Sendable { var values: [Int] = [] }
                let received = Received()
                // Each waits in its own receive at once: a datagram wakes
                // both, and the one that finds nothing must wait again, not
                // fail (io_uring reported that as EAGAIN).
                let receivers = (0..<2).map { _ in
                    loop.spawn { () async throws -> String in
                        let buffer = try IOBuffer(capacity: 64)
                        do {
                            while true {
                                _ = try await shared.receive(into: buffer)
                                received.values.append(buffer.bytes.withUnsafeBytes { $0.loadUnaligned(as: Int.self) })
                            }
                        } catch let error as IOError {
                            return error.code == .closed ? "closed" : "\(error)"
                        }
                    }
                }
                let total = 2000
                for value in 0..<total {
                    try await sender.send(IOBuffer(withUnsafeBytes(of: value) { Array($0) }), to: shared.localAddress)
                    // A few in flight at a time, so the socket's buffer never overflows.
                    if value % 16 == 15 { try await waitUntil(loop) { received.values.count > value - 8 } }
                }
                try await waitUntil(loop) { received.values.count == total }
                try await shared.close()
                var endings: [String] = []
                for receiver in receivers { endings.append(try await receiver.value) }
                try await sender.close()
                return (received.values, endings)
            }
            #expect(values.sorted() == Array(0..<2000))
            #expect(endings == ["closed", "closed"])
        }

        @Test("Unix-domain stream round trip", arguments: allBackends)
        func unixStream(backend: Backend) async throws {
            let path = temporaryPath("sock")
            let (echoed, removed) = try await onLoop(backend) { loop -> ([UInt8], Bool) in
                let listener = try await SocketListener.bind(unixPath: path)
                startEchoServer(listener, loop: loop)
                let stream = try await SocketStream.connect(unixPath: path)
                let echoed = try await roundTrip(stream, pattern(100_000))
                try await stream.close()
                try await listener.close()
                return (echoed, access(path, F_OK) != 0)
            }
            #expect(echoed == pattern(100_000))
            #expect(removed, "closing a Unix listener removes its socket file")
        }

        @Test("binding a port in use is addressInUse; bad ports are invalidArgument", arguments: allBackends)
        func bindErrors(backend: Backend) async throws {
            let codes = try await onLoop(backend) { _ -> [IOError.Code] in
                let first = try await SocketListener.bind(host: "127.0.0.1", port: 0, reuseAddress: false)
                var codes: [IOError.Code] = []
                do { _ = try await SocketListener.bind(host: "127.0.0.1", port: first.localAddress.port!, reuseAddress: false) }
                catch let e as IOError { codes.append(e.code) }
                do { _ = try await SocketListener.bind(host: "127.0.0.1", port: 70_000) } catch let e as IOError { codes.append(e.code) }
                do { _ = try await SocketStream.connect(host: "127.0.0.1", port: -1) } catch let e as IOError { codes.append(e.code) }
                try await first.close()
                return codes
            }
            #expect(codes == [IOError.Code.addressInUse, .invalidArgument, .invalidArgument])
        }

        @Test("a port let go of within the grace binds (a killed io_uring process holds its port a few ms); one kept is addressInUse after it",
              arguments: allBackends)
        func bindWaitsOutAPortBeingReleased(backend: Backend) async throws {
            let (outcomes, keptCode, keptWaited) = try await onLoop(backend) { loop -> ([String], IOError.Code?, Duration) in
                // A raw socket holds the port, as the dying process's ring
                // would, and lets go of it 30 ms later.
                func hold(_ type: __socket_type) throws -> (fd: Int32, port: Int) {
                    let fd = socket(AF_INET, Int32(type.rawValue), 0)
                    _ = try SocketAddress(ip: "127.0.0.1", port: 0).withSockAddr { Glibc.bind(fd, $0, $1) }
                    if type == SOCK_STREAM { Glibc.listen(fd, 8) }
                    _ = try loop.callLater(.milliseconds(30)) { Glibc.close(fd) }
                    return (fd, Sockets.localAddress(fd)!.port!)
                }
                var outcomes: [String] = []
                let listenerPort = try hold(SOCK_STREAM).port
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: listenerPort, reuseAddress: false)
                outcomes.append(listener.localAddress.port == listenerPort ? "listener" : "listener on \(listener.localAddress)")
                try await listener.close()
                let servePort = try hold(SOCK_STREAM).port
                let server = try await loop.serve(host: "127.0.0.1", port: servePort) { _ in }
                outcomes.append(server.localAddresses.map(\.port) == [servePort] ? "serve" : "serve on \(server.localAddresses)")
                server.close()
                await server.waitClosed()
                let createPort = try hold(SOCK_STREAM).port
                let created = try await loop.createServer(host: "127.0.0.1", port: createPort) { RecordingProtocol() }
                outcomes.append(created.localAddresses.map(\.port) == [createPort] ? "createServer" : "createServer on \(created.localAddresses)")
                created.close()
                await created.waitClosed()
                let udpPort = try hold(SOCK_DGRAM).port
                let udp = try await UDPSocket.bind(host: "127.0.0.1", port: udpPort)
                outcomes.append(udp.localAddress.port == udpPort ? "udp" : "udp on \(udp.localAddress)")
                try await udp.close()
                // A port nobody lets go of is still an error, after the grace.
                let kept = try await SocketListener.bind(host: "127.0.0.1", port: 0, reuseAddress: false)
                let start = LoopInstant.now
                var keptCode: IOError.Code?
                do { _ = try await SocketListener.bind(host: "127.0.0.1", port: kept.localAddress.port!, reuseAddress: false) }
                catch let error as IOError { keptCode = error.code }
                let waited = LoopInstant.now - start
                try await kept.close()
                return (outcomes, keptCode, waited)
            }
            #expect(outcomes == ["listener", "serve", "createServer", "udp"])
            #expect(keptCode == .addressInUse)
            #expect(keptWaited >= Sockets.addressInUseGrace, "gave up after \(keptWaited)")
        }
    }
}

extension AllSuites {
    @Suite("I/O off the loop", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct OffLoopTests {
        @Test("I/O from a task that is not on the loop throws wrongThread", arguments: allBackends)
        func ioFromOtherExecutor(backend: Backend) async throws {
            let errors = try await onLoop(backend) { loop -> [EventLoopError] in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                // Task { } does not inherit the loop as its executor: it runs on the global pool.
                let off = Task { () -> [EventLoopError] in
                    var errors: [EventLoopError] = []
                    do { _ = try await listener.accept() } catch let e as EventLoopError { errors.append(e) } catch {}
                    do { try await listener.close() } catch let e as EventLoopError { errors.append(e) } catch {}
                    return errors
                }
                let errors = await off.value
                try await listener.close()
                return errors
            }
            #expect(errors == [.wrongThread(operation: "accept"), .wrongThread(operation: "close")])
        }

        @Test("I/O from a task on another loop of a group throws wrongLoop, and the owner still serves it", arguments: allBackends)
        func ioFromAnotherLoop(backend: Backend) async throws {
            let group = try LoopGroup(threads: 2, backend: backend)
            defer { group.shutdown() }
            let (home, other) = (group.loops[0], group.loops[1])
            let listener = try await home.submit { try await SocketListener.bind(host: "127.0.0.1", port: 0) }
            let errors = try await other.submit { () -> [EventLoopError] in
                var errors: [EventLoopError] = []
                do { _ = try await listener.accept() } catch let e as EventLoopError { errors.append(e) } catch {}
                do { try await listener.close() } catch let e as EventLoopError { errors.append(e) } catch {}
                do { _ = try home.callSoon {} } catch let e as EventLoopError { errors.append(e) } catch {}
                return errors
            }
            #expect(errors == [.wrongLoop(operation: "accept"), .wrongLoop(operation: "close"), .wrongLoop(operation: "callSoon")])
            #expect(errors.first?.description.contains("another event loop") == true)
            // The refused calls changed nothing: the owner accepts and closes.
            let port = listener.localAddress.port!
            let accepted = try await home.submit { () -> Bool in
                async let client = SocketStream.connect(host: "127.0.0.1", port: port)
                let connection = try await listener.accept()
                try await connection.close()
                try await client.close()
                try await listener.close()
                return true
            }
            #expect(accepted)
        }
    }
}

/// The code of the IOError a task ended with, nil if it succeeded or threw something else.
func ioErrorCode<T>(_ result: Result<T, any Error>) -> IOError.Code? {
    guard case .failure(let error) = result else { return nil }
    return (error as? IOError)?.code
}
