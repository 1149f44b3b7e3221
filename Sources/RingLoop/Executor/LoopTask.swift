/// A task started with ``EventLoop/spawn(name:_:)``: asyncio's `Task`.
///
/// Await ``value`` (or ``result``) to get what it returned or threw; cancel it
/// with ``cancel()``. Copies share one task.
///
/// Like asyncio's "Task exception was never retrieved": when a spawned task
/// ends with an error and nobody retrieved it (every copy of its `LoopTask`
/// is gone without ``value`` or ``result`` having been awaited), the error
/// goes to the loop's exception handler with source `.task(name)`. A task
/// that ends with `CancellationError` is not reported; neither is one whose
/// handle was discarded but which succeeded.
///
/// ```swift
/// let task = loop.spawn(name: "fetch") { try await fetch() }
/// let page = try await task.value
///
/// loop.spawn { try await notify() }   // an error here is reported, not lost
/// ```
public struct LoopTask<Success: Sendable>: Sendable {
    let task: Task<Success, any Error>
    private let handle: Handle

    init(task: Task<Success, any Error>, record: SpawnRecord) {
        self.task = task
        handle = Handle(record)
    }

    /// The task's value, or its error. Retrieving it (even as an error) means
    /// the error is handled and will not be reported.
    public var value: Success {
        get async throws {
            handle.record.markRetrieved()
            return try await task.value
        }
    }

    /// The task's outcome as a `Result`.
    public var result: Result<Success, any Error> {
        get async {
            handle.record.markRetrieved()
            return await task.result
        }
    }

    /// Cancels the task (it may still finish normally).
    public func cancel() { task.cancel() }

    /// True once ``cancel()`` was called.
    public var isCancelled: Bool { task.isCancelled }

    /// Lives as long as any copy of the `LoopTask`: its deinit is the moment
    /// nobody can await the task any more.
    private final class Handle: Sendable {
        let record: SpawnRecord
        init(_ record: SpawnRecord) { self.record = record }
        deinit { record.abandon() }
    }
}

/// What a spawned task and its handles share, to decide whether an error
/// went unretrieved. Guarded by a lock: handles may go away on any thread.
final class SpawnRecord: Sendable {
    private struct State {
        var error: (any Error)?
        var finished = false
        var retrieved = false
        var abandoned = false
    }
    private let state = Locked(State())
    let name: String?
    /// Hands a report to the loop's exception handler (through its inbox).
    private let report: @Sendable (ExceptionContext) -> Void

    init(name: String?, report: @escaping @Sendable (ExceptionContext) -> Void) {
        self.name = name
        self.report = report
    }

    func markRetrieved() { state.withLock { $0.retrieved = true } }

    /// The task ended; `error` is nil on success.
    func finish(_ error: (any Error)?) {
        // Cancellation is how tasks are stopped, not a failure to report.
        let error = error is CancellationError ? nil : error
        let unretrieved = state.withLock { s -> (any Error)? in
            s.finished = true
            s.error = error
            return s.abandoned && !s.retrieved ? error : nil
        }
        if let unretrieved { report(context(unretrieved)) }
    }

    /// Every handle is gone.
    func abandon() {
        let unretrieved = state.withLock { s -> (any Error)? in
            s.abandoned = true
            return s.finished && !s.retrieved ? s.error : nil
        }
        if let unretrieved { report(context(unretrieved)) }
    }

    private func context(_ error: any Error) -> ExceptionContext {
        ExceptionContext(message: "Task exception was never retrieved", error: error, source: .task(name))
    }
}
