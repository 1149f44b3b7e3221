import Glibc
import RingLoop
import Synchronization

/// The server: a LoopGroup, one SO_REUSEPORT listener per loop, a task per
/// connection.
enum HTTPHello {
    static func run(port: Int, threads: Int, backend: Backend?) async throws {
        let group = try LoopGroup(threads: threads, backend: backend)
        // Every interface, IPv4 and IPv6 (""). The first loop binds the port
        // (a free one for --port 0); the others share it through SO_REUSEPORT.
        // One loop does without it, so that a port already served by another
        // program, this one included, is an error rather than shared.
        let reusePort = threads > 1
        let first = try await group.loops[0].submit {
            try await group.loops[0].serve(host: "", port: port, reusePort: reusePort) { try await handle($0) }
        }
        let bound = first.localAddress.port ?? port
        var servers = [first]
        for loop in group.loops.dropFirst() {
            servers.append(try await loop.submit {
                try await loop.serve(host: "", port: bound, reusePort: reusePort) { try await handle($0) }
            })
        }
        let stop = StopSignal()
        try await group.loops[0].submit {
            for signal in [SIGTERM, SIGINT] { try group.loops[0].addSignalHandler(signal) { stop.fire() } }
        }
        say("HTTPHello listening on \(first.localAddresses.map(\.description).joined(separator: " and ")) with \(threads) loop(s) on the \(group.loops[0].backend) backend")
        await stop.wait()
        let all = servers
        _ = try await group.onEach { loop in
            for server in all where server.loop === loop {
                server.close()
                await server.waitClosed(deadline: .milliseconds(500))
            }
        }
        group.shutdown()
    }

    /// A request the server refuses, with the status it answers before
    /// closing the connection.
    enum Refusal: Error {
        /// Not HTTP/1.x; a malformed or conflicting `Content-Length`; a
        /// `Transfer-Encoding` whose last coding is not `chunked`, or beside a
        /// `Content-Length`, or from HTTP/1.0; a malformed chunk.
        case badRequest
        /// A body larger than ``RequestHead/maxBody``.
        case tooLarge
        /// A request head longer than the stream's 64 KiB limit.
        case headTooLarge

        var response: [UInt8] {
            let status = switch self {
            case .badRequest: "400 Bad Request"
            case .tooLarge: "413 Content Too Large"
            case .headTooLarge: "431 Request Header Fields Too Large"
            }
            return Array("HTTP/1.1 \(status)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
        }
    }

    /// One request head's facts that decide what happens next, read from the
    /// bytes without building strings (this runs once per request).
    struct RequestHead {
        /// The largest body read (and thrown away); a larger one gets 413, as
        /// nginx's default `client_max_body_size` does.
        static let maxBody = 1 << 20

        var contentLength = 0
        /// `Transfer-Encoding: chunked`: the body is a series of chunks, read
        /// by ``discardChunkedBody(_:)``.
        var isChunked = false
        var keepAlive = true
        /// HTTP/1.1 (persistent unless told otherwise); HTTP/1.0 keeps the
        /// connection only when asked to, and then must be told it was kept.
        var isHTTP11 = true
        /// A HEAD request: the reply's headers say what GET would send, and
        /// no body follows them (a body would be read as the next reply).
        var isHead = false
        /// `Expect: 100-continue`: the client (curl, for bodies over 1 KiB)
        /// holds the body back until an interim "100 Continue" says to send it.
        var expectsContinue = false

        /// Parses the request line and headers. Whatever a client sends, this
        /// throws a ``Refusal`` rather than trusting it: a `Content-Length`
        /// must be digits only (an overflowing one is refused, not trapped on).
        init(_ head: [UInt8]) throws(Refusal) {
            let lines = head.split(separator: 0x0A, omittingEmptySubsequences: true)   // "\n"; each line keeps its "\r"
            guard let requestLine = lines.first else { throw .badRequest }
            let version = Array("HTTP/1.".utf8)
            let words = requestLine.split(separator: 0x20)
            guard words.count == 3, words[2].starts(with: version) else { throw .badRequest }
            isHTTP11 = words[2].dropFirst(version.count).first == UInt8(ascii: "1")
            keepAlive = isHTTP11
            isHead = words[0].elementsEqual("HEAD".utf8)
            var lengthSeen = false
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { continue }
                let name = line[line.startIndex..<colon]
                let value = Self.trimmed(line[(colon + 1)...])
                if Self.equalsIgnoringCase(name, "content-length") {
                    let length = try Self.length(value)
                    // Two different lengths are how requests get smuggled.
                    if lengthSeen && length != contentLength { throw .badRequest }
                    lengthSeen = true
                    contentLength = length
                } else if Self.equalsIgnoringCase(name, "transfer-encoding") {
                    // RFC 9112 6.1: only a final "chunked" says where the body
                    // ends, and HTTP/1.0 has no transfer codings at all.
                    let last = value.split(separator: UInt8(ascii: ","), omittingEmptySubsequences: false).last.map(Self.trimmed)
                    guard isHTTP11, let last, Self.equalsIgnoringCase(last, "chunked") else { throw .badRequest }
                    isChunked = true
                } else if Self.equalsIgnoringCase(name, "expect") {
                    // Never to an HTTP/1.0 client, which does not know 1xx replies.
                    expectsContinue = isHTTP11 && Self.equalsIgnoringCase(value, "100-continue")
                } else if Self.equalsIgnoringCase(name, "connection") {
                    if Self.containsIgnoringCase(value, "close") { keepAlive = false }
                    if Self.containsIgnoringCase(value, "keep-alive") { keepAlive = true }
                }
            }
            // Both framings at once is how requests get smuggled (RFC 9112 6.3).
            if isChunked && lengthSeen { throw .badRequest }
        }

        /// The body, read and thrown away so that the next request starts
        /// where this one ends.
        func discardBody(_ stream: SocketStream) async throws {
            guard isChunked || contentLength > 0 else { return }
            if expectsContinue { try await stream.writeAll(HTTPHello.continueLine) }
            if isChunked {
                try await Self.discardChunkedBody(stream)
            } else {
                _ = try await stream.readExactly(contentLength)
            }
        }

        /// A chunked body (RFC 9112 7.1): chunks of "size[;extensions]" CRLF,
        /// data, CRLF; a last chunk of size 0; trailer lines up to an empty
        /// one. Its data counts against ``maxBody``, its trailers against the
        /// stream's limit, as a head's lines do.
        static func discardChunkedBody(_ stream: SocketStream) async throws {
            var total = 0
            while true {
                let size = try chunkSize(try await line(stream))
                total += size
                guard total <= maxBody else { throw Refusal.tooLarge }
                if size == 0 { break }
                _ = try await stream.readExactly(size)
                guard try await line(stream).isEmpty else { throw Refusal.badRequest }
            }
            var trailers = 0
            while true {
                let trailer = try await line(stream)
                if trailer.isEmpty { return }
                trailers += trailer.count
                guard trailers <= stream.limit else { throw Refusal.headTooLarge }
            }
        }

        /// One line of a chunked body, without its CRLF (or bare LF) and the
        /// blanks around it.
        private static func line(_ stream: SocketStream) async throws -> ArraySlice<UInt8> {
            trimmed(try await stream.readUntil(newline).dropLast())
        }
        private static let newline = Array("\n".utf8)

        /// A chunk-size line's hex number; extensions after ";" are ignored.
        private static func chunkSize(_ line: ArraySlice<UInt8>) throws(Refusal) -> Int {
            let digits = trimmed(line.prefix { $0 != UInt8(ascii: ";") })
            guard !digits.isEmpty, digits.count <= 8 else { throw digits.isEmpty ? .badRequest : .tooLarge }
            var size = 0
            for digit in digits {
                guard let value = hexValue(digit) else { throw .badRequest }
                size = size << 4 | value
            }
            return size
        }

        private static func hexValue(_ byte: UInt8) -> Int? {
            switch byte {
            case 0x30...0x39: Int(byte - 0x30)
            case 0x41...0x46: Int(byte - 0x41 + 10)
            case 0x61...0x66: Int(byte - 0x61 + 10)
            default: nil
            }
        }

        /// A `Content-Length` value: digits only, at most ``maxBody``.
        private static func length(_ digits: ArraySlice<UInt8>) throws(Refusal) -> Int {
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { throw .badRequest }
            var length = 0
            for digit in digits {
                let (times10, overflow) = length.multipliedReportingOverflow(by: 10)
                let (sum, overflow2) = times10.addingReportingOverflow(Int(digit - 0x30))
                if overflow || overflow2 { throw .tooLarge }
                length = sum
            }
            guard length <= maxBody else { throw .tooLarge }
            return length
        }

        /// The value without the spaces and tabs around it, or the line's "\r".
        private static func trimmed(_ value: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
            let blank: (UInt8) -> Bool = { $0 == 0x20 || $0 == 0x09 || $0 == 0x0D }
            var value = value.drop(while: blank)
            while let last = value.last, blank(last) { value = value.dropLast() }
            return value
        }

        private static func lower(_ byte: UInt8) -> UInt8 { byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte }

        static func equalsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ word: String) -> Bool {
            bytes.count == word.utf8.count && zip(bytes, word.utf8).allSatisfy { lower($0) == $1 }
        }

        static func containsIgnoringCase(_ bytes: ArraySlice<UInt8>, _ word: String) -> Bool {
            let target = Array(word.utf8)
            guard bytes.count >= target.count else { return false }
            var start = bytes.startIndex
            while start + target.count <= bytes.endIndex {
                if zip(bytes[start...], target).allSatisfy({ lower($0) == $1 }) { return true }
                start += 1
            }
            return false
        }
    }

    /// The reply, made once per loop thread and reused: writes copy it.
    static let body = Array("Hello, World!".utf8)
    static let header = Array("HTTP/1.1 200 OK\r\nServer: RingLoop\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\n\r\n".utf8)
    static let closingHeader = Array("HTTP/1.1 200 OK\r\nServer: RingLoop\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n".utf8)
    /// For HTTP/1.0 keep-alive (ApacheBench's `-k`): without the header the
    /// client takes the reply as the last and waits for a close.
    static let keepAliveHeader = Array("HTTP/1.1 200 OK\r\nServer: RingLoop\r\nContent-Type: text/plain\r\nContent-Length: \(body.count)\r\nConnection: keep-alive\r\n\r\n".utf8)
    static let continueLine = Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)

    static func handle(_ stream: SocketStream) async throws {
        let replyBody = IOBuffer(body)
        let replyHeader = IOBuffer(header)
        let replyClosing = IOBuffer(closingHeader)
        let replyKeepAlive = IOBuffer(keepAliveHeader)
        // A head ends at an empty line. "\n\r\n" is the end of "\r\n\r\n"
        // and "\n\n" that of a head in bare LFs, which RFC 9112 lets a
        // server accept (nginx and Go do; `nc` sends them).
        let endOfHead = [Array("\n\r\n".utf8), Array("\n\n".utf8)]
        while true {
            let head: [UInt8]
            do {
                head = try await stream.readUntil(anyOf: endOfHead)
            } catch is IncompleteReadError {
                return   // the client closed between requests
            } catch is LimitOverrunError {
                try await refuse(.headTooLarge, stream)
                return
            }
            let request: RequestHead
            do {
                request = try RequestHead(head)
                try await request.discardBody(stream)
            } catch let refusal as Refusal {
                try await refuse(refusal, stream)
                return
            } catch is IncompleteReadError {
                return   // the client closed inside the body
            } catch is LimitOverrunError {
                try await refuse(.badRequest, stream)   // a chunk line past the limit
                return
            }
            let replyHead = !request.keepAlive ? replyClosing : request.isHTTP11 ? replyHeader : replyKeepAlive
            try await stream.write(contentsOf: request.isHead ? [replyHead] : [replyHead, replyBody])
            if !request.keepAlive { return }
        }
    }

    /// Answers a refused request, then lets the client finish sending
    /// before the close (nginx's "lingering close", for at most 2 s): a
    /// client still sending a long head or a large body would otherwise
    /// read a reset instead of the answer.
    static func refuse(_ refusal: Refusal, _ stream: SocketStream) async throws {
        try await stream.writeAll(refusal.response)
        try await stream.shutdownAndDrain(within: .seconds(2))
    }

    /// Resumes the main task once a stop signal arrives.
    final class StopSignal: Sendable {
        private let state = Mutex<(fired: Bool, waiter: CheckedContinuation<Void, Never>?)>((false, nil))

        func fire() {
            let waiter = state.withLock { state in
                state.fired = true
                defer { state.waiter = nil }
                return state.waiter
            }
            waiter?.resume()
        }

        func wait() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state in
                    if state.fired { return true }
                    state.waiter = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }
}

/// Writes a line straight to a descriptor, unbuffered: a script waiting for
/// "listening" sees it at once.
func say(_ line: String, to fd: Int32 = 1) {
    let bytes = Array((line + "\n").utf8)
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
}
