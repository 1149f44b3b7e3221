import Glibc

/// asyncio's StreamReader over a ``File``: lines, separators and exact
/// counts from a file, a FIFO, a pipe or a terminal, read ahead a chunk at a
/// time. What `loop.connect_read_pipe` with a `StreamReader` gives in Python,
/// and line-by-line reading of files too large to load whole.
///
/// ```swift
/// let stdin = try FileReader(try await File.open("/dev/stdin"))
/// for try await line in stdin.lines { print(line.uppercased()) }
/// ```
///
/// The calls follow ``SocketStream``'s, which follow asyncio's: a line or
/// separator not found within ``limit`` bytes throws ``LimitOverrunError``
/// and the bytes stay queued; an end before ``readExactly(_:)`` or
/// ``readUntil(_:)`` has all it needs throws ``IncompleteReadError`` with the
/// bytes read.
///
/// The reader reads ahead from the file's current position (a FIFO, pipe or
/// terminal: in order), so bytes past what it has returned may already be
/// queued in it: read the rest through the reader, not the `File`. One task
/// reads at a time (a second gets `EBUSY`, as asyncio raises for a second
/// waiter); the reader must be used on the loop the file was opened on.
/// Closing the file is still the caller's job.
///
/// ``File/lines`` is the short way to a file's lines.
public final class FileReader: @unchecked Sendable {
    /// The file read from.
    public let file: File
    /// The most bytes a line or separator search looks through before it
    /// throws ``LimitOverrunError`` (asyncio's `limit`, 64 KiB by default).
    public let limit: Int
    /// How many bytes each read asks for.
    private let chunkSize: Int
    /// The read-ahead buffer, one read's worth, made on the first read.
    private var chunk: IOBuffer?
    /// Bytes read and not yet returned: `queue[head...]`.
    private var queue: [UInt8] = []
    private var head = 0
    /// The file returned its end (a read of 0 bytes).
    private var ended = false
    /// A task is reading into the queue; another may not.
    private var filling = false

    /// A reader for `file`, reading `chunkSize` bytes at a time.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) for a limit or chunk size
    ///   below one byte.
    public convenience init(_ file: File, limit: Int = SocketStream.defaultLimit, chunkSize: Int = 64 * 1024) throws {
        for (name, value) in [("limit", limit), ("chunkSize", chunkSize)] where value < 1 {
            throw IOError(operation: "FileReader", errno: Errno(EINVAL), fd: file.fileDescriptor, path: file.path,
                          detail: "\(name) must be at least 1 byte, got \(value)")
        }
        self.init(unchecked: file, limit: limit, chunkSize: chunkSize)
    }

    /// True once the file has returned its end and every byte read has been
    /// taken: asyncio's `at_eof()`.
    public var isAtEOF: Bool { ended && queuedCount == 0 }

    /// A reader with a limit and chunk size known to be valid.
    init(unchecked file: File, limit: Int = SocketStream.defaultLimit, chunkSize: Int = 64 * 1024) {
        self.file = file
        self.limit = limit
        self.chunkSize = chunkSize
    }

    /// Reads one line, `\n`-terminated, and returns it without the `\n`; nil
    /// at the end of the file. A `\r` before the `\n` is kept, a last line
    /// without a terminator is returned as it is, and invalid UTF-8 is
    /// repaired (U+FFFD), as ``SocketStream/readLine()`` does.
    ///
    /// - Throws: ``LimitOverrunError`` for a line longer than ``limit`` (the
    ///   bytes stay queued); ``IOError`` from the read; `CancellationError`.
    public nonisolated(nonsending) func readLine() async throws -> String? {
        try requireLoopThread("readLine")
        return try await readLineBytes(operation: "readLine").map { String(decoding: $0, as: UTF8.self) }
    }

    /// Reads one line as ``readLine()`` does, as bytes.
    public nonisolated(nonsending) func readLineBytes() async throws -> [UInt8]? {
        try requireLoopThread("readLineBytes")
        return try await readLineBytes(operation: "readLineBytes")
    }

    /// Reads up to and including `separator`: asyncio's `readuntil`.
    ///
    /// ```swift
    /// let header = try await reader.readUntil(Array("\r\n\r\n".utf8))
    /// ```
    ///
    /// - Throws: as ``SocketStream/readUntil(_:)``.
    public nonisolated(nonsending) func readUntil(_ separator: [UInt8]) async throws -> [UInt8] {
        try requireLoopThread("readUntil")
        return try await readUntil(separators: CollectionOfOne(separator), operation: "readUntil")
    }

    /// Reads up to and including the first of several separators to end,
    /// as ``SocketStream/readUntil(anyOf:)`` does.
    public nonisolated(nonsending) func readUntil(anyOf separators: [[UInt8]]) async throws -> [UInt8] {
        try requireLoopThread("readUntil")
        return try await readUntil(separators: separators, operation: "readUntil")
    }

    /// Reads exactly `count` bytes: asyncio's `readexactly`. A length-prefixed
    /// message on stdin (an LSP server's `Content-Length` body) is
    /// `readUntil` for the header, then this.
    ///
    /// - Throws: ``IncompleteReadError`` when the file ends first (with the
    ///   bytes read); ``IOError`` for a negative count or a failed read;
    ///   `CancellationError`, with every byte read so far still queued.
    public nonisolated(nonsending) func readExactly(_ count: Int) async throws -> [UInt8] {
        try requireLoopThread("readExactly")
        return try await readExactly(count: count, operation: "readExactly")
    }

    /// Reads up to `maxBytes` bytes: what is queued, else one read's worth;
    /// `[]` at the end of the file.
    ///
    /// - Throws: ``IOError`` (`.invalidArgument`) when `maxBytes` is not positive.
    public nonisolated(nonsending) func read(upTo maxBytes: Int) async throws -> [UInt8] {
        try requireLoopThread("read")
        guard maxBytes > 0 else {
            throw IOError(operation: "read", errno: Errno(EINVAL), fd: file.fileDescriptor, path: file.path,
                          detail: "maxBytes must be positive, got \(maxBytes)")
        }
        if queuedCount == 0 { try await waitForQueued(1, operation: "read") }
        return take(Swift.min(maxBytes, queuedCount))
    }

    /// The file's lines, as ``readLine()`` returns them, until its end.
    ///
    /// ```swift
    /// for try await line in try FileReader(file).lines where line.hasPrefix("ERROR") { print(line) }
    /// ```
    public var lines: Lines { LineSequence(nextLine: readLine) }

    /// An `AsyncSequence` of a file's lines.
    public typealias Lines = LineSequence<String>

    /// The file's lines as bytes, as ``readLineBytes()`` returns them.
    public var byteLines: ByteLines { LineSequence(nextLine: readLineBytes) }

    /// An `AsyncSequence` of a file's lines, as bytes.
    public typealias ByteLines = LineSequence<[UInt8]>

    /// The thread check every call makes first.
    private func requireLoopThread(_ operation: String) throws {
        try file.descriptor.loop.requireLoopThread(operation)
    }
}

extension FileReader: DelimitedReading {
    var queuedCount: Int { queue.count - head }
    var queueEnded: Bool { ended }
    var errorSource: (fd: Int32?, path: String?) { (file.fileDescriptor, file.path) }

    func queuedIndex(of separator: [UInt8], from start: Int) -> Int? {
        guard let first = separator.first else { return nil }
        var index = head + start
        let last = queue.count - separator.count
        while index <= last {
            guard let candidate = queue[index...last].firstIndex(of: first) else { return nil }
            if queue[candidate..<(candidate + separator.count)].elementsEqual(separator) { return candidate - head }
            index = candidate + 1
        }
        return nil
    }

    func take(_ n: Int) -> [UInt8] {
        let bytes = Array(queue[head..<(head + n)])
        head += n
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        }
        return bytes
    }

    /// Nothing to check: a closed file's read throws its own error.
    func checkReadable(_ operation: String) throws {}

    /// Nothing is kept for later: a failed read throws where it happens.
    func throwEndingError(_ operation: String) throws {}

    nonisolated(nonsending) func waitForQueued(_ needed: Int, operation: String) async throws {
        guard queuedCount < needed, !ended else { return }
        guard !filling else {
            throw IOError(operation: operation, errno: Errno(EBUSY), fd: file.fileDescriptor, path: file.path,
                          detail: "another task is already reading through this FileReader; one reader at a time")
        }
        filling = true
        defer { filling = false }
        let chunk = try self.chunk ?? IOBuffer(capacity: chunkSize)
        self.chunk = chunk
        while queuedCount < needed, !ended {
            // A cancelled or failed read queues nothing: what is queued stays.
            let n = try await file.read(into: chunk)
            guard n > 0 else {
                ended = true
                break
            }
            if head > 0, head >= queue.count / 2 {
                // Taken bytes are dropped once they are half the queue, so
                // a file of short lines is not moved line by line.
                queue.removeSubrange(0..<head)
                head = 0
            }
            chunk.withUnsafeBytes { queue.append(contentsOf: $0) }
        }
    }
}

extension File {
    /// The file's lines from its current position, as ``FileReader/lines``
    /// returns them, through a new reader with the default limit: asyncio's
    /// `async for line in reader`.
    ///
    /// ```swift
    /// let log = try await File.open("/var/log/app.log")
    /// for try await line in log.lines where line.contains("ERROR") { print(line) }
    /// try await log.close()
    /// ```
    ///
    /// The reader reads ahead: once the loop stops early, the bytes after
    /// the last line returned may already have been read from the file.
    public var lines: FileReader.Lines { FileReader(unchecked: self).lines }
}
