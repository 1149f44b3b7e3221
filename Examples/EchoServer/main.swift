import Glibc
import RingLoop

// A TCP echo server: every byte a client sends comes back.
//
//   swift run -c release EchoServer --host 127.0.0.1 --port 7000 --backend uring
//
// One task per connection, each reading into its own IOBuffer and writing it
// back; thousands of connections are thousands of small tasks on one loop.

struct Options {
    var host = "127.0.0.1"
    var port = 7000
    var backend: Backend? = nil

    static let usage = "usage: EchoServer [--host ADDRESS] [--port PORT] [--backend auto|uring|epoll]"

    init(_ arguments: [String]) throws(EventLoopError) {
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { throw .invalidArgument("\(flag) needs a value\n\(Self.usage)") }
            switch flag {
            case "--host": host = value
            case "--port":
                guard let port = Int(value), (0...65535).contains(port) else {
                    throw .invalidArgument("--port \(value) is not a port number")
                }
                self.port = port
            case "--backend":
                guard let backend = Backend(rawValue: value) else {
                    throw .invalidArgument("--backend \(value); expected auto, uring or epoll")
                }
                self.backend = backend
            default:
                throw .invalidArgument("unknown option \(flag)\n\(Self.usage)")
            }
        }
    }
}

/// Writes a line straight to a descriptor, unbuffered, so a script reading
/// the server's output sees the banner at once.
func say(_ line: String, to fd: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

func serve(_ connection: SocketStream) async {
    do {
        let buffer = try IOBuffer(capacity: 16 * 1024)
        while try await connection.read(into: buffer) > 0 {
            try await connection.writeAll(buffer)
        }
    } catch {
        // A client that resets is routine for an echo server; nothing to report.
    }
    try? await connection.close()
}

if CommandLine.arguments.contains(where: { $0 == "--help" || $0 == "-h" }) {
    say(Options.usage)
    exit(0)
}
do {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    try EventLoop.run(backend: options.backend) {
        let loop = try EventLoop.running()
        let listener = try await SocketListener.bind(host: options.host, port: options.port, backlog: 4096)
        say("EchoServer listening on \(listener.localAddress) with the \(loop.backend) backend")
        if let reason = loop.backendFallbackReason { say("(io_uring unavailable: \(reason))") }
        for try await connection in listener.connections {
            loop.spawn { await serve(connection) }
        }
    }
} catch {
    say("EchoServer: \(error)", to: 2)
    exit(1)
}
