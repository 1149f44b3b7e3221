import Glibc
import RingLoop

// Test helper (MainActorTests): the main actor, used from a loop that runs on
// the main thread, as top-level code does. Prints one line per check; a hang
// is the failure this guards against, and the test's time limit catches it.

let mainThread = pthread_self()
var counter = 0            // top-level code: isolated to the main actor
var queuedEarly = false

/// Main-actor code using the loop's I/O directly: it runs on the loop thread.
@MainActor func readOnMainActor() async throws -> Int {
    try await EventLoop.sleep(for: .milliseconds(2))
    let file = try await File.open("/proc/self/stat")
    let count = try await file.read(into: IOBuffer(capacity: 16), at: 0)
    try await file.close()
    return count
}

/// A read that waits with a timeout of zero, from main-actor code in a loop
/// task: its wait is recorded a step late, after the timer has fired.
@MainActor func readTimingOut(_ stream: SocketStream) async -> String {
    do {
        _ = try await stream.read(into: IOBuffer(capacity: 8), timeout: .zero)
        return "returned"
    } catch let error as IOError where error.code == .timedOut {
        return "timed out"
    } catch {
        return "\(error)"
    }
}

// Queued on the main queue before any loop runs: the loop must serve it.
Task { @MainActor in queuedEarly = true }

try EventLoop.run {
    let loop = try EventLoop.running()
    print("backend \(loop.backend)")
    await MainActor.run { counter += 1 }
    print("global \(await counter)")
    print("main thread \(await MainActor.run { pthread_self() == mainThread })")
    print("main-actor read \(try await readOnMainActor())")
    print("task value \(await Task { @MainActor in counter * 10 }.value)")
    for _ in 0..<1_000 { await MainActor.run { counter += 1 } }
    print("hops \(await counter)")
    print("queued before the loop \(await queuedEarly)")
    let server = try await loop.serve(host: "127.0.0.1", port: 0) { @MainActor stream in
        // A handler isolated to the main actor, reading and writing.
        let line = try await stream.readLine() ?? "nothing"
        try await stream.writeAll(Array("main actor saw \(line)\n".utf8))
        for try await line in stream.lines {
            try await stream.writeAll(Array("main actor iterated \(line)\n".utf8))
        }
    }
    let client = try await SocketStream.connect(host: "127.0.0.1", port: server.localAddress.port!)
    print("zero timeout \(await readTimingOut(client))")
    try await client.writeAll(Array("ping\n".utf8))
    // Request and reply, one at a time: the handler's reads wait each time,
    // and its task prefers the loop, so each wait is recorded a step after
    // the handler looked (the switch back to the main actor goes round the
    // main queue); a line that lands in between must still wake it.
    var answered = 0
    for round in 0..<300 {
        if round > 0 { try await client.writeAll(Array("r\(round)\n".utf8)) }
        let reply = try await withTimeout(.seconds(5)) { try await client.readLine() }
        if reply == (round == 0 ? "main actor saw ping" : "main actor iterated r\(round)") { answered += 1 }
    }
    print("request and reply \(answered)")
    try await client.writeAll(Array("one\ntwo\n".utf8))
    try await client.shutdown(.write)
    // A main-actor task without the loop as its preference (a plain
    // `Task { }`): its waits must still run on the loop thread. A wait's
    // cancellation handler used to run its body on Swift's global pool (a
    // race with the loop; this read hung one run in four when the EOF came
    // in between), and for-await must keep the task's isolation
    // (`next(isolation:)`) or the read is refused off the loop thread.
    let replies = try await Task { @MainActor in
        try await EventLoop.sleep(for: .milliseconds(1))
        let file = try await File.open("/proc/self/stat")
        let count = try await file.read(into: IOBuffer(capacity: 16), at: 0)
        try await file.close()
        var replies: [String] = count == 16 ? [] : ["the file read \(count) bytes"]
        for try await line in client.lines { replies.append(line) }
        return replies
    }.value
    for line in replies { print("handler \(line)") }
    try await client.close()
    server.close()
    await server.waitClosed()
}
// A second loop on the main thread serves the main actor too.
let again = try EventLoop.run { await MainActor.run { counter } }
print("second loop \(again)")
// A loop dropped without close(): its deinit closes it, bridge included.
do {
    let loop = try EventLoop()
    let value = try loop.runUntilComplete { await MainActor.run { counter + 1 } }
    print("unclosed loop \(value)")
}
print("dropped")
