import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// `SocketStream.sendFile`: splice or sendfile(2) on io_uring, sendfile(2)
    /// on epoll; whole, cold, cancelled and reset transfers.
    @Suite("sendFile", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct SendFileTests {
        @Test("sendFile: 64 MiB after queued bytes, checked byte for byte", arguments: allBackends)
        func sendFile(backend: Backend) async throws {
            let path = temporaryPath("sendfile")
            let content = pattern(64 << 20, seed: 5)
            defer { unlink(path) }
            let (sent, received) = try await onLoop(backend) { loop -> (Int, [UInt8]) in
                try await writeFile(path, content)
                let (client, server, close) = try await connectedPair()
                let reader = loop.spawn { try await client.readExactly(5 + content.count - 1_000) }
                let file = try await File.open(path)
                try await server.writeAll(Array("head:".utf8))   // queued bytes go first
                let sent = try await server.sendFile(file, offset: 1_000, count: content.count)
                try await file.close()
                let received = try await reader.value
                try await close()
                return (sent, received)
            }
            #expect(sent == content.count - 1_000, "the file ended before count")
            #expect(received.prefix(5) == ArraySlice("head:".utf8))
            // memcmp: an element-wise compare of 64 MiB takes seconds in a debug build.
            let same = received.count == content.count - 995 && received.withUnsafeBytes { got in
                content.withUnsafeBytes { memcmp(got.baseAddress! + 5, $0.baseAddress! + 1_000, content.count - 1_000) == 0 }
            }
            #expect(same, "every byte of the file arrived, in order")
        }

        @Test("sendFile of a file not in the page cache arrives whole; the loop keeps running timers meanwhile", arguments: allBackends)
        func sendColdFile(backend: Backend) async throws {
            let path = temporaryPath("sendfile-cold")
            let content = pattern(8 << 20, seed: 9)
            defer { unlink(path) }
            let (sent, received, ticks) = try await onLoop(backend) { loop -> (Int, [UInt8], Int) in
                try await writeFile(path, content)
                let file = try await File.open(path)
                _ = dropCachedPages(file.fileDescriptor, offset: 0, length: content.count)
                let (client, server, close) = try await connectedPair()
                let reader = loop.spawn { try await client.readExactly(content.count) }
                // A ticker on the same loop: it must get turns while the file is sent.
                let ticker = loop.spawn { () -> Int in
                    var ticks = 0
                    while !Task.isCancelled {
                        try? await loop.sleep(for: .milliseconds(1))
                        ticks += 1
                    }
                    return ticks
                }
                let sent = try await server.sendFile(file, count: content.count)
                let received = try await reader.value
                ticker.cancel()
                let ticks = try await ticker.value
                try await file.close()
                try await close()
                return (sent, received, ticks)
            }
            #expect(sent == content.count)
            #expect(received == content)
            #expect(ticks > 0, "the loop ran the ticker while the file was sent")
        }

        @Test("writes started while sendFile waits for room land after the file's bytes, never inside them", arguments: allBackends)
        func writesWaitForSendFile(backend: Backend) async throws {
            let path = temporaryPath("sendfile-turn")
            let content = pattern(8 << 20, seed: 13)
            defer { unlink(path) }
            let (sent, received) = try await onLoop(backend) { loop -> (Int, [UInt8]) in
                try await writeFile(path, content)
                let file = try await File.open(path)
                let (client, server, close) = try await connectedPair()
                let sender = loop.spawn { try await server.sendFile(file, count: content.count) }
                // The peer is not reading yet: the socket fills and sendFile waits for room.
                try await loop.sleep(for: .milliseconds(50))
                let writers = [
                    loop.spawn { try await server.writeAll(Array("small".utf8)) },
                    loop.spawn { try await server.writeAll(pattern(3 << 20, seed: 14)) },
                ]
                let received = try await client.readExactly(content.count + 5 + (3 << 20))
                let sent = try await sender.value
                for writer in writers { try await writer.value }
                try await file.close()
                try await close()
                return (sent, received)
            }
            #expect(sent == content.count)
            let fileFirst = received.count == content.count + 5 + (3 << 20) && received.withUnsafeBytes { got in
                content.withUnsafeBytes { memcmp(got.baseAddress!, $0.baseAddress!, content.count) == 0 }
            }
            #expect(fileFirst, "the file's bytes arrived whole, before the writes started during it")
            let rest = received.dropFirst(content.count)
            #expect(rest.prefix(5).elementsEqual("small".utf8) || rest.suffix(5).elementsEqual("small".utf8))
        }

        @Test("sendFile cancelled while the peer does not read: CancellationError, the connection aborted, nothing leaked",
              arguments: allBackends)
        func sendFileCancelled(backend: Backend) async throws {
            let path = temporaryPath("sendfile-cancel")
            let content = pattern(32 << 20, seed: 11)
            defer { unlink(path) }
            let (outcome, peerSaw) = try await onLoop(backend) { loop -> (String, Int) in
                try await writeFile(path, content)
                let file = try await File.open(path)
                let (client, server, close) = try await connectedPair()
                let sender = loop.spawn { () -> String in
                    do {
                        _ = try await server.sendFile(file, count: content.count)
                        return "finished"
                    } catch is CancellationError {
                        return "cancelled"
                    } catch {
                        return "\(error)"
                    }
                }
                try await loop.sleep(for: .milliseconds(50))   // the socket buffers fill; the sender waits
                sender.cancel()
                let outcome = try await sender.value
                // The peer reads what was sent, then sees the abort (reset or end).
                var seen = 0
                let buffer = try IOBuffer(capacity: 1 << 20)
                while true {
                    do {
                        let n = try await client.read(into: buffer)
                        if n == 0 { break }
                        seen += n
                    } catch { break }
                }
                try await file.close()
                try await close()
                return (outcome, seen)
            }
            #expect(outcome == "cancelled")
            #expect(peerSaw > 0 && peerSaw < content.count, "some bytes went before the cancel, not all")
        }

        @Test("sendFile to a peer that resets mid-transfer throws the reset (or broken pipe), not a closed descriptor",
              arguments: allBackends)
        func sendFilePeerReset(backend: Backend) async throws {
            let path = temporaryPath("sendfile-reset")
            let content = pattern(32 << 20, seed: 12)
            defer { unlink(path) }
            let code = try await onLoop(backend) { loop -> IOError.Code? in
                try await writeFile(path, content)
                let file = try await File.open(path)
                let (client, server, close) = try await connectedPair()
                let sender = loop.spawn { () -> IOError.Code? in
                    do {
                        _ = try await server.sendFile(file, count: content.count)
                        return nil
                    } catch let error as IOError {
                        return error.code
                    }
                }
                _ = try await client.read(upTo: 1 << 16)   // the transfer is under way
                try client.setLinger(seconds: 0)
                client.abort()                             // RST, with the rest unread
                let code = try await sender.value
                try await file.close()
                // The server stream's close may report the reset once more (the
                // receive side saw it too); a second close finds nothing left.
                do { try await close() } catch let error as IOError where error.code == .connectionReset { try await close() }
                return code
            }
            #expect(code == .connectionReset || code == .brokenPipe, "\(String(describing: code))")
        }
    }
}
