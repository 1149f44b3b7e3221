import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    @Suite("Listener options", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct ListenerOptionTests {
        @Test("serve and createServer listen on every address of a name, on one port; an unbindable address is left out; a busy one fails the whole",
              arguments: allBackends)
        func everyAddress(backend: Backend) async throws {
            let (ports, replies, refusedAfter, echoed, partialCount, noneCode, busyCode, busyLeftNothing) = try await onLoop(backend) {
                loop -> (Set<Int?>, [String], Int, [UInt8], Int, Int32?, IOError.Code?, Bool) in
                var addresses = [try SocketAddress(ip: "127.0.0.1", port: 0)]
                if Capabilities.ipv6 { addresses.append(try SocketAddress(ip: "::1", port: 0)) }
                let server = try loop.serve(addresses: addresses) { stream in
                    if let line = try await stream.readLine() { try await stream.writeAll(Array("\(line)\n".utf8)) }
                }
                let bound = server.localAddresses
                var replies: [String] = []
                for address in bound {
                    let client = try await SocketStream.connect(to: address)
                    try await client.writeAll(Array("to \(address)\n".utf8))
                    replies.append(try await client.readLine() ?? "")
                    try await client.close()
                }
                server.close()
                await server.waitClosed()
                var refusedAfter = 0
                for address in bound {
                    do { try await SocketStream.connect(to: address).close() } catch let error as IOError where error.code == .connectionRefused {
                        refusedAfter += 1
                    }
                }
                // The protocol API, the same way.
                let protocolServer = try loop.createServer(addresses: addresses) {
                    let echo = RecordingProtocol()
                    echo.echo = true
                    return echo
                }
                var echoed: [UInt8] = []
                for address in protocolServer.localAddresses {
                    let client = try await SocketStream.connect(to: address)
                    try await client.writeAll([7])
                    echoed += try await client.readExactly(1)
                    try await client.close()
                }
                protocolServer.close()
                protocolServer.closeClients()
                await protocolServer.waitClosed()
                // 192.0.2.1 (TEST-NET-1) is on no interface here: left out, or the error when it is all there is.
                let unbindable = try SocketAddress(ip: "192.0.2.1", port: 0)
                let partial = try loop.serve(addresses: [addresses[0], unbindable]) { _ in }
                let partialCount = partial.localAddresses.count
                partial.close()
                await partial.waitClosed()
                var noneCode: Int32?
                do { _ = try loop.serve(addresses: [unbindable]) { _ in } } catch let error as IOError { noneCode = error.errno?.rawValue }
                // A port taken on the second address: nothing stays listening on the first.
                let taken = try await SocketListener.bind(host: "127.0.0.1", port: 0, reuseAddress: false)
                let port = taken.localAddress.port!
                var busyCode: IOError.Code?
                do {
                    _ = try loop.serve(addresses: [try SocketAddress(ip: "127.0.0.2", port: port), try SocketAddress(ip: "127.0.0.1", port: port)]) { _ in }
                } catch let error as IOError { busyCode = error.code }
                var busyLeftNothing = false
                do { try await SocketStream.connect(host: "127.0.0.2", port: port).close() } catch let error as IOError {
                    busyLeftNothing = error.code == .connectionRefused
                }
                try await taken.close()
                return (Set(bound.map(\.port)), replies, refusedAfter, echoed, partialCount, noneCode, busyCode, busyLeftNothing)
            }
            let families = Capabilities.ipv6 ? 2 : 1
            #expect(ports.count == 1 && ports.first! != 0, "one port for every address: \(ports)")
            #expect(replies.count == families && replies.allSatisfy { $0.hasPrefix("to ") }, "\(replies)")
            #expect(refusedAfter == families, "close() closed every listening socket")
            #expect(echoed == [UInt8](repeating: 7, count: families))
            #expect(partialCount == 1)
            #expect(noneCode == EADDRNOTAVAIL)
            #expect(busyCode == .addressInUse)
            #expect(busyLeftNothing)
        }

        @Test("every accepted TCP connection has TCP_NODELAY on, inherited from its listening socket: accept, serve and createServer, on IPv4 and IPv6",
              arguments: allBackends)
        func acceptedNoDelay(backend: Backend) async throws {
            let (listenersOn, replies) = try await onLoop(backend) { loop -> ([Bool], [String]) in
                let hosts = Capabilities.ipv6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"]
                let addresses = try hosts.map { try SocketAddress(ip: $0, port: 0) }
                var listenersOn: [Bool] = []
                var replies: [String] = []
                for host in hosts {
                    let listener = try await SocketListener.bind(host: host, port: 0)
                    listenersOn.append(tcpNoDelay(listener.fileDescriptor))
                    let client = try await SocketStream.connect(to: listener.localAddress)
                    let accepted = try await listener.accept()
                    replies.append("accept \(host) \(try accepted.noDelay)")
                    try await accepted.close()
                    try await client.close()
                    try await listener.close()
                }
                // Each server answers with what the connection's own socket says.
                let streamServer = try loop.serve(addresses: addresses) { stream in
                    try await stream.writeAll(Array("serve \(try stream.noDelay)\n".utf8))
                }
                let protocolServer = try loop.createServer(addresses: addresses) { NoDelayReporter() }
                for address in streamServer.localAddresses + protocolServer.localAddresses {
                    let client = try await SocketStream.connect(to: address)
                    replies.append("\(address) \(try await client.readLine() ?? "nothing")")
                    try await client.close()
                }
                streamServer.close()
                await streamServer.waitClosed()
                protocolServer.close()
                protocolServer.closeClients()
                await protocolServer.waitClosed()
                return (listenersOn, replies)
            }
            let families = Capabilities.ipv6 ? 2 : 1
            #expect(listenersOn == [Bool](repeating: true, count: families), "set once, on the listening socket")
            #expect(replies.count == 3 * families && replies.allSatisfy { $0.hasSuffix(" true") }, "\(replies)")
        }

        @Test("reusePort lets two listeners share a port, and both really accept", arguments: allBackends)
        func reusePort(backend: Backend) async throws {
            let (same, counts) = try await onLoop(backend) { loop -> (Bool, [Int]) in
                let first = try await SocketListener.bind(host: "127.0.0.1", port: 0, reusePort: true)
                let port = first.localAddress.port!
                let second = try await SocketListener.bind(host: "127.0.0.1", port: port, reusePort: true)
                // The kernel spreads connections over the two by a hash of the
                // four-tuple: with fresh source ports, both get some.
                var counts = [0, 0]
                for _ in 0..<64 where counts.contains(0) {
                    let client = try await SocketStream.connect(host: "127.0.0.1", port: port)
                    let which = try await withThrowingTaskGroup(of: Int.self) { group in
                        group.addTask { let s = try await first.accept(); try await s.close(); return 0 }
                        group.addTask { let s = try await second.accept(); try await s.close(); return 1 }
                        let index = try await group.next()!
                        group.cancelAll()
                        return index
                    }
                    counts[which] += 1
                    try await client.close()
                }
                try await first.close()
                try await second.close()
                return (second.localAddress.port == port, counts)
            }
            #expect(same)
            #expect(counts[0] > 0 && counts[1] > 0, "accepted per listener: \(counts)")
        }
    }
}

/// Whether `fd` has TCP_NODELAY on, read with getsockopt.
private func tcpNoDelay(_ fd: Int32) -> Bool {
    var value: Int32 = 0
    var length = socklen_t(MemoryLayout<Int32>.size)
    return getsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &value, &length) == 0 && value != 0
}

/// Answers each connection with one line: "createServer true" when its
/// socket has TCP_NODELAY on.
private final class NoDelayReporter: TransportProtocol, @unchecked Sendable {
    func connectionMade(_ transport: Transport) throws {
        try transport.write(Array("createServer \(tcpNoDelay(transport.fileDescriptor))\n".utf8))
        transport.close()
    }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) throws {}
}
