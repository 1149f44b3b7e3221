import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    @Suite("Name resolution", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct NameResolutionTests {
        @Test("host names resolve on the thread pool; unknown names are a clear error", arguments: allBackends)
        func resolve(backend: Backend) async throws {
            let (echoed, code, text) = try await onLoop(backend) { loop -> ([UInt8], IOError.Code?, String) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                startEchoServer(listener, loop: loop)
                let stream = try await SocketStream.connect(host: "localhost", port: listener.localAddress.port!)
                let echoed = try await roundTrip(stream, Array("name".utf8))
                try await stream.close()
                try await listener.close()
                do {
                    _ = try await SocketStream.connect(host: "no-such-host.invalid", port: 80)
                } catch let error as IOError {
                    return (echoed, error.code, error.description)
                }
                return (echoed, nil, "")
            }
            #expect(echoed == Array("name".utf8))
            #expect(code == .nameResolution)
            #expect(text.hasPrefix("getaddrinfo(no-such-host.invalid): EAI_"), "names the resolver's code: \(text)")
        }

        @Test("SocketAddress.resolve: numeric hosts as they are, names through the resolver, a clear error otherwise",
              arguments: allBackends)
        func publicResolve(backend: Backend) async throws {
            let (numeric, local, unknown, badPort) = try await onLoop(backend) { _ -> ([SocketAddress], [SocketAddress], IOError?, IOError?) in
                let numeric = try await SocketAddress.resolve(host: "127.0.0.1", port: 5)
                let local = try await SocketAddress.resolve(host: "localhost", port: 8125)
                var unknown: IOError?
                do { _ = try await SocketAddress.resolve(host: "no-such-host.invalid", port: 1) } catch let error as IOError { unknown = error }
                var badPort: IOError?
                do { _ = try await SocketAddress.resolve(host: "localhost", port: 70_000) } catch let error as IOError { badPort = error }
                return (numeric, local, unknown, badPort)
            }
            #expect(numeric == [.ipv4(host: "127.0.0.1", port: 5)])
            #expect(local.contains(.ipv4(host: "127.0.0.1", port: 8125)), "\(local)")
            #expect(Set(local).count == local.count, "no duplicates: \(local)")
            #expect(unknown?.code == .nameResolution)
            #expect(unknown?.path == "no-such-host.invalid")
            #expect(badPort?.code == .invalidArgument)
        }

        @Test("a lookup with no descriptor free is EMFILE, not an unknown name; with one free again it resolves",
              .enabled(if: ResourceCheck.enabled, "lowers the process's RLIMIT_NOFILE, so only in serial runs (scripts/test)"),
              arguments: allBackends)
        func lookupWithoutDescriptors(backend: Backend) async throws {
            let (starved, resolved) = try await onLoop(backend) { _ -> (IOError?, [SocketAddress]) in
                _ = try await SocketAddress.resolve(host: "localhost", port: 1)   // the resolver's pool, made first
                var old = rlimit()
                getrlimit(Int32(RLIMIT_NOFILE.rawValue), &old)
                let lowestFree = dup(0)
                close(lowestFree)
                var none = old
                none.rlim_cur = rlim_t(lowestFree)   // no new descriptor number is allowed
                setrlimit(Int32(RLIMIT_NOFILE.rawValue), &none)
                var starved: IOError?
                do { _ = try await SocketAddress.resolve(host: "localhost", port: 80) } catch let error as IOError { starved = error }
                setrlimit(Int32(RLIMIT_NOFILE.rawValue), &old)
                return (starved, try await SocketAddress.resolve(host: "localhost", port: 80))
            }
            #expect(starved?.code == .tooManyOpenFiles, "\(String(describing: starved))")
            #expect(starved?.path == "localhost")
            #expect(starved?.description.contains("no descriptor was free") == true)
            #expect(resolved.contains(.ipv4(host: "127.0.0.1", port: 80)))
        }

        @Test("an IPv6 address may name its zone (fe80::…%eth0): it parses, binds and connects; an unknown interface is an error naming it",
              arguments: allBackends)
        func scopedIPv6(backend: Backend) async throws {
            let loopback = if_nametoindex("lo")
            let parsed = try SocketAddress(ip: "fe80::1%lo", port: 80)
            #expect(parsed == .ipv6(host: "fe80::1", port: 80, scopeID: loopback))
            #expect(parsed.description == "[fe80::1%lo]:80")
            #expect(try SocketAddress(ip: "fe80::1%\(loopback)", port: 80) == parsed, "a zone by index")
            do {
                _ = try SocketAddress(ip: "fe80::1%nosuchif0", port: 80)
                Issue.record("an unknown interface was accepted")
            } catch {
                #expect("\(error)".contains("no network interface \"nosuchif0\""), "\(error)")
            }
            // End to end where an interface has a link-local address (not every machine has one).
            guard let (address, interface) = linkLocalAddress() else { return }
            let echoed = try await onLoop(backend) { loop -> [UInt8] in
                let listener = try await SocketListener.bind(host: "\(address)%\(interface)", port: 0)
                startEchoServer(listener, loop: loop)
                let stream = try await SocketStream.connect(to: listener.localAddress)
                let echoed = try await roundTrip(stream, [1, 2, 3])
                try await stream.close()
                try await listener.close()
                return echoed
            }
            #expect(echoed == [1, 2, 3])
        }

        @Test("an empty host: every interface for serve, an error saying what to write for bind and connect; :: is IPv6 only",
              arguments: allBackends)
        func emptyHostAndV6Only(backend: Backend) async throws {
            let (bindError, connectError, v4Refused, everyInterface, reached) = try await onLoop(backend) {
                loop -> (IOError?, IOError?, Bool, [String], Int) in
                var bindError: IOError?, connectError: IOError?
                do { _ = try await SocketListener.bind(host: "", port: 0) } catch let error as IOError { bindError = error }
                do { _ = try await SocketStream.connect(host: "", port: 80) } catch let error as IOError { connectError = error }
                var v4Refused = false
                if Capabilities.ipv6 {
                    let listener = try await SocketListener.bind(host: "::", port: 0)
                    do {
                        let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                        try await stream.close()
                    } catch let error as IOError {
                        v4Refused = error.code == .connectionRefused
                    }
                    try await listener.close()
                } else {
                    v4Refused = true   // nothing to check without IPv6
                }
                let server = try await loop.serve(host: "", port: 0) { stream in try await stream.writeAll([1]) }
                let everyInterface = server.localAddresses.map { $0.withPort(0).description }
                var reached = 0
                for host in Capabilities.ipv6 ? ["127.0.0.1", "::1"] : ["127.0.0.1"] {
                    let client = try await SocketStream.connect(host: host, port: server.localAddress.port!)
                    reached += try await client.readExactly(1).count
                    try await client.close()
                }
                server.close()
                await server.waitClosed()
                return (bindError, connectError, v4Refused, everyInterface, reached)
            }
            #expect(everyInterface == (Capabilities.ipv6 ? ["0.0.0.0:0", "[::]:0"] : ["0.0.0.0:0"]))
            #expect(reached == (Capabilities.ipv6 ? 2 : 1), "IPv4 and IPv6 clients both served")
            for error in [bindError, connectError] {
                #expect(error?.code == .nameResolution)
                #expect(error?.description.contains("use 0.0.0.0 (IPv4) or :: (IPv6)") == true, "\(String(describing: error))")
            }
            #expect(v4Refused, "IPV6_V6ONLY: an IPv4 client does not reach a listener on ::")
        }
    }
}

/// A usable link-local IPv6 address and its interface, from /proc/net/if_inet6.
func linkLocalAddress() -> (String, String)? {
    guard let file = fopen("/proc/net/if_inet6", "r") else { return nil }
    defer { fclose(file) }
    var line = [CChar](repeating: 0, count: 256)
    while fgets(&line, Int32(line.count), file) != nil {
        let fields = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            .split(whereSeparator: { $0 == " " || $0 == "\n" })
        // address, index, prefix length, scope (0x20: link), flags (0x40: tentative), name
        guard fields.count == 6, fields[3] == "20", let flags = Int(fields[4], radix: 16), flags & 0x40 == 0 else { continue }
        let hex = Array(fields[0])
        let groups = stride(from: 0, to: 32, by: 4).map { String(hex[$0..<$0 + 4]) }
        return (groups.joined(separator: ":"), String(fields[5]))
    }
    return nil
}
