import Glibc
@testable import RingLoop
import Synchronization
import Testing

/// The outcome of awaiting a task that was cancelled while it waited.
private func outcome<T>(_ task: LoopTask<T>) async -> String {
    do {
        _ = try await task.value
        return "returned"
    } catch is CancellationError {
        return "cancelled"
    } catch {
        return "\(error)"
    }
}

extension AllSuites {
    /// A task the loop spawned has one cancellation handler for its life,
    /// and its waits record themselves on it (CancellationRoute); any other
    /// task's waits install their own. Both must end every wait on cancel.
    @Suite("Cancellation routes", .serialized, .checksResources, .timeLimit(.minutes(1)))
    struct CancellationRouteTests {
        @Test("a spawned task's read, drain, accept and connect waits end through its route when it is cancelled",
              arguments: allBackends)
        func spawnedWaitsUseTheRoute(backend: Backend) async throws {
            let (outcomes, routed) = try await onLoop(backend) { loop -> ([String], [String: Int]) in
                let listener = try await SocketListener.bind(host: "127.0.0.1", port: 0)
                let client = try await SocketStream.connect(host: "127.0.0.1", port: listener.localAddress.port!)
                let server = try await listener.accept()
                let (blackholed, cleanup) = try blackholedPort()
                defer { cleanup() }
                let big = [UInt8](repeating: 3, count: 16 << 20)
                let waits: [(String, @Sendable () async throws -> Void)] = [
                    ("read", { _ = try await client.read(upTo: 16) }),
                    ("drain", { try await server.writeAll(big) }),   // the client does not read
                    ("accept", { _ = try await listener.accept() }),
                    ("connect", { _ = try await SocketStream.connect(host: "127.0.0.1", port: blackholed) }),
                ]
                var outcomes: [String] = []
                var routed: [String: Int] = [:]
                for (name, wait) in waits {
                    let before = loop.routedWaits
                    let task = loop.spawn(name: name) { try await wait() }
                    // Armed means parked: the wait records itself just before it suspends.
                    try await waitUntil(loop) { loop.routedWaits > before }
                    routed[name] = loop.routedWaits - before
                    task.cancel()
                    outcomes.append("\(name): \(await outcome(task))")
                }
                try await client.close(); try await server.close(); try await listener.close()
                return (outcomes, routed)
            }
            #expect(outcomes == ["read: cancelled", "drain: cancelled", "accept: cancelled", "connect: cancelled"])
            // One routed wait each; a drain may have parked, resumed as the
            // kernel took some of its bytes, and parked again within the
            // millisecond between two checks.
            #expect(routed["read"] == 1 && routed["accept"] == 1 && routed["connect"] == 1, "\(routed)")
            #expect((routed["drain"] ?? 0) >= 1, "\(routed)")
        }

        @Test("a child task and a Task(executorPreference:) inside a spawned task are cancelled on their own, through their own handler",
              arguments: allBackends)
        func otherTasksKeepTheirOwnHandler(backend: Backend) async throws {
            let (results, routed) = try await onLoop(backend) { loop -> ([String], Int) in
                let (client, server, closePair) = try await connectedPair()
                let before = loop.routedWaits
                var results: [String] = []

                // Not spawned: the loop is its preference, but it has no route.
                let preferred = Task(executorPreference: loop) { try await client.read(upTo: 16) }
                try await loop.sleep(for: .milliseconds(20))
                preferred.cancel()
                do { _ = try await preferred.value; results.append("preferred returned") } catch is CancellationError { results.append("preferred cancelled") }

                // A child of this spawned task: cancelled alone, its parent not.
                let child: String = try await withThrowingTaskGroup(of: String.self) { group in
                    group.addTask {
                        do { _ = try await client.read(upTo: 16); return "child returned" } catch is CancellationError { return "child cancelled" }
                    }
                    try await loop.sleep(for: .milliseconds(20))
                    group.cancelAll()
                    return try await group.next() ?? "no child"
                }
                results.append(child)
                let routed = loop.routedWaits - before

                // The parent was not cancelled: it still reads, through its route.
                results.append(Task.isCancelled ? "parent cancelled" : "parent running")
                try await server.writeAll(Array("still".utf8))
                results.append(String(decoding: try await client.read(upTo: 16), as: UTF8.self))
                try await closePair()
                return (results, routed)
            }
            #expect(results == ["preferred cancelled", "child cancelled", "parent running", "still"])
            #expect(routed == 0, "a wait of a task that is not the spawned one took its route")
        }

        @Test("a spawned task waiting inside a method of an actor on the loop is cancelled; the actor stays isolated",
              arguments: allBackends)
        func waitInsideAnActor(backend: Backend) async throws {
            let (result, count) = try await onLoop(backend) { loop -> (String, Int) in
                let (client, server, closePair) = try await connectedPair()
                let actor = ReadingActor(loop: loop)
                // The read runs as the actor's job, isolated to the loop's serial executor.
                let task = loop.spawn { try await actor.read(client) }
                try await loop.sleep(for: .milliseconds(20))
                task.cancel()
                let result = await outcome(task)
                // The actor still works, and the stream too.
                try await server.writeAll(Array("ok".utf8))
                _ = try await actor.read(client)
                let count = await actor.reads
                try await closePair()
                return (result, count)
            }
            #expect(result == "cancelled")
            #expect(count == 1)
        }

        @Test("a default actor's method that waits on a stream is isolated again after the wait, and its state stays exact",
              arguments: allBackends)
        func defaultActorGetsItsIsolationBack(backend: Backend) async throws {
            let (read, total, cancelled) = try await onLoop(backend) { loop -> ([UInt8], Int, String) in
                let (client, server, closePair) = try await connectedPair()
                // An idle default actor entered from a loop task runs its job
                // on the loop (the task's executor preference), so its stream
                // read is legal. (One already running on another thread would
                // run the read there, which RingLoop refuses as wrong-thread.)
                let tally = Tally()
                let reader = loop.spawn { try await tally.readAndCount(client) }
                try await tally.waitUntilReading(loop)
                // While the read waits, tasks on the global executor's threads
                // go through the actor; the reply races them back in.
                let bumps = (0..<200).map { _ in Task.detached { await tally.bump() } }
                try await server.writeAll(Array("hello".utf8))
                let read = try await reader.value
                for bump in bumps { await bump.value }
                let total = await tally.total
                // A wait in a default actor's method is not on the task's
                // route (the actor's job is not the task's own): its own
                // handler ends it.
                let quiet = Tally()
                let waiting = loop.spawn { try await quiet.readAndCount(client) }
                try await quiet.waitUntilReading(loop)
                waiting.cancel()
                let cancelled = await outcome(waiting)
                try await closePair()
                return (read, total, cancelled)
            }
            #expect(read == Array("hello".utf8))
            #expect(total == 200 + 5 * 1_000)
            #expect(cancelled == "cancelled")
        }

        @Test("a stream read resumed while another thread holds its default actor comes back to the loop before touching its queue",
              arguments: allBackends)
        func readResumedOnBusyActor(backend: Backend) async throws {
            let (read, returns) = try await onLoop(backend) { loop -> ([UInt8], Int) in
                let (client, server, closePair) = try await connectedPair()
                let tally = Tally()
                let reader = loop.spawn { try await tally.readAndCount(client) }
                try await tally.waitUntilReading(loop)
                // A thread of the global executor takes the idle actor and
                // keeps it for 100 ms; the reply comes meanwhile, so the read
                // resumes on that thread once the hold ends.
                let holding = HoldFlag()
                let hold = Task.detached { await tally.hold(holding, milliseconds: 100) }
                try await waitUntil(loop) { holding.isSet.load(ordering: .acquiring) }
                let before = loop.loopReturns
                try await server.writeAll(Array("busy".utf8))
                let read = try await reader.value
                await hold.value
                let returns = loop.loopReturns - before
                try await closePair()
                return (read, returns)
            }
            #expect(read == Array("busy".utf8))
            #expect(returns >= 1, "the read's tail went through the loop to get back to its thread")
        }
    }
}

/// Set by ``Tally/hold(_:milliseconds:)`` once it has the actor.
private final class HoldFlag: Sendable {
    let isSet = Atomic<Bool>(false)
}

/// An actor whose executor is the loop, reading a stream in its methods.
private actor ReadingActor {
    let loop: EventLoop
    var reads = 0
    init(loop: EventLoop) { self.loop = loop }
    nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }

    func read(_ stream: SocketStream) async throws -> [UInt8] {
        let bytes = try await stream.read(upTo: 16)
        reads += 1
        return bytes
    }
}

/// A plain actor (the runtime's default executor) that does stream I/O in a
/// method: after the wait it must hold its isolation again, which
/// `preconditionIsolated` checks (it traps otherwise) and the exact total
/// confirms.
private actor Tally {
    var total = 0
    var reading = false

    func bump() { total += 1 }

    /// Keeps the actor (and the thread running it) busy for `milliseconds`.
    func hold(_ holding: HoldFlag, milliseconds: UInt32) {
        holding.isSet.store(true, ordering: .releasing)
        usleep(milliseconds * 1_000)
    }

    func readAndCount(_ stream: SocketStream) async throws -> [UInt8] {
        reading = true
        let bytes = try await stream.read(upTo: 16)
        preconditionIsolated("a stream wait returned to a default actor's method without its isolation")
        for _ in 0..<(bytes.count * 1_000) { total += 1 }
        return bytes
    }

    /// Returns once `readAndCount` has set `reading` and so, since this
    /// call needed the actor, is suspended in its read.
    nonisolated func waitUntilReading(_ loop: EventLoop) async throws {
        while await !reading { try await loop.sleep(for: .milliseconds(1)) }
    }
}
