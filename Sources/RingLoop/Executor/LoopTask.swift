import Synchronization

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

    /// True once the operation has returned or thrown: asyncio's
    /// `Task.done()`. Reading it does not count as retrieving an error.
    ///
    /// ```swift
    /// let task = loop.spawn { try await refresh() }
    /// …
    /// if task.isDone { print(await task.result) }
    /// ```
    public var isDone: Bool { handle.record.isFinished }

    /// Lives as long as any copy of the `LoopTask`: its deinit is the moment
    /// nobody can await the task any more.
    private final class Handle: Sendable {
        let record: SpawnRecord
        init(_ record: SpawnRecord) { self.record = record }
        deinit { record.abandon() }
    }
}

/// What the loop keeps per spawned task: the facts that decide whether an
/// error went unretrieved, and the task's cancellation route (see
/// CancellationRoute.swift).
///
/// Handles may go away on any thread, so the three facts (finished,
/// retrieved, abandoned) are bits of one atomic: whichever of `finish` and
/// `abandon` sets its bit second sees the other's and reports, so an
/// unretrieved error is reported exactly once. No lock object: this record
/// exists per spawned task, and an idle server holds thousands, so its
/// fields are laid out for size (56 B, a 64-byte malloc chunk).
final class SpawnRecord: @unchecked Sendable {
    private static let finishedBit: UInt8 = 1, retrievedBit: UInt8 = 2, abandonedBit: UInt8 = 4
    private let flags = Atomic<UInt8>(0)
    /// The recorded wait's id (in the padding after `flags`). Loop thread.
    var waitID: UInt32 = 0
    /// A failed task's error and name, written once by `finish` before it
    /// sets `finishedBit` (release), read only after seeing that bit
    /// (acquire). Boxed, and made only when a task fails: the name is read
    /// back from the task then (`Task.name`) instead of being stored in
    /// every record.
    private var failure: Failure?
    /// Where a report goes: its exception handler (through its inbox).
    let loop: EventLoop
    /// The wait the task is suspended in, while it is. Not retained: the
    /// waiting call holds it until it returns, and disarms the route first.
    /// `AnyObject` rather than `any CancellableWait` keeps the record in a
    /// smaller malloc size class; the cast is paid on cancellation only.
    unowned(unsafe) var waitTarget: AnyObject?
    /// The job (the task) the route serves, once its first step ran on the
    /// loop; 0 for none. Child tasks share the record as executor, not this.
    var owner: UInt = 0

    private final class Failure: Sendable {
        let error: any Error
        let taskName: String?
        init(_ error: any Error, _ taskName: String?) {
            self.error = error
            self.taskName = taskName
        }
    }

    init(loop: EventLoop) {
        self.loop = loop
    }

    private func report(_ context: ExceptionContext) { loop.reportFromAnyThread(context) }

    func markRetrieved() { flags.bitwiseOr(Self.retrievedBit, ordering: .sequentiallyConsistent) }

    var isFinished: Bool { flags.load(ordering: .sequentiallyConsistent) & Self.finishedBit != 0 }

    /// The task ended; `error` is nil on success. Called from the task
    /// itself, whose name a report gives.
    func finish(_ error: (any Error)?) {
        // Cancellation is how tasks are stopped, not a failure to report.
        if let error, !(error is CancellationError) { failure = Failure(error, Task.name) }
        let before = flags.bitwiseOr(Self.finishedBit, ordering: .sequentiallyConsistent).oldValue
        if before & Self.abandonedBit != 0, before & Self.retrievedBit == 0, let failure { report(context(failure)) }
    }

    /// Every handle is gone.
    func abandon() {
        let before = flags.bitwiseOr(Self.abandonedBit, ordering: .sequentiallyConsistent).oldValue
        if before & Self.finishedBit != 0, before & Self.retrievedBit == 0, let failure { report(context(failure)) }
    }

    private func context(_ failure: Failure) -> ExceptionContext {
        ExceptionContext(message: "Task exception was never retrieved", error: failure.error, source: .task(failure.taskName))
    }
}
