import Glibc

/// A separator or line was not found within the reader's limit: asyncio's
/// `LimitOverrunError`. The bytes stay queued, so the caller may read them
/// another way (``SocketStream/read(upTo:)``, ``FileReader/read(upTo:)``) or close.
public struct LimitOverrunError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call that hit the limit (`readLine`, `readUntil`).
    public var operation: String
    /// The reader's limit, in bytes.
    public var limit: Int
    /// How many bytes are queued and were searched without a separator, or
    /// where the separator ends when it was found past the limit.
    public var consumed: Int
    /// The stream's or file's descriptor.
    public var fd: Int32?
    /// The file's path, for a ``FileReader``.
    public var path: String?

    public var description: String {
        let source = [fd.map { "fd \($0)" } ?? "fd -", path].compactMap { $0 }.joined(separator: ", ")
        return "\(operation)(\(source)): no separator within the limit of \(limit) bytes (\(consumed) bytes queued); the bytes stay readable"
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

/// A queue of received bytes that asyncio's StreamReader calls (`readuntil`,
/// `readline`, `readexactly`) can be answered from: a ``SocketStream``'s
/// inbound queue, or a ``FileReader``'s read-ahead. The calls' rules (the
/// limit, what stays queued on an error, what an early end returns) live
/// once, here, so both readers keep them alike.
protocol DelimitedReading: AnyObject {
    /// The most bytes a separator search looks through.
    var limit: Int { get }
    /// Bytes queued and not yet taken.
    var queuedCount: Int { get }
    /// No more bytes will be queued: the peer's end, or the end of the file.
    var queueEnded: Bool { get }
    /// The offset of `separator` in the queue at or after `start`, or nil.
    func queuedIndex(of separator: [UInt8], from start: Int) -> Int?
    /// Removes and returns the first `n` queued bytes.
    func take(_ n: Int) -> [UInt8]
    /// Throws when the reader can no longer be read: closed by its owner.
    func checkReadable(_ operation: String) throws
    /// Throws an error that ended the queue, if one did and is not yet reported.
    func throwEndingError(_ operation: String) throws
    /// Suspends until `needed` bytes are queued or the queue ended.
    nonisolated(nonsending) func waitForQueued(_ needed: Int, operation: String) async throws
    /// What names the reader in its errors (``LimitOverrunError``, bad arguments).
    var errorSource: (fd: Int32?, path: String?) { get }
}

/// The line separator, made once rather than per line.
private let lineSeparator: [UInt8] = [0x0A]

extension DelimitedReading {
    /// asyncio's `readuntil`: the bytes up to and including the first of
    /// `separators` to end.
    nonisolated(nonsending) func readUntil(separators: some Collection<[UInt8]>, operation: String) async throws -> [UInt8] {
        guard !separators.isEmpty, !separators.contains(where: \.isEmpty) else {
            throw IOError(operation: operation, errno: Errno(EINVAL), fd: errorSource.fd, path: errorSource.path,
                          detail: separators.isEmpty ? "no separator was given" : "a separator is empty")
        }
        guard let end = try await scan(for: separators, operation: operation) else {
            let partial = take(queuedCount)
            try throwEndingError("read")
            throw IncompleteReadError(operation: operation, partial: partial, expected: nil)
        }
        return take(end)
    }

    /// asyncio's `readline`, without the `\n`; nil at the end. A last line
    /// without its `\n` is returned as it is.
    nonisolated(nonsending) func readLineBytes(operation: String) async throws -> [UInt8]? {
        guard let end = try await scan(for: CollectionOfOne(lineSeparator), operation: operation) else {
            let rest = take(queuedCount)
            if rest.isEmpty {
                try throwEndingError("read")
                return nil
            }
            return rest
        }
        var line = take(end)
        line.removeLast()
        return line
    }

    /// asyncio's `readexactly`: nothing is taken until all `count` bytes are
    /// queued, so a read cancelled on the way loses none.
    nonisolated(nonsending) func readExactly(count: Int, operation: String) async throws -> [UInt8] {
        guard count >= 0 else {
            throw IOError(operation: operation, errno: Errno(EINVAL), fd: errorSource.fd, path: errorSource.path,
                          detail: "count must not be negative, got \(count)")
        }
        if queuedCount < count {
            try throwEndingError(operation)
            try await waitForQueued(count, operation: operation)
        }
        try checkReadable(operation)
        guard queuedCount >= count else {
            try throwEndingError("read")
            throw IncompleteReadError(operation: operation, partial: take(queuedCount), expected: count)
        }
        return take(count)
    }

    /// Waits until the queued bytes hold one of `separators` within the
    /// limit and returns where the first to end does; nil when the queue
    /// ended without any.
    private nonisolated(nonsending) func scan(for separators: some Collection<[UInt8]>, operation: String) async throws -> Int? {
        var searched = 0
        while true {
            try checkReadable(operation)
            var end: Int?
            for separator in separators {
                // Bytes searched before cannot hold a whole separator; one
                // may straddle the old end, so step back by its length.
                let from = Swift.max(0, searched - separator.count + 1)
                if let index = queuedIndex(of: separator, from: from) {
                    end = Swift.min(end ?? .max, index + separator.count)
                }
            }
            if let end {
                guard end <= limit else { throw overrun(operation, consumed: end) }
                return end
            }
            searched = queuedCount
            if searched > limit { throw overrun(operation, consumed: searched) }
            if queueEnded { return nil }
            try await waitForQueued(searched + 1, operation: operation)
        }
    }

    private func overrun(_ operation: String, consumed: Int) -> LimitOverrunError {
        LimitOverrunError(operation: operation, limit: limit, consumed: consumed, fd: errorSource.fd, path: errorSource.path)
    }
}
