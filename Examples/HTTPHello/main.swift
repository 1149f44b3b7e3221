import Glibc
import RingLoop

// The smallest HTTP/1.1 server worth benchmarking: every request gets
// "200 OK" and the body "Hello, World!". Keep-alive and pipelining work;
// "Connection: close" and HTTP/1.0 without keep-alive close after the reply
// (HTTP/1.0 with "Connection: keep-alive" is answered with that header, so
// the client knows the connection stays); HEAD gets the headers alone;
// "Expect: 100-continue" gets its interim reply before the body is read.
// Lines end in CRLF or, as RFC 9112 allows a server to accept, a bare LF.
//
//   swift run -c release HTTPHello --port 8080 [--threads N] [--backend auto|uring|epoll]
//
// Built on a LoopGroup (one loop per thread, one SO_REUSEPORT listener per
// loop), readUntil(anyOf:) for the head, readExactly for a body, and a
// vectored write for header plus body. SIGTERM or SIGINT stops it.

let usage = "usage: HTTPHello --port PORT [--threads N] [--backend auto|uring|epoll]"

func fail(_ message: String) -> Never {
    say(message, to: 2)
    exit(64)
}

var port: Int?
var threads = 1
var backend: Backend?
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    guard let value = arguments.popFirst() else { fail("\(flag) needs a value\n\(usage)") }
    switch flag {
    case "--port":
        guard let number = Int(value), (0...65535).contains(number) else { fail("--port \(value) is not a port number") }
        port = number
    case "--threads":
        guard let number = Int(value), number >= 1 else { fail("--threads \(value) is not a positive number") }
        threads = number
    case "--backend":
        guard let chosen = Backend(rawValue: value) else { fail("--backend \(value); expected auto, uring or epoll") }
        backend = chosen
    default:
        fail("unknown option \(flag)\n\(usage)")
    }
}
guard let port else { fail(usage) }
let options = (port: port, threads: threads, backend: backend)

do {
    try await HTTPHello.run(port: options.port, threads: options.threads, backend: options.backend)
} catch {
    say("HTTPHello: \(error)", to: 2)
    exit(1)
}
