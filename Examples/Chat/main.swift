import Glibc
import RingLoop

// A line-based chat server: each line a client sends goes, unchanged, to
// every other connected client.
//
//   swift run -c release Chat --port 7100 [--backend auto|uring|epoll]
//
// On SIGTERM or SIGINT it stops accepting, sends "server closing" to every
// client, closes them and exits with status 0.
//
// Built on serve (a task per connection), lines and addSignalHandler.

let usage = "usage: Chat --port PORT [--backend auto|uring|epoll]"

func fail(_ message: String) -> Never {
    say(message, to: 2)
    exit(64)
}

/// Writes a line straight to a descriptor, unbuffered: a script waiting for
/// "listening" sees it at once.
func say(_ line: String, to fd: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

var port: Int?
var backend: Backend?
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fail("\(flag) needs a value\n\(usage)") }
    switch flag {
    case "--port":
        guard let number = Int(value), (0...65535).contains(number) else { fail("--port \(value) is not a port number") }
        port = number
    case "--backend":
        guard let chosen = Backend(rawValue: value) else { fail("--backend \(value); expected auto, uring or epoll") }
        backend = chosen
    default:
        fail("unknown option \(flag)\n\(usage)")
    }
}
guard let port else { fail(usage) }

/// The connected clients, by identity. Touched only on the loop's thread.
final class Room: @unchecked Sendable {
    var clients: [ObjectIdentifier: SocketStream] = [:]

    /// Sends `line` to everyone but `sender`. Each send is queued at once, in
    /// order; a client that reads slowly holds up only its own task.
    func broadcast(_ line: [UInt8], from sender: ObjectIdentifier, on loop: EventLoop) {
        for (id, client) in clients where id != sender {
            loop.spawn { try? await client.writeAll(line) }
        }
    }
}

do {
    try EventLoop.run(backend: backend) {
        let loop = try EventLoop.running()
        let room = Room()
        let server = try await loop.serve(host: "0.0.0.0", port: port) { stream in
            let id = ObjectIdentifier(stream)
            room.clients[id] = stream
            defer { room.clients[id] = nil }
            do {
                for try await line in stream.lines {
                    room.broadcast(Array((line + "\n").utf8), from: id, on: loop)
                }
            } catch let error as IOError where error.code == .closed {
                // Closed by the shutdown below: not an error.
            }
        }
        for signal in [SIGTERM, SIGINT] {
            try loop.addSignalHandler(signal) { server.close() }
        }
        say("Chat listening on \(server.localAddress) with the \(loop.backend) backend")

        try await server.serveForever()   // returns once a signal closed the server
        let goodbye = Array("server closing\n".utf8)
        for client in room.clients.values {
            try? await client.writeAll(goodbye)
            try? await client.close()
        }
        await server.waitClosed(deadline: .seconds(1))
    }
} catch {
    say("Chat: \(error)", to: 2)
    exit(1)
}
