import ArgumentParser
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

struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "EchoServer",
        abstract: "A TCP echo server: every byte a client sends comes back."
    )

    enum API: String, CaseIterable, ExpressibleByArgument { case stream, `protocol` }

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"
    @Option(help: "The port to listen on (0: any free port).")
    var port = 7000
    @Option(help: "auto, uring or epoll (default: RINGLOOP_BACKEND, else auto).")
    var backend: Backend?
    @Option(help: "stream (a task per connection) or protocol (callbacks, no task).")
    var api = API.stream
    @Option(help: "Event loops, one per thread, each with its own SO_REUSEPORT listener.")
    var threads = 1

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port \(port) is not a port number") }
        guard threads >= 1 else { throw ValidationError("--threads \(threads) is not a positive number") }
    }
}

extension Backend: ExpressibleByArgument {}

let options = Options.parseOrExit()
// Thousands of connections need more descriptors than the 1,024 most
// shells allow; the hard limit is usually far higher (Go's runtime raises
// the soft limit to it at start, too).
do { try DescriptorLimit.raiseToMaximum() } catch { say("note: \(error)", to: 2) }
do {
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
