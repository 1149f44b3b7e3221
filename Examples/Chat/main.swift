import ArgumentParser
import Glibc
import RingLoop

// A line-based chat server: each line a client sends goes, unchanged, to
// every other connected client. A last line that a client ends without "\n"
// before it closes is passed on with one, so that it does not run into the
// next line its readers get.
//
//   swift run -c release Chat --port 7100 [--backend auto|uring|epoll]
//
// On SIGTERM or SIGINT it stops accepting, sends "server closing" to every
// client, closes them and exits with status 0.
//
// Lines are limited to 64 KiB (asyncio's default stream limit): a client that
// sends a longer one is told so and disconnected. A client more than 1 MiB
// behind on its lines is cut off.
//
// Built on serve (a task per connection), the stream's lines (as bytes:
// byteLines) and addSignalHandler.

struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "Chat",
        abstract: "A line-based chat server: each line a client sends goes to every other client."
    )

    @Option(help: "The port to listen on, on every interface (0: any free port).")
    var port: Int
    @Option(help: "auto, uring or epoll (default: RINGLOOP_BACKEND, else auto).")
    var backend: Backend?

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
    }
}

extension Backend: ExpressibleByArgument {}

/// Writes a line straight to a descriptor, unbuffered: a script waiting for
/// "listening" sees it at once.
func say(_ line: String, to fd: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

let options = Options.parseOrExit()
// Thousands of connections need more descriptors than the 1,024 most
// shells allow; the hard limit is usually far higher (Go's runtime raises
// the soft limit to it at start, too).
do { try DescriptorLimit.raiseToMaximum() } catch { say("note: \(error)", to: 2) }
let port = options.port
let backend = options.backend

/// One connected client: its stream, and the lines on their way to it.
///
/// A task per client writes its lines in order. Lines queue here without
/// waiting, so a client that reads slowly holds up nobody else; one that
/// falls more than `maxBacklog` bytes behind is cut off, as Redis does with
/// its pub/sub clients, instead of letting the server's memory grow without
/// bound.
final class Member: @unchecked Sendable {
    static let maxBacklog = 1 << 20
    let stream: SocketStream
    private let outbox: AsyncStream<[UInt8]>.Continuation
    /// Bytes in the outbox, not yet handed to the stream.
    private var waiting = 0
    private(set) var writer: LoopTask<Void>?

    init(_ stream: SocketStream, on loop: EventLoop) {
        self.stream = stream
        let (lines, outbox) = AsyncStream.makeStream(of: [UInt8].self)
        self.outbox = outbox
        writer = loop.spawn { [self] in
            for await line in lines {
                waiting -= line.count
                do { try await stream.writeAll(line) } catch { break }
            }
            try? await stream.close()
        }
    }

    /// Queues `line`, or cuts the client off if it is too far behind.
    func send(_ line: [UInt8]) {
        guard waiting + stream.writeBufferSize + line.count <= Self.maxBacklog else {
            stream.abort()   // its reading task ends with `.closed`
            return
        }
        waiting += line.count
        outbox.yield(line)
    }

    /// No more lines: the writer sends what is queued, then closes the stream.
    func finish() { outbox.finish() }
}

/// The connected clients, by identity. Touched only on the loop's thread.
final class Room: @unchecked Sendable {
    var members: [ObjectIdentifier: Member] = [:]

    func broadcast(_ line: [UInt8], from sender: ObjectIdentifier) {
        for (id, member) in members where id != sender { member.send(line) }
    }
}

do {
    try EventLoop.run(backend: backend) {
        let loop = try EventLoop.running()
        let room = Room()
        let server = try await loop.serve(host: "", port: port) { stream in
            let id = ObjectIdentifier(stream)
            let member = Member(stream, on: loop)
            room.members[id] = member
            defer {
                room.members[id] = nil
                member.finish()
            }
            do {
                // The lines as bytes: a line that is not UTF-8 passes on
                // unchanged too (`lines` would repair it into a String).
                for try await line in stream.byteLines {
                    room.broadcast(line + [0x0A], from: id)
                }
            } catch let error as IOError where error.code == .closed {
                // Closed by the shutdown below, or cut off for falling behind.
            } catch let error as LimitOverrunError {
                room.members[id] = nil
                // Said straight away, not through the outbox. Then EOF, and
                // what the client still sends is dropped until it closes
                // (for 1 s at most): a client still sending would otherwise
                // read a reset instead of the reason.
                try? await withTimeout(.seconds(1)) {
                    try await stream.writeAll(Array("line too long: the limit is \(error.limit) bytes\n".utf8))
                }
                _ = try? await stream.shutdownAndDrain(within: .seconds(1))
            }
        }
        for signal in [SIGTERM, SIGINT] {
            try loop.addSignalHandler(signal) { server.close() }
        }
        say("Chat listening on \(server.localAddresses.map(\.description).joined(separator: " and ")) with the \(loop.backend) backend")

        try await server.serveForever()   // returns once a signal closed the server
        // Each client gets what it was sent, then the goodbye, then the close.
        // A client that has stopped reading would hold its writer forever, so
        // after 1.5 s whatever is left is cut off.
        let members = Array(room.members.values)
        let goodbye = Array("server closing\n".utf8)
        for member in members {
            member.send(goodbye)
            member.finish()
        }
        do {
            try await withTimeout(.milliseconds(1500)) {
                for member in members { _ = await member.writer?.result }
            }
        } catch {
            for member in members { member.stream.abort() }
        }
        await server.waitClosed(deadline: .milliseconds(300))
    }
} catch {
    say("Chat: \(error)", to: 2)
    exit(1)
}
