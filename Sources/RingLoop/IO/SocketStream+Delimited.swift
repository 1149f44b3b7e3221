import Glibc

/// A separator or line was not found within the stream's ``SocketStream/limit``:
/// asyncio's `LimitOverrunError`. The bytes stay queued, so the caller may
/// read them another way (``SocketStream/read(upTo:)``) or close.
public struct LimitOverrunError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call that hit the limit (`readLine`, `readUntil`).
    public var operation: String
    /// The stream's limit, in bytes.
    public var limit: Int
    /// How many bytes are queued and were searched without a separator, or
    /// where the separator ends when it was found past the limit.
    public var consumed: Int
    /// The stream's descriptor.
    public var fd: Int32?

    public var description: String {
        "\(operation)(fd \(fd.map(String.init) ?? "-")): no separator within the limit of \(limit) bytes (\(consumed) bytes queued); the bytes stay readable"
    }
}

/// The stream ended before a delimited or exact read had all it needed:
/// asyncio's `IncompleteReadError`. ``partial`` holds what was read, which is
/// no longer queued.
public struct IncompleteReadError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call that was cut short (`readExactly`, `readUntil`).
    public var operation: String
    /// The bytes read before the end of the stream.
    public var partial: [UInt8]
    /// How many bytes were wanted; nil for a separator that never came.
    public var expected: Int?

    public var description: String {
        "\(operation): the stream ended after \(partial.count) of \(expected.map(String.init) ?? "?") bytes"
    }
}

extension SocketStream {
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
        guard !separators.isEmpty, !separators.contains(where: \.isEmpty) else {
            throw IOError(operation: "readUntil", errno: Errno(EINVAL), fd: fileDescriptor,
                          detail: separators.isEmpty ? "no separator was given" : "a separator is empty")
        }
        guard let end = try await scan(for: separators, operation: "readUntil") else {
            let partial = take(state.inbound.count)
            try state.throwFailure()
            throw IncompleteReadError(operation: "readUntil", partial: partial, expected: nil)
        }
        return take(end)
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
        try await readLineBytes(operation: "readLine").map { String(decoding: $0, as: UTF8.self) }
    }

    /// Reads one line as ``readLine()`` does, as bytes: exactly what was sent
    /// before the `\n`, whether or not it is UTF-8.
    ///
    /// - Throws: as ``readLine()``.
    public nonisolated(nonsending) func readLineBytes() async throws -> [UInt8]? {
        try await readLineBytes(operation: "readLineBytes")
    }

    private nonisolated(nonsending) func readLineBytes(operation: String) async throws -> [UInt8]? {
        try loop.requireLoopThread(operation)
        guard let end = try await scan(for: CollectionOfOne(Self.newline), operation: operation) else {
            let rest = take(state.inbound.count)
            if rest.isEmpty {
                try state.throwFailure()
                return nil
            }
            return rest
        }
        var line = take(end)
        line.removeLast()
        return line
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
        guard count >= 0 else {
            throw IOError(operation: "readExactly", errno: Errno(EINVAL), fd: fileDescriptor, detail: "count must not be negative, got \(count)")
        }
        if state.inbound.count < count {
            try state.throwFailure("readExactly")
            try await state.waitForData(needed: count, operation: "readExactly")
        }
        if state.closedLocally { try state.throwFailure("readExactly") }
        guard state.inbound.count >= count else {
            try state.throwFailure()
            throw IncompleteReadError(operation: "readExactly", partial: take(state.inbound.count), expected: count)
        }
        return take(count)
    }

    /// The stream's lines, as ``readLine()`` returns them, until the end of
    /// the stream.
    ///
    /// ```swift
    /// for try await line in stream.lines { try await stream.writeAll(Array((line + "\n").utf8)) }
    /// ```
    public var lines: Lines { Lines(stream: self) }

    /// An `AsyncSequence` of the lines of a stream.
    public struct Lines: AsyncSequence, Sendable {
        public typealias Element = String
        let stream: SocketStream

        public struct AsyncIterator: AsyncIteratorProtocol {
            let stream: SocketStream
            public mutating func next() async throws -> String? { try await stream.readLine() }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: stream) }
    }

    /// The stream's lines as bytes, as ``readLineBytes()`` returns them: what
    /// a relay uses to pass lines on unchanged, even when they are not UTF-8.
    ///
    /// ```swift
    /// for try await line in stream.byteLines { try await peer.writeAll(line + [0x0A]) }
    /// ```
    public var byteLines: ByteLines { ByteLines(stream: self) }

    /// An `AsyncSequence` of the lines of a stream, as bytes.
    public struct ByteLines: AsyncSequence, Sendable {
        public typealias Element = [UInt8]
        let stream: SocketStream

        public struct AsyncIterator: AsyncIteratorProtocol {
            let stream: SocketStream
            public mutating func next() async throws -> [UInt8]? { try await stream.readLineBytes() }
        }

        public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(stream: stream) }
    }

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

    // MARK: Helpers

    /// The line separator, made once rather than per line.
    private static let newline: [UInt8] = [0x0A]

    /// Waits until the queued bytes hold one of `separators` within the
    /// limit and returns where the first to end does; nil when the stream
    /// ended without any.
    private nonisolated(nonsending) func scan(for separators: some Collection<[UInt8]>, operation: String) async throws -> Int? {
        var searched = 0
        while true {
            if state.closedLocally { try state.throwFailure(operation) }
            var end: Int?
            for separator in separators {
                // Bytes searched before cannot hold a whole separator; one
                // may straddle the old end, so step back by its length.
                let from = Swift.max(0, searched - separator.count + 1)
                if let index = state.inbound.firstIndex(of: separator, from: from) {
                    end = Swift.min(end ?? .max, index + separator.count)
                }
            }
            if let end {
                guard end <= limit else {
                    throw LimitOverrunError(operation: operation, limit: limit, consumed: end, fd: fileDescriptor)
                }
                return end
            }
            searched = state.inbound.count
            if searched > limit {
                throw LimitOverrunError(operation: operation, limit: limit, consumed: searched, fd: fileDescriptor)
            }
            if state.eof { return nil }
            try await state.waitForData(needed: searched + 1, operation: operation)
        }
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
