/// The lines of a ``SocketStream`` or a ``FileReader``, as their `readLine()`
/// (or `readLineBytes()`) returns them, until the end: what
/// ``SocketStream/lines``, ``SocketStream/byteLines``, ``FileReader/lines``
/// and ``FileReader/byteLines`` return.
///
/// ```swift
/// for try await line in stream.lines { print(line) }
/// ```
public struct LineSequence<Element: Sendable>: AsyncSequence, Sendable {
    /// The reader's `readLine` or `readLineBytes`, as a method reference: it
    /// keeps the method's `nonisolated(nonsending)` (a closure literal here
    /// would be `@concurrent`) and its specialised body.
    let nextLine: nonisolated(nonsending) @Sendable () async throws -> Element?

    public struct AsyncIterator: AsyncIteratorProtocol {
        let nextLine: nonisolated(nonsending) @Sendable () async throws -> Element?

        public mutating func next() async throws -> Element? { try await nextLine() }

        // The one for-await calls, with the caller's isolation: the line is
        // read there. Through `next()` (the default), a main-actor task
        // without the loop as its preference would read off the loop thread
        // and be refused.
        public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Element? { try await nextLine() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(nextLine: nextLine) }
}
