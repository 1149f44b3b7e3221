import Glibc
@testable import RingLoop
import Testing

extension AllSuites {
    /// Stream writes: waiting for room, chunking of large writes, writes from
    /// several tasks at once, and closing or aborting while a write waits.
    @Suite("Stream writes", .serialized, .checksResources, .timeLimit(.minutes(2)))
    struct StreamWriteTests {
        @Test("sends that find the socket full wait for room; what follows them never overtakes them", arguments: allBackends)
        func sendsWaitForRoom(backend: Backend) async throws {
            let (sentInOrder, received) = try await onLoop(backend) { loop -> (Bool, [UInt8]) in
                let (stream, peer, closePair) = try await connectedPair()
                // 8 MiB is far more than loopback's socket buffers hold, so with the peer
                // not reading yet, the first sends succeed at once and the rest must wait.
                let first = pattern(8 << 20, seed: 7), second = pattern(1000, seed: 8)
                let writer = loop.spawn {
                    try await stream.writeAll(first)
                    try await stream.writeAll(second)
                    try await stream.shutdown(.write)
                }
                try await loop.sleep(for: .milliseconds(100))
                var received: [UInt8] = []
                let buffer = try IOBuffer(capacity: 256 * 1024)
                while try await peer.read(into: buffer) > 0 { received += buffer.bytes }
                try await writer.value
                try await closePair()
                return (received == first + second, Array(received.prefix(16)))
            }
            #expect(sentInOrder)
            #expect(received == Array(pattern(16, seed: 7)))
        }

        @Test("a large write is queued a chunk at a time: the send queue never holds a second copy of it, and the bytes arrive in order",
              arguments: allBackends)
        func largeWritesAreChunked(backend: Backend) async throws {
            let results = try await onLoop(backend) { loop -> [(String, Bool, Int)] in
                let (stream, peer, closePair) = try await connectedPair()
                let body = pattern(8 << 20, seed: 11), header = pattern(300, seed: 12)
                let writes: [(String, @Sendable () async throws -> Void)] = [
                    ("array", { try await stream.writeAll(body) }),
                    ("IOBuffer", { try await stream.writeAll(IOBuffer(body)) }),
                    ("contentsOf", { try await stream.write(contentsOf: [IOBuffer(header), IOBuffer(body)]) }),
                ]
                var results: [(String, Bool, Int)] = []
                for (name, write) in writes {
                    let expected = name == "contentsOf" ? header + body : body
                    let writer = loop.spawn { try await write() }
                    var received: [UInt8] = []
                    var mostQueued = 0
                    let buffer = try IOBuffer(capacity: 256 * 1024)
                    while received.count < expected.count {
                        let n = try await peer.read(into: buffer)
                        if n == 0 { break }
                        received += buffer.bytes
                        mostQueued = max(mostQueued, stream.writeBufferSize)
                    }
                    try await writer.value
                    results.append((name, received == expected, mostQueued))
                }
                try await closePair()
                return results
            }
            #expect(results.count == 3)
            for (name, inOrder, mostQueued) in results {
                #expect(inOrder, "\(name): the bytes arrive whole and in order")
                // One chunk (1 MiB) plus the high-water mark (64 KiB) at
                // most; a whole-payload copy shows about 8 MiB here.
                #expect(mostQueued <= (1 << 20) + 64 * 1024, "\(name): \(mostQueued) bytes queued")
            }
        }

        @Test("concurrent writes never interleave, whether or not they are queued a chunk at a time", arguments: allBackends)
        func concurrentLargeWritesStayWhole(backend: Backend) async throws {
            let (received, messages) = try await onLoop(backend) { loop -> ([UInt8], [[UInt8]]) in
                let (stream, peer, closePair) = try await connectedPair()
                // Two writes of several chunks each, in both APIs, and small
                // ones started while they are under way.
                let messages = [pattern(3 << 20, seed: 21), pattern(5 << 19, seed: 22), pattern(5000, seed: 23), pattern(7, seed: 24)]
                let writers = [
                    loop.spawn { try await stream.writeAll(messages[0]) },
                    loop.spawn { try await stream.write(contentsOf: [IOBuffer(Array(messages[1].prefix(100))), IOBuffer(Array(messages[1].dropFirst(100)))]) },
                    loop.spawn { try await stream.writeAll(IOBuffer(messages[2])) },
                    loop.spawn { try await stream.writeAll(messages[3]) },
                ]
                let total = messages.reduce(0) { $0 + $1.count }
                var received: [UInt8] = []
                let buffer = try IOBuffer(capacity: 256 * 1024)
                while received.count < total {
                    let n = try await peer.read(into: buffer)
                    if n == 0 { break }
                    received += buffer.bytes
                }
                for writer in writers { try await writer.value }
                try await closePair()
                return (received, messages)
            }
            // Each message must appear whole, at some position, with the
            // others before or after it.
            var rest = received[...]
            var order: [Int] = []
            while !rest.isEmpty, let index = messages.indices.first(where: { !order.contains($0) && rest.starts(with: messages[$0]) }) {
                order.append(index)
                rest = rest.dropFirst(messages[index].count)
            }
            #expect(rest.isEmpty && order.count == messages.count, "the messages interleaved; whole ones in order: \(order)")
        }

        @Test("a task writing large payloads back to back does not starve another task's small write", arguments: allBackends)
        func largeWritesDoNotStarveOthers(backend: Backend) async throws {
            let (received, big, small) = try await onLoop(backend) { loop -> ([UInt8], [[UInt8]], [UInt8]) in
                let (stream, peer, closePair) = try await connectedPair()
                // Small fixed socket buffers: with the kernel's autotuning a
                // send buffer can grow to 4 MiB and take a whole 2 MiB message
                // before the peer reads, and the small write would then
                // rightly go after the second one.
                try stream.setOption(level: SOL_SOCKET, name: SO_SNDBUF, value: 64 << 10)
                try peer.setOption(level: SOL_SOCKET, name: SO_RCVBUF, value: 64 << 10)
                let big = (0..<4).map { pattern(2 << 20, seed: 40 + UInt64($0)) }
                let small = pattern(100, seed: 50)
                let writer = loop.spawn { for message in big { try await stream.writeAll(message) } }
                // The peer does not read yet: the first large write is part-way.
                try await waitUntil(loop) { stream.writeBufferSize > 0 }
                let other = loop.spawn { try await stream.writeAll(small) }
                let received = try await peer.readExactly(4 * (2 << 20) + small.count)
                try await writer.value
                try await other.value
                try await closePair()
                return (received, big, small)
            }
            // The small write goes right after the large one it waited for,
            // not after all four. (Compared as a Bool: a failed #expect on
            // arrays of megabytes prints every byte.)
            var expected = big[0] + small
            for message in big.dropFirst() { expected += message }
            let inPlace = received == expected
            if !inPlace {
                let at = (0...max(0, received.count - small.count)).first { received[$0...].starts(with: small) }
                Issue.record("the small write is at byte \(at.map(String.init) ?? "nowhere") of \(received.count), expected at \(big[0].count)")
            }
        }

        @Test("close() or shutdown(.write) during another task's multi-chunk write sends all of it first", arguments: allBackends)
        func closeDuringChunkedWrite(backend: Backend) async throws {
            let results = try await onLoop(backend) { loop -> [(String, Bool, Bool, Bool)] in
                var results: [(String, Bool, Bool, Bool)] = []
                for closing in ["close", "shutdown"] {
                    let (stream, peer, closePair) = try await connectedPair()
                    // More than loopback's socket buffers hold, in 1 MiB chunks.
                    let message = pattern(16 << 20, seed: 31)
                    let finished = Flag()
                    let writer = loop.spawn {
                        try await stream.writeAll(message)
                        finished.set()
                    }
                    // The peer does not read yet: the write is part-way, waiting for room.
                    try await waitUntil(loop) { stream.writeBufferSize > 0 }
                    try await loop.sleep(for: .milliseconds(20))
                    let underWay = !finished.isSet
                    let closer = loop.spawn {
                        if closing == "close" { try await stream.close() } else { try await stream.shutdown(.write) }
                    }
                    let received = try await peer.readToEnd()
                    let wroteWhole = (try? await writer.value) != nil
                    try await closer.value
                    results.append((closing, underWay, received == message, wroteWhole))
                    try await closePair()
                }
                return results
            }
            for (closing, underWay, whole, wroteWhole) in results {
                #expect(underWay, "\(closing): the write was still under way when the close began")
                #expect(whole, "\(closing): the peer got the whole write, then the end")
                #expect(wroteWhole, "\(closing): the write returned normally")
            }
            #expect(results.count == 2)
        }

        @Test("abort() against a peer that does not read: the waiting write and read fail, close returns at once, the peer sees the end", arguments: allBackends)
        func abortStream(backend: Backend) async throws {
            let (writeError, readError, peerSaw) = try await onLoop(backend) { loop -> (IOError.Code?, IOError.Code?, Int) in
                let (stream, peer, closePair) = try await connectedPair()
                // Far more than the socket buffers hold: the write waits for room.
                let writer = loop.spawn { try await stream.writeAll(pattern(8 << 20, seed: 3)) }
                let reader = loop.spawn { try await stream.read(upTo: 100) }
                try await loop.sleep(for: .milliseconds(50))
                #expect(stream.writeBufferSize > 0, "the write is waiting on a full queue")
                stream.abort()
                stream.abort()   // idempotent
                let writeError = ioErrorCode(await writer.result)
                let readError = ioErrorCode(await reader.result)
                // The queue is dropped, so close does not wait for the peer to read.
                try await withTimeout(.seconds(2)) { try await stream.close() }
                #expect(stream.fileDescriptor < 0)
                // The peer reads what arrived before the abort, then the end.
                var total = 0
                do {
                    while true {
                        let chunk = try await peer.read(upTo: 1 << 20)
                        if chunk.isEmpty { break }
                        total += chunk.count
                    }
                } catch let error as IOError where error.code == .connectionReset {}
                try await closePair()
                return (writeError, readError, total)
            }
            #expect(writeError == .closed)
            #expect(readError == .closed)
            #expect(peerSaw < 8 << 20, "the unsent part was dropped")
        }
    }
}
