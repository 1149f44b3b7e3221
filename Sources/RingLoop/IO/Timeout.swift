/// Runs `operation` with a time limit: asyncio's `asyncio.timeout`.
///
/// When `duration` passes first, the operation is cancelled — which on
/// RingLoop cancels the I/O it is waiting on (ASYNC_CANCEL on io_uring) — and
/// ``TimeoutError`` is thrown once it has unwound. Only the timeout that
/// expired fires: an outer `withTimeout` around an inner one that expires sees
/// the inner `TimeoutError` like any other error.
///
/// ```swift
/// let stream = try await withTimeout(.seconds(2)) {
///     try await SocketStream.connect(host: "10.255.255.1", port: 80)
/// }
/// ```
///
/// The operation runs as a child task of the caller, on the same loop.
public nonisolated(nonsending) func withTimeout<T: Sendable>(
    _ duration: Duration,
    _ operation: @escaping @Sendable () async throws -> T
) async throws -> T {
    let loop = try EventLoop.running()
    return try await withThrowingTaskGroup(of: TimeoutRace<T>.self) { group in
        group.addTask { .finished(try await operation()) }
        group.addTask {
            try await loop.sleep(for: duration)
            return .expired
        }
        defer { group.cancelAll() }
        while let first = try await group.next() {
            switch first {
            case .finished(let value):
                return value
            case .expired:
                group.cancelAll()
                // Wait for the operation to unwind, so its I/O is finished
                // before the error reaches the caller.
                while let next = try? await group.next() {
                    if case .finished(let value) = next { return value }
                }
                throw TimeoutError(duration: duration)
            }
        }
        throw CancellationError()
    }
}

private enum TimeoutRace<T: Sendable>: Sendable {
    case finished(T)
    case expired
}
