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
/// The operation runs as a child task of the caller, on the same loop. Its
/// result need not be `Sendable`: it is handed over (`sending`), so a
/// protocol object or another loop-thread class can come back from it.
///
/// ```swift
/// let (transport, client) = try await withTimeout(.seconds(2)) {
///     try await loop.createConnection(host: "db.internal", port: 5432) { Client() }
/// }
/// ```
public nonisolated(nonsending) func withTimeout<T>(
    _ duration: Duration,
    _ operation: sending @escaping () async throws -> sending T
) async throws -> sending T {
    let loop = try EventLoop.running()
    // The operation is `sending`: the child task is its only user.
    let work = Handover(operation)
    return try await withThrowingTaskGroup(of: TimeoutRace<T>.self) { group in
        group.addTask { .finished(Handover(try await work.value())) }
        group.addTask {
            try await loop.sleep(for: duration)
            return .expired
        }
        defer { group.cancelAll() }
        while let first = try await group.next() {
            switch first {
            case .finished(let value):
                return value.take()
            case .expired:
                group.cancelAll()
                // Wait for the operation to unwind, so its I/O is finished
                // before the error reaches the caller.
                while let next = try? await group.next() {
                    if case .finished(let value) = next { return value.take() }
                }
                throw TimeoutError(duration: duration)
            }
        }
        throw CancellationError()
    }
}

private enum TimeoutRace<T>: Sendable {
    case finished(Handover<T>)
    case expired
}

/// A `sending` value on its way between the caller and the child task: the
/// operation into it, its result out of it. Unchecked, but sound: each
/// value is `sending` (no one else holds it), and only one side uses it at a
/// time (the caller takes the result after the child task has ended).
private struct Handover<T>: @unchecked Sendable {
    let value: T
    init(_ value: sending T) { self.value = value }
    consuming func take() -> sending T { value }
}
