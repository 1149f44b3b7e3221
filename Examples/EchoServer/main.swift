import Glibc
import RingLoop

// A TCP echo server: every byte a client sends comes back.
//
//   swift run -c release EchoServer --port 7000 [--backend uring] [--api stream|protocol] [--threads N]
//
// Two ways to write it, the two APIs RingLoop offers:
// - stream (the default): a task per connection reading into an IOBuffer
//   and writing it back, the way most Swift code is written;
// - protocol: a TransportProtocol whose dataReceived writes the bytes back,
//   callbacks straight from the completions with no task at all (asyncio's
//   Protocol, uvloop's fast path).
//
// With --threads N it runs N loops (a LoopGroup), each with its own
// SO_REUSEPORT listener, until killed.

struct Options {
    enum API: String { case stream, `protocol` }
    var host = "127.0.0.1"
    var port = 7000
    var backend: Backend? = nil
    var api = API.stream
    var threads = 1

    static let usage = "usage: EchoServer [--host ADDRESS] [--port PORT] [--backend auto|uring|epoll] [--api stream|protocol] [--threads N]"

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
            case "--threads":
                guard let threads = Int(value), threads >= 1 else { throw .invalidArgument("--threads \(value) is not a positive number") }
                self.threads = threads
            case "--api":
                guard let api = API(rawValue: value) else { throw .invalidArgument("--api \(value); expected stream or protocol") }
                self.api = api
            default:
                throw .invalidArgument("unknown option \(flag)\n\(Self.usage)")
            }
        }
    }
}

if CommandLine.arguments.contains(where: { $0 == "--help" || $0 == "-h" }) {
    say(Options.usage)
    exit(0)
}
do {
    let options = try Options(Array(CommandLine.arguments.dropFirst()))
    if options.threads > 1 {
        try await serveOnGroup(host: options.host, port: options.port, threads: options.threads,
                               backend: options.backend, protocolAPI: options.api == .protocol)
    }
    try EventLoop.run(backend: options.backend) {
        let loop = try EventLoop.running()
        switch options.api {
        case .stream:
            let listener = try await SocketListener.bind(host: options.host, port: options.port, backlog: 4096)
            say("EchoServer listening on \(listener.localAddress) with the \(loop.backend) backend (stream API)")
            if let reason = loop.backendFallbackReason { say("(io_uring unavailable: \(reason))") }
            let buffer = try IOBuffer(capacity: 16 * 1024)   // one per loop: see serve(_:buffer:)
            for try await connection in listener.connections {
                loop.spawn { await serve(connection, buffer: buffer) }
            }
        case .protocol:
            let server = try await loop.createServer(host: options.host, port: options.port, backlog: 4096) { Echo() }
            say("EchoServer listening on \(server.localAddress) with the \(loop.backend) backend (protocol API)")
            if let reason = loop.backendFallbackReason { say("(io_uring unavailable: \(reason))") }
            try await server.serveForever()
        }
    }
} catch {
    say("EchoServer: \(error)", to: 2)
    exit(1)
}
