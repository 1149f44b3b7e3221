import Glibc
@testable import RingLoop
import Synchronization
import Testing

extension AllSuites {
    @Suite("No hidden executor hops", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct HopTests {
        /// Nested nonisolated async calls that never suspend.
        static func level3(_ x: Int) async -> Int { x + 1 }
        static func level2(_ x: Int) async -> Int { await level3(x) + 1 }
        static func level1(_ x: Int) async -> Int { await level2(x) + 1 }

        @Test("a read that finds data queued runs no extra loop job; one that waits costs at most two", arguments: allBackends)
        func readJobs(backend: Backend) async throws {
            let (queuedJobs, waitingJobs, nestedJobs) = try await onLoop(backend) { loop -> (Int, Int, Int) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let peer = try await listener.accept()
                let buffer = try IOBuffer(capacity: 16)
                // Data already queued: the read must not suspend at all.
                try await peer.writeAll(Array("abcd".utf8))
                try await waitUntil(loop) { stream.state.inbound.count == 4 }
                var before = loop.jobsRun
                _ = try await stream.read(into: buffer)
                let queuedJobs = loop.jobsRun - before
                // No data: the read suspends once and is resumed once.
                let writer = loop.spawn {
                    try await loop.sleep(for: .milliseconds(5))
                    try await peer.writeAll(Array("efgh".utf8))
                }
                before = loop.jobsRun
                _ = try await stream.read(into: buffer)
                let waitingJobs = loop.jobsRun - before - 2  // the writer task's own two steps
                try await writer.value
                // A chain of nonisolated async calls costs no job at all.
                before = loop.jobsRun
                let value = await HopTests.level1(0)
                let nestedJobs = loop.jobsRun - before
                #expect(value == 3)
                try await stream.close()
                try await peer.close()
                try await listener.close()
                return (queuedJobs, waitingJobs, nestedJobs)
            }
            #expect(queuedJobs == 0)
            #expect(waitingJobs <= 2)
            #expect(nestedJobs == 0)
        }

        @Test("for-await from a loop task over lines, byteLines, a FileReader's lines and connections, with elements ready, runs no loop job",
              arguments: allBackends)
        func sequenceJobs(backend: Backend) async throws {
            let path = temporaryPath("hop-lines")
            defer { unlink(path) }
            let (jobs, elements) = try await onLoop(backend) { loop -> ([Int], [String]) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let port = listener.localAddress.port!
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: port)
                let peer = try await listener.accept()
                try await peer.writeAll(Array("a\nb\nc\nd\ne\nf\n".utf8))
                try await waitUntil(loop) { stream.state.inbound.count == 12 }
                try await writeFile(path, Array("x\ny\nz\n".utf8))
                let file = try await File.open(path)
                let reader = try FileReader(file)
                var elements = [try await reader.readLine() ?? "-"]  // reads the file into the reader
                let clients = [try await SocketStream.connect(host: "127.0.0.1", port: port),
                               try await SocketStream.connect(host: "127.0.0.1", port: port)]
                try await waitUntil(loop) { listener.pending.count == 2 }
                var jobs: [Int] = []
                var before = loop.jobsRun
                for try await line in stream.lines {
                    elements.append(line)
                    if elements.count == 4 { break }
                }
                jobs.append(loop.jobsRun - before)
                before = loop.jobsRun
                for try await line in stream.byteLines {
                    elements.append(String(decoding: line, as: UTF8.self))
                    if elements.count == 7 { break }
                }
                jobs.append(loop.jobsRun - before)
                before = loop.jobsRun
                for try await line in reader.lines {
                    elements.append(line)
                    if elements.count == 9 { break }
                }
                jobs.append(loop.jobsRun - before)
                before = loop.jobsRun
                var accepted: [SocketStream] = []
                for try await connection in listener.connections {
                    accepted.append(connection)
                    if accepted.count == 2 { break }
                }
                jobs.append(loop.jobsRun - before)
                for each in accepted + clients + [stream, peer] { try await each.close() }
                try await file.close()
                try await listener.close()
                return (jobs, elements)
            }
            #expect(elements == ["x", "a", "b", "c", "d", "e", "f", "y", "z"])
            #expect(jobs == [0, 0, 0, 0])
        }

        actor LoopActor {
            let loop: EventLoop
            var count = 0
            nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }
            init(loop: EventLoop) { self.loop = loop }
            func increment() -> (Int, Bool) {
                count += 1
                return (count, loop.isOnLoopThread)
            }
            /// I/O from inside the actor: the nonisolated(nonsending) API stays on it.
            func readFrom(_ stream: SocketStream) async throws -> [UInt8] {
                let bytes = try await stream.read(upTo: 16)
                count += 1
                return bytes
            }
            /// A timer and a read that waits, from inside the actor.
            func napThenRead(_ stream: SocketStream) async throws -> ([UInt8], Bool) {
                try await loop.sleep(for: .milliseconds(1))
                let bytes = try await stream.read(upTo: 16)
                count += 1
                return (bytes, loop.isOnLoopThread)
            }
        }

        @Test("an actor on the loop, tasks preferring the loop and Task.sleep stay isolated and on the loop thread",
              arguments: allBackends)
        func isolation(backend: Backend) async throws {
            let results = try await onLoop(backend) { loop -> [Bool] in
                let actor = LoopActor(loop: loop)
                let thread = pthread_self()
                var results: [Bool] = []
                let (count, onLoop) = await actor.increment()
                results.append(count == 1 && onLoop)
                let preferred = Task(executorPreference: loop) { () async -> Bool in
                    try? await Task.sleep(for: .milliseconds(2))
                    return pthread_equal(pthread_self(), thread) != 0
                }
                results.append(await preferred.value)
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let stream = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let peer = try await listener.accept()
                try await peer.writeAll(Array("actor".utf8))
                results.append(try await actor.readFrom(stream) == Array("actor".utf8))
                let (after, stillOnLoop) = await actor.increment()
                results.append(after == 3 && stillOnLoop)
                // Called from a task that does not prefer the loop: the actor's
                // waits (a timer, a read that waits for data) still run on the
                // loop thread. Their cancellation handler once ran the wait's
                // body on Swift's global pool (ThreadSanitizer: a race on the
                // timer heap and the stream's reader slot).
                let detached = Task.detached { try await actor.napThenRead(stream) }
                try await loop.sleep(for: .milliseconds(20))
                try await peer.writeAll(Array("later".utf8))
                results.append(try await detached.value == (Array("later".utf8), true))
                try await stream.close()
                try await peer.close()
                try await listener.close()
                return results
            }
            #expect(results == [true, true, true, true, true])
        }
    }
}
