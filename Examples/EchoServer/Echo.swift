import Glibc
import RingLoop

/// Writes a line straight to a descriptor, unbuffered, so a script reading
/// the server's output sees the banner at once.
func say(_ line: String, to fd: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}

/// The stream API: one task per connection. `buffer` is shared by every
/// connection of one loop: `read(into:)` fills it only as it returns and
/// `writeAll` copies it into the send queue before it can suspend, so no
/// other task's read can come between. An idle connection then holds no
/// buffer of its own.
func serve(_ connection: SocketStream, buffer: IOBuffer) async {
    do {
        while try await connection.read(into: buffer) > 0 {
            try await connection.writeAll(buffer)
        }
    } catch {
        // A client that resets is routine for an echo server; nothing to report.
    }
    try? await connection.close()
}

/// The protocol API: callbacks, no task. Flow control as asyncio's docs
/// advise: while the client does not read its echo fast enough (the send
/// queue above its high-water mark), stop reading from it, so the server
/// holds at most the mark's worth of its bytes.
final class Echo: TransportProtocol {
    var transport: Transport?
    func connectionMade(_ transport: Transport) { self.transport = transport }
    func dataReceived(_ bytes: UnsafeRawBufferPointer) throws { try transport?.write(bytes) }
    func pauseWriting() { transport?.pauseReading() }
    func resumeWriting() { transport?.resumeReading() }
}


/// --threads N: a LoopGroup, one SO_REUSEPORT listener per loop (the first
/// binds the port, the others share it); runs until the process is killed.
func serveOnGroup(host: String, port: Int, threads: Int, backend: Backend?, protocolAPI: Bool) async throws -> Never {
    let group = try LoopGroup(threads: threads, backend: backend)
    /// Returns the address and what must stay alive (a dropped Server stops listening).
    @Sendable func listen(_ loop: EventLoop, _ port: Int) async throws -> (SocketAddress, AnyObject & Sendable) {
        if protocolAPI {
            let server = try await loop.createServer(host: host, port: port, backlog: 4096, reusePort: true) { Echo() }
            return (server.localAddress, server)
        }
        let listener = try await SocketListener.bind(host: host, port: port, backlog: 4096, reusePort: true)
        let buffer = try IOBuffer(capacity: 16 * 1024)
        loop.spawn {
            for try await connection in listener.connections { loop.spawn { await serve(connection, buffer: buffer) } }
        }
        return (listener.localAddress, listener)
    }
    var keep: [AnyObject & Sendable] = []
    let (first, server) = try await group.loops[0].submit { try await listen(group.loops[0], port) }
    keep.append(server)
    for loop in group.loops.dropFirst() { keep.append(try await loop.submit { try await listen(loop, first.port ?? port) }.1) }
    say("EchoServer listening on \(first) with the \(group.loops[0].backend) backend (\(protocolAPI ? "protocol" : "stream") API, \(threads) loops)")
    // The group too: a LoopGroup that is dropped shuts its loops down.
    return withExtendedLifetime((group, keep)) { () -> Never in
        while true { pause() }
    }
}
