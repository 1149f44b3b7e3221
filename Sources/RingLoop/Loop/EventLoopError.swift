/// Misuse of an ``EventLoop``, with asyncio's meanings.
///
/// Each case says what was attempted; ``description`` is a sentence a log
/// reader understands without the source.
///
/// ```swift
/// do { try loop.close() } catch EventLoopError.closeWhileRunning { … }
/// ```
public enum EventLoopError: Error, Equatable, Sendable, CustomStringConvertible {
    /// `runForever` / `runUntilComplete` on a loop that is already running.
    case alreadyRunning
    /// Running a loop on a thread where another loop is already running.
    case anotherLoopRunning
    /// `EventLoop.run` called from inside a running loop.
    case runInsideRunningLoop
    /// Any use of a loop after `close()`; `operation` names the call.
    case closed(operation: String)
    /// `close()` on a running loop.
    case closeWhileRunning
    /// The loop stopped before `runUntilComplete`'s operation finished.
    case stoppedBeforeCompletion
    /// A call that is not thread-safe (`callSoon`, `callLater`, `callAt`, I/O)
    /// made from a thread other than the one running the loop.
    case wrongThread(operation: String)
    /// The same kind of call made from a task or callback running on another
    /// ``EventLoop`` (another loop of a ``LoopGroup``, or another loop on this
    /// thread): a descriptor, timer or task belongs to the loop that made it.
    case wrongLoop(operation: String)
    /// `EventLoop.running()` outside a running loop.
    case noRunningLoop
    /// A forced backend could not be set up; `reason` names the failing call and errno.
    case backendUnavailable(Backend, reason: String)
    /// The loop's io_uring ring only accepts submissions from the thread that
    /// first ran it (`IORING_SETUP_SINGLE_ISSUER`); it was run from another.
    case boundToAnotherThread
    /// An argument was out of range; `detail` says which and why.
    case invalidArgument(String)
    /// A loop made before `fork()` was used in the child: its ring or epoll
    /// set is shared with the parent, so the child must make its own loop.
    case usedAfterFork(operation: String)
    /// A thread the loop needs could not be started (`purpose` names it: a
    /// loop thread of a ``LoopGroup``, the loop's thread pool, the name
    /// resolver's): the process or the system is out of threads or memory.
    case threadStartFailed(purpose: String, errno: Errno)

    public var description: String {
        switch self {
        case .alreadyRunning: "This event loop is already running."
        case .anotherLoopRunning: "Cannot run the event loop while another loop is running on this thread."
        case .runInsideRunningLoop: "EventLoop.run() cannot be called from a running event loop."
        case .closed(let operation): "\(operation): the event loop is closed."
        case .closeWhileRunning: "Cannot close a running event loop."
        case .stoppedBeforeCompletion: "The event loop stopped before the operation completed."
        case .wrongThread(let operation):
            "\(operation) was called from a thread other than the event loop's. A `Task { }` or `Task.detached` "
                + "runs on Swift's global executor: start the task with `loop.spawn { }` (or "
                + "`Task(executorPreference: loop)`), or hand the call over with `loop.submit` or `callSoonThreadsafe`. "
                + "In an actor's method: give the actor the loop as its executor "
                + "(`nonisolated var unownedExecutor: UnownedSerialExecutor { loop.asUnownedSerialExecutor() }`)."
        case .wrongLoop(let operation):
            "\(operation) was called from a task on another event loop. A stream, file, listener or timer belongs "
                + "to the loop that made it (in a LoopGroup, each connection lives on the loop that accepted it): "
                + "hand the call over with `owner.submit { }`, or do the work on the owning loop."
        case .noRunningLoop:
            "No event loop is running on this thread. Call this inside `EventLoop.run { }` or a task started with "
                + "`loop.spawn { }`; a `Task { }` or `Task.detached` runs on Swift's global executor, not on the loop."
        case .backendUnavailable(let backend, let reason): "The \(backend) backend is unavailable: \(reason)."
        case .usedAfterFork(let operation):
            "\(operation): this event loop was made before fork(); a child process must make its own loop."
        case .boundToAnotherThread:
            "This loop's io_uring ring is bound to the thread that first ran it (SINGLE_ISSUER); run it there."
        case .invalidArgument(let detail): "Invalid argument: \(detail)."
        case .threadStartFailed(let purpose, let errno):
            "Cannot start a thread for \(purpose): \(errno). The process or the system is out of threads "
                + "(ulimit -u, kernel.threads-max, a cgroup's pids.max) or of memory for their stacks."
        }
    }
}
