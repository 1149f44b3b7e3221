import ArgumentParser
import Glibc
import RingLoop

// The smallest HTTP/1.1 server worth benchmarking: every request gets
// "200 OK" and the body "Hello, World!". Keep-alive and pipelining work;
// "Connection: close" and HTTP/1.0 without keep-alive close after the reply
// (HTTP/1.0 with "Connection: keep-alive" is answered with that header, so
// the client knows the connection stays); HEAD gets the headers alone;
// "Expect: 100-continue" gets its interim reply before the body is read.
// Bodies, by Content-Length or chunked, are read and thrown away (up to
// 1 MiB; larger gets 413, a framing it cannot trust 400).
// Lines end in CRLF or, as RFC 9112 allows a server to accept, a bare LF.
//
//   swift run -c release HTTPHello --port 8080 [--threads N] [--backend auto|uring|epoll]
//
// Built on a LoopGroup (one loop per thread, one SO_REUSEPORT listener per
// loop), readUntil(anyOf:) for the head, readExactly for a body, and a
// vectored write for header plus body. SIGTERM or SIGINT stops it.

struct Options: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "HTTPHello",
        abstract: "An HTTP/1.1 server that answers every request with 200 OK and \"Hello, World!\"."
    )

    @Option(help: "The port to listen on, on every interface (0: any free port).")
    var port: Int
    @Option(help: "Event loops, one per thread, each with its own SO_REUSEPORT listener.")
    var threads = 1
    @Option(help: "auto, uring or epoll (default: RINGLOOP_BACKEND, else auto).")
    var backend: Backend?

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
    try await HTTPHello.run(port: options.port, threads: options.threads, backend: options.backend)
} catch {
    say("HTTPHello: \(error)", to: 2)
    exit(1)
}
