import Glibc

extension SocketStream: DelimitedReading {
    /// Reads up to and including `separator`: asyncio's `readuntil`.
    ///
    /// Returns at once when the queued bytes already hold the separator.
    ///
    /// ```swift
    /// let head = try await stream.readUntil(Array("\r\n\r\n".utf8))
    /// ```
    ///
    /// - Throws: ``LimitOverrunError`` when ``limit`` bytes arrive without the
    ///   separator (they stay queued); ``IncompleteReadError`` when the stream
    ///   ends first (its `partial` holds the bytes); ``IOError`` for an empty
    ///   separator or a failed connection; `CancellationError`.
    public nonisolated(nonsending) func readUntil(_ separator: [UInt8]) async throws -> [UInt8] {
        try await readUntil(separators: CollectionOfOne(separator))
    }

    /// Reads up to and including the first of several separators to end in
    /// the stream: asyncio's `readuntil` with a tuple of separators (Python
    /// 3.13). The result is the shortest that ends with any of them.
    ///
    /// ```swift
    /// // An HTTP head, whether its lines end in CRLF or in a bare LF:
    /// let head = try await stream.readUntil(anyOf: [Array("\n\r\n".utf8), Array("\n\n".utf8)])
    /// ```
    ///
    /// - Throws: as ``readUntil(_:)``; ``IOError`` for an empty list or an
    ///   empty separator in it.
    public nonisolated(nonsending) func readUntil(anyOf separators: [[UInt8]]) async throws -> [UInt8] {
        try await readUntil(separators: separators)
    }

    /// Both readUntils; `CollectionOfOne` spares the single separator an
    /// array allocation per call.
    private nonisolated(nonsending) func readUntil(separators: some Collection<[UInt8]>) async throws -> [UInt8] {
        try loop.requireLoopThread("readUntil")
        return try await readUntil(separators: separators, operation: "readUntil")
    }

    /// Reads one line, `\n`-terminated, and returns it without the `\n`; nil
    /// at the end of the stream. A `\r` before the `\n` is kept (the line is
    /// what was sent; `readUntil(Array("\r\n".utf8))` splits on CRLF). A last
    /// line without a terminator is returned as it is. Invalid UTF-8 is
    /// repaired (U+FFFD), as `String(decoding:as:)` does.
    ///
    /// ```swift
    /// while let line = try await stream.readLine() { print(line) }
    /// ```
    ///
    /// - Throws: ``LimitOverrunError`` for a line longer than ``limit`` (the
    ///   bytes stay queued); ``IOError`` for a failed connection; `CancellationError`.
    public nonisolated(nonsending) func readLine() async throws -> String? {
        try await checkedReadLineBytes(operation: "readLine").map { String(decoding: $0, as: UTF8.self) }
    }

    /// Reads one line as ``readLine()`` does, as bytes: exactly what was sent
    /// before the `\n`, whether or not it is UTF-8.
    ///
    /// - Throws: as ``readLine()``.
    public nonisolated(nonsending) func readLineBytes() async throws -> [UInt8]? {
        try await checkedReadLineBytes(operation: "readLineBytes")
    }

    private nonisolated(nonsending) func checkedReadLineBytes(operation: String) async throws -> [UInt8]? {
        try loop.requireLoopThread(operation)
        return try await readLineBytes(operation: operation)
    }

    /// Reads exactly `count` bytes: asyncio's `readexactly`. `count` may be
    /// larger than ``limit``: the stream then queues up to `count` bytes.
    /// Nothing is taken until all `count` have arrived, so a read that is
    /// cancelled or times out leaves every byte queued for the next one.
    ///
    /// - Throws: ``IncompleteReadError`` when the stream ends first (with the
    ///   bytes read); ``IOError`` for a negative count or a failed connection;
    ///   `CancellationError`.
    public nonisolated(nonsending) func readExactly(_ count: Int) async throws -> [UInt8] {
        try loop.requireLoopThread("readExactly")
        return try await readExactly(count: count, operation: "readExactly")
    }

    /// The stream's lines, as ``readLine()`` returns them, until the end of
    /// the stream.
    ///
    /// ```swift
    /// for try await line in stream.lines { try await stream.writeAll(Array((line + "\n").utf8)) }
    /// ```
    public var lines: Lines { LineSequence(nextLine: readLine) }

    /// An `AsyncSequence` of the lines of a stream.
    public typealias Lines = LineSequence<String>

    /// The stream's lines as bytes, as ``readLineBytes()`` returns them: what
    /// a relay uses to pass lines on unchanged, even when they are not UTF-8.
    ///
    /// ```swift
    /// for try await line in stream.byteLines { try await peer.writeAll(line + [0x0A]) }
    /// ```
    public var byteLines: ByteLines { LineSequence(nextLine: readLineBytes) }

    /// An `AsyncSequence` of the lines of a stream, as bytes.
    public typealias ByteLines = LineSequence<[UInt8]>

    /// Queues copies of several buffers in order, then waits for room once:
    /// a header and a body in one call. The bytes leave in one vectored send
    /// with whatever else this iteration queued. Buffers larger in all than
    /// ``writeChunkSize`` are queued a chunk at a time, as `writeAll` does,
    /// with no other task's write between them.
    ///
    /// ```swift
    /// try await stream.write(contentsOf: [header, body])
    /// ```
    public nonisolated(nonsending) func write(contentsOf buffers: [IOBuffer]) async throws {
        try await write(buffers, total: buffers.reduce(0) { $0 + $1.count })
    }

    // MARK: The queue the delimited reads work on


    var queuedCount: Int { state.inbound.count }
    var queueEnded: Bool { state.eof }
    var errorSource: (fd: Int32?, path: String?) { (fileDescriptor, nil) }

    func queuedIndex(of separator: [UInt8], from start: Int) -> Int? {
        state.inbound.firstIndex(of: separator, from: start)
    }

    func checkReadable(_ operation: String) throws {
        if state.closedLocally { try state.throwFailure(operation) }
    }

    func throwEndingError(_ operation: String) throws {
        try state.throwFailure(operation)
    }

    nonisolated(nonsending) func waitForQueued(_ needed: Int, operation: String) async throws {
        try await state.waitForData(needed: needed, operation: operation)
    }

    /// Removes and returns the first `n` queued bytes.
    func take(_ n: Int) -> [UInt8] {
        guard n > 0 else { return [] }
        let bytes = [UInt8](unsafeUninitializedCapacity: n) { storage, count in
            count = state.inbound.peek(into: UnsafeMutableRawPointer(storage.baseAddress!), max: n)
        }
        state.consumed(bytes.count)
        return bytes
    }
}
