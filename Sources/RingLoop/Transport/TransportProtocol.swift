/// The callbacks of a connection: asyncio's `Protocol`.
///
/// A transport calls them on the loop thread, straight from completion
/// processing, with no Swift task involved: this is RingLoop's fastest API
/// (uvloop's fast path). Every method but ``dataReceived(_:)`` has a default.
///
/// ```swift
/// final class Echo: TransportProtocol {
///     var transport: Transport?
///     func connectionMade(_ transport: Transport) { self.transport = transport }
///     func dataReceived(_ bytes: UnsafeRawBufferPointer) throws { try transport?.write(bytes) }
/// }
/// let server = try await loop.createServer(host: "127.0.0.1", port: 7000) { Echo() }
/// try await server.serveForever()
/// ```
///
/// The order is always: ``connectionMade(_:)``, then ``dataReceived(_:)``
/// any number of times, then at most one ``eofReceived()``, then
/// ``connectionLost(_:)`` exactly once. ``pauseWriting()`` and
/// ``resumeWriting()`` come in pairs, between `connectionMade` and
/// `connectionLost`. An error thrown by a callback goes to the loop's
/// exception handler and aborts this connection only.
public protocol TransportProtocol: AnyObject {
    /// The connection is up. Keep `transport` to write to it.
    func connectionMade(_ transport: Transport) throws
    /// Bytes arrived. The view is borrowed: valid only during the call (its
    /// memory goes back to the loop's receive buffers when it returns).
    /// Copy what must outlive it; ``Transport/write(_:)-(UnsafeRawBufferPointer)``
    /// copies.
    func dataReceived(_ bytes: UnsafeRawBufferPointer) throws
    /// The peer closed its side. Return `true` to keep the connection open
    /// for writing (half-close); `false` (the default) closes it. Once this
    /// side has shut down its writing too (``Transport/writeEOF()``), the
    /// transport closes either way: nothing more can pass.
    func eofReceived() throws -> Bool
    /// The connection is closed: `nil` after an orderly close, the error
    /// otherwise (an ``IOError`` such as `.connectionReset`). Called exactly once.
    func connectionLost(_ error: (any Error)?)
    /// The transport's write buffer went above its high-water mark: stop
    /// producing until ``resumeWriting()``.
    func pauseWriting() throws
    /// The write buffer drained to its low-water mark.
    func resumeWriting() throws
}

/// The defaults: a protocol implements only the callbacks it needs.
extension TransportProtocol {
    /// Does nothing.
    public func connectionMade(_ transport: Transport) throws {}
    /// Returns `false`: the transport closes when the peer does.
    public func eofReceived() throws -> Bool { false }
    /// Does nothing.
    public func connectionLost(_ error: (any Error)?) {}
    /// Does nothing: writes keep queueing past the high-water mark.
    public func pauseWriting() throws {}
    /// Does nothing.
    public func resumeWriting() throws {}
}
