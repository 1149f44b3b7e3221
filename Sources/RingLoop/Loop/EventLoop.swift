import CUring
import DequeModule
import Glibc
import Logging
import Synchronization

/// An asyncio-style event loop on one thread, over io_uring or epoll.
///
/// The loop runs callbacks (``callSoon(file:line:_:)``), timers
/// (``callLater(_:file:line:_:)``) and Swift tasks: it is a `TaskExecutor`,
/// so `async` code started with ``spawn(name:_:)`` runs every step on the
/// loop thread, as coroutines run on an asyncio loop; and its
/// ``serialExecutor`` runs actors on the loop thread.
///
/// ```swift
/// try EventLoop.run {
///     print("Hello")
///     try await EventLoop.sleep(for: .seconds(1))
///     print("World")
/// }
/// ```
///
/// Thread-safety: a loop belongs to the thread that runs it. From other
/// threads only ``callSoonThreadsafe(_:)``, ``stop()``, ``enqueue(_:)``
/// (through Swift concurrency) and ``TimerHandle/cancel()`` are allowed; the
/// other scheduling calls throw ``EventLoopError/wrongThread(operation:)``
/// while the loop runs. Before the loop runs, or between runs, any one thread
/// at a time may set it up.
public final class EventLoop: @unchecked Sendable {
    // MARK: Configuration

    /// The backend actually running: `.uring` or `.epoll`, never `.auto`.
    public let backend: Backend
    /// Why `.auto` fell back to epoll, when it did (for example
    /// `io_uring_setup failed: EPERM (Operation not permitted)`).
    public let backendFallbackReason: String?
    /// Debug mode: slow-callback warnings. Set by `debug:` or `RINGLOOP_DEBUG=1`.
    public let debug: Bool
    /// In debug mode, callbacks and task steps slower than this are logged.
    public var slowCallbackDuration: Duration = .milliseconds(100)
    /// How late a timer may fire so that wake-ups for nearby deadlines merge
    /// into one (asyncio's `clock_resolution`, the kernel's 50 µs default
    /// timer slack). epoll's wait already has the kernel's slack; io_uring's
    /// wait has none, so the loop adds this much to it. Zero wakes at each
    /// deadline exactly; a negative value counts as zero. Set it on the
    /// loop's thread.
    public var timerSlack: Duration = .microseconds(50) {
        didSet { timerSlackNanoseconds = Int64(clamping: max(.zero, timerSlack).clampedNanoseconds) }
    }
    @exclusivity(unchecked) var timerSlackNanoseconds: Int64 = 50_000
    /// Buffered file reads done inline (RWF_NOWAIT) this iteration; past
    /// ``inlineReadBudget`` a read takes the suspending path so others run.
    @exclusivity(unchecked) var inlineReads = (iteration: 0, count: 0)
    static let inlineReadBudget = 64
    /// Inline reads so far (tests and measurements watch it).
    @exclusivity(unchecked) var inlineReadsDone = 0
    /// Where the loop logs: fallbacks, slow callbacks, unhandled errors.
    public let logger: Logger
    /// The pool behind ``offload(_:)`` and the epoll backend's file I/O.
    public let threadPool: ThreadPool

    let io: IOBackend
    let ownsThreadPool: Bool

    // MARK: Loop-thread state
    //
    // Touched only on the loop thread, and never while another access to the
    // same property is open, so the runtime's dynamic exclusivity checks
    // (a TLS lookup and a hash insert per access, 40% of a callSoon round
    // trip when measured) are switched off for these properties.

    @exclusivity(unchecked) var ready = Deque<ReadyItem>()
    @exclusivity(unchecked) var timers = TimerQueue()
    let operations = OperationTable()
    /// Transports, servers and listeners whose completions come to a callback.
    let handlers = HandlerTable()
    /// Memory for send queues and stream inbound queues.
    let blocks = BlockPool()
    let sendScratch = SendScratchPool()
    /// Transports with bytes to send, flushed once per iteration before the poll.
    @exclusivity(unchecked) var flushList: [Transport] = []
    /// Transports whose receive ended for want of buffers, re-armed as buffers return.
    @exclusivity(unchecked) var buffersWaiters: [Transport] = []
    @exclusivity(unchecked) var completions: [Completion] = []
    @exclusivity(unchecked) var inboxBuffer = Deque<InboxItem>()
    @exclusivity(unchecked) var stopping = false
    @exclusivity(unchecked) var pendingExceptions: [ExceptionContext] = []
    @exclusivity(unchecked) var exceptionHandlerStorage: ExceptionHandler?
    /// The signal pipe and handlers, made by the first ``addSignalHandler(_:_:)``.
    @exclusivity(unchecked) var signalWatcher: SignalWatcher?
    /// Serves the main actor while this loop runs on the main thread; made
    /// by the first run there (MainActorBridge.swift).
    @exclusivity(unchecked) var mainActorBridge: MainActorBridge?
    /// ``addReader(_:_:)`` and ``addWriter(_:_:)`` watches.
    @exclusivity(unchecked) var watches: [DescriptorWatch.Key: DescriptorWatch] = [:]
    /// Iterations (plus callbacks) left before a zero-timeout poll must enter
    /// the kernel; keeps I/O from starving behind a busy ready queue.
    @exclusivity(unchecked) var ioCheckBudget = EventLoop.ioCheckInterval
    static let ioCheckInterval = 64
    /// Test hook: sees the timeout of every poll (`nil`: wait forever) and
    /// how many completions a blocking wait is to hold out for.
    @exclusivity(unchecked) var pollObserver: ((_ timeout: Duration?, _ expected: Int) -> Void)?
    /// Swift jobs (task steps and actor jobs) run so far: lets tests count
    /// the executor work an operation costs, exactly.
    @exclusivity(unchecked) var jobsRun = 0
    /// The job the loop is running (its ``UnownedJob/identity``), 0 between
    /// jobs: a task's steps are all the same job, so this tells which task
    /// is running without asking the runtime (see CancellationRoute.swift).
    @exclusivity(unchecked) var runningJob: UInt = 0
    /// The spawn record of the task step the loop is running, if the loop
    /// spawned that task (see SpawnRecord+Executor.swift). A strong
    /// reference: `unowned(unsafe)` was measured to cost more (every read
    /// of it retained a copy).
    @exclusivity(unchecked) var runningRecord: SpawnRecord?
    /// Waits that went through a route rather than a handler of their own
    /// (tests count them).
    @exclusivity(unchecked) var routedWaits = 0
    /// Round trips a task made through the inbox to get back to the loop
    /// thread after a wait resumed it elsewhere (``returnToLoopThread()``).
    @exclusivity(unchecked) var loopReturns = 0
    /// Receives the last batch of completions brought (transports count
    /// them): how many the next blocking wait expects again (see
    /// ``URingOptions/batchWaitMicroseconds``).
    @exclusivity(unchecked) var receivesThisPoll = 0
    /// A receive of the last batch filled its whole buffer: a bulk stream,
    /// whose next bytes are already on their way. The next wait then returns
    /// at the first completion instead of holding out for a batch (Docs/Transports.md,
    /// "One enter per iteration, and batched waits").
    @exclusivity(unchecked) var bulkReceiveThisPoll = false
    /// Iterations run so far (tests bound latencies in iterations, not time).
    @exclusivity(unchecked) var iterations = 0
    /// The executor references jobs run on, made once.
    @exclusivity(unchecked) var unownedTaskExecutor: UnownedTaskExecutor!
    @exclusivity(unchecked) var unownedSerialExecutor: UnownedSerialExecutor!

    /// Set once at the end of `init` (it needs `self`), never changed.
    private var serialExecutorStorage: LoopSerialExecutor!
    /// The serial executor of actors that run on this loop (see
    /// ``asUnownedSerialExecutor()``).
    public var serialExecutor: LoopSerialExecutor { serialExecutorStorage }

    // MARK: Cross-thread state

    let inbox = Inbox()
    /// Where the jobs of this loop's actors go once it has closed.
    let orphanedActorJobs = OrphanedActorJobs()
    /// `pthread_self()` of the running thread, 0 when not running.
    let ownerThread = Atomic<UInt>(0)
    /// Held while the loop starts running, and by other threads that touch
    /// loop state while it is not running: so such a touch can never race a
    /// thread starting `runForever` (see ``onLoopThread(_:)``).
    let runStateLock = Locked(())
    /// The fork generation the loop was made under (see ``ProcessGuards``).
    let forkGeneration = ProcessGuards.generation
    /// The thread's signal mask before `runForever` blocked SIGPIPE.
    @exclusivity(unchecked) var savedSignalMask = sigset_t()
    /// A small pool for name resolution, made on first use, so a slow
    /// resolver can never hold up file I/O on ``threadPool``.
    let resolverPool = Locked<ThreadPool?>(nil)
    let closedFlag = Atomic<Bool>(false)
    let tasks = Locked(TaskRegistry())

    /// Creates a loop.
    ///
    /// - Parameters:
    ///   - backend: `nil` uses ``Backend/fromEnvironment()`` (`RINGLOOP_BACKEND`, else `.auto`).
    ///   - debug: `nil` reads `RINGLOOP_DEBUG` (`1`/`true` enables it).
    ///   - threadPool: a pool to share; by default the loop starts one with one
    ///     thread per core and shuts it down in ``close()``.
    ///   - ringEntries: io_uring submission-queue size.
    ///   - receiveBuffers: the loop-wide buffers connections receive into.
    ///   - logger: where the loop logs.
    /// - Throws: ``EventLoopError/backendUnavailable(_:reason:)`` when a forced
    ///   backend cannot be set up; ``EventLoopError/invalidArgument(_:)`` for a
    ///   bad `RINGLOOP_BACKEND`, `RINGLOOP_URING_OPTIONS`, `ringEntries` or `receiveBuffers`;
    ///   ``EventLoopError/threadStartFailed(purpose:errno:)`` when the loop's
    ///   own pool cannot start a thread.
    public convenience init(
        backend: Backend? = nil,
        debug: Bool? = nil,
        threadPool: ThreadPool? = nil,
        ringEntries: Int = 256,
        receiveBuffers: ReceiveBufferConfiguration = .default,
        logger: Logger = Logger(label: "RingLoop")
    ) throws(EventLoopError) {
        try self.init(backend: backend, debug: debug, threadPool: threadPool, ringEntries: ringEntries,
                      receiveBuffers: receiveBuffers, logger: logger, uringOptions: try .fromEnvironment(), uringProbeFailure: nil)
    }

    /// A loop as ``init(backend:debug:threadPool:ringEntries:receiveBuffers:logger:)``
    /// makes it by default, with `poolThreads` threads in its own pool
    /// (``LoopGroup`` gives each loop its share of the cores).
    convenience init(backend: Backend?, poolThreads: Int) throws(EventLoopError) {
        try self.init(backend: backend, debug: nil, threadPool: nil, ringEntries: 256, logger: Logger(label: "RingLoop"),
                      uringOptions: try .fromEnvironment(), uringProbeFailure: nil, poolThreads: poolThreads)
    }

    /// The designated initializer, with test hooks: `uringOptions` turns
    /// io_uring features off to exercise their fallbacks, `uringProbeFailure`
    /// simulates a kernel refusing io_uring (it returns the errno to fail with).
    init(
        backend requested: Backend?,
        debug: Bool?,
        threadPool: ThreadPool?,
        ringEntries: Int,
        receiveBuffers: ReceiveBufferConfiguration = .default,
        logger: Logger,
        uringOptions: URingOptions = URingOptions(),
        uringProbeFailure: (() -> Int32?)?,
        poolThreads: Int = ThreadPool.defaultThreadCount
    ) throws(EventLoopError) {
        guard ringEntries >= 1, ringEntries <= 32768 else {
            throw .invalidArgument("ringEntries must be in 1...32768, got \(ringEntries)")
        }
        try receiveBuffers.validate()
        let choice: Backend
        if let requested { choice = requested } else { choice = try Backend.fromEnvironment() }
        let pool: ThreadPool
        if let threadPool {
            pool = threadPool
        } else {
            do { pool = try ThreadPool(threads: poolThreads) } catch {
                throw .threadStartFailed(purpose: "the loop's thread pool", errno: error)
            }
        }
        let made: (IOBackend, fallbackReason: String?)
        do {
            made = try IOBackend.make(choice, ringEntries: UInt32(ringEntries), receiveBuffers: receiveBuffers, pool: pool,
                                      uringOptions: uringOptions, uringProbeFailure: uringProbeFailure)
        } catch {
            if threadPool == nil { pool.shutdown() }
            throw error
        }
        self.io = made.0
        self.backend = made.0.kind
        self.backendFallbackReason = made.fallbackReason
        self.threadPool = pool
        self.ownsThreadPool = threadPool == nil
        self.logger = logger
        self.debug = debug ?? EventLoop.debugFromEnvironment
        if let reason = made.fallbackReason {
            logger.notice("io_uring unavailable, using epoll", metadata: ["reason": "\(reason)"])
        }
        if case .uring(let ring) = made.0 {
            ring.onDroppedCompletions = { [logger] message in logger.critical("\(message)") }
        }
        completions.reserveCapacity(256)
        serialExecutorStorage = LoopSerialExecutor(loop: self)
        unownedTaskExecutor = UnownedTaskExecutor(ordinary: self)
        unownedSerialExecutor = serialExecutor.asUnownedSerialExecutor()
    }

    deinit {
        if !closedFlag.load(ordering: .relaxed) { teardown() }
    }

    static var debugFromEnvironment: Bool {
        guard let raw = getenv("RINGLOOP_DEBUG") else { return false }
        let value = String(cString: raw).lowercased()
        return value == "1" || value == "true" || value == "yes"
    }

    // MARK: State

    /// The loop's monotonic clock: asyncio's `loop.time()`.
    public var time: LoopInstant { .now }

    /// True while `runForever` or `runUntilComplete` is executing.
    public var isRunning: Bool { ownerThread.load(ordering: .relaxed) != 0 }

    /// True after ``close()``.
    public var isClosed: Bool { closedFlag.load(ordering: .relaxed) }

    /// The backend as it was set up, for logs and reports: for io_uring the
    /// ring size, the set-up flags the kernel accepted and the optional
    /// features probed; for epoll whether `epoll_pwait2` is used.
    ///
    /// ```swift
    /// print(loop.backendDescription)
    /// // io_uring (256 entries, setup SINGLE_ISSUER|DEFER_TASKRUN; features: ...)
    /// ```
    public var backendDescription: String { io.summary }

    /// True on the thread currently running this loop.
    @inline(__always)
    var isOnLoopThread: Bool { ownerThread.load(ordering: .relaxed) == UInt(pthread_self()) }

    /// The loop running on this thread, or `nil` outside any running loop: the
    /// optional form of asyncio's `get_running_loop()`. See ``running()`` for
    /// the throwing form.
    public static var current: EventLoop? { CurrentLoop.loop }

    /// The loop running on this thread.
    ///
    /// - Throws: ``EventLoopError/noRunningLoop`` outside a running loop.
    public static func running() throws(EventLoopError) -> EventLoop {
        guard let loop = CurrentLoop.loop else { throw .noRunningLoop }
        return loop
    }

    /// Runs `body` at once when the calling thread may touch loop state (it is
    /// running the loop, or nobody is), otherwise on the loop through the
    /// inbox. The one hop used by every thread-safe entry point: `stop()`,
    /// timer and sleep cancellation, operation cancellation.
    ///
    /// A thread that finds the loop not running runs `body` under the
    /// run-state lock, which `runForever` takes to start: so `body` can never
    /// overlap the start of a run on another thread. If the loop is running,
    /// `body` waits in the inbox for the loop thread.
    ///
    /// Returns false when `body` could neither run nor be queued: the loop
    /// finished closing meanwhile (its backend is gone, so `body` must not run).
    @discardableResult
    func onLoopThread(_ body: @escaping @Sendable () -> Void) -> Bool {
        let me = UInt(pthread_self())
        if ownerThread.load(ordering: .acquiring) == me {
            body()
            return true
        }
        let ranHere = runStateLock.withLock { _ -> Bool in
            guard ownerThread.load(ordering: .acquiring) == 0, !inbox.isClosed else { return false }
            // Act as the loop thread while the lock keeps runForever out, so
            // a nested onLoopThread (a transport closing inside a stream's
            // deinit) runs directly instead of taking the lock again.
            ownerThread.store(me, ordering: .releasing)
            defer { ownerThread.store(0, ordering: .releasing) }
            body()
            return true
        }
        if ranHere { return true }
        return (try? callSoonThreadsafe(body)) != nil
    }

    /// Throws unless the calling thread is the one running this loop: what
    /// every I/O operation requires, since it touches the operation table.
    @inline(__always)
    func requireLoopThread(_ operation: @autoclosure () -> String) throws(EventLoopError) {
        try checkLoopThread(operation())
        if !isOnLoopThread { throw offLoop(operation()) }
    }

    /// The error for a call made off this loop: `.wrongLoop` when the caller
    /// is on another running loop (the likelier mistake with a LoopGroup, and
    /// one `.wrongThread`'s advice about `Task { }` would not fix), else
    /// `.wrongThread`. Only on the error path, so the thread-local read costs
    /// nothing on the hot one.
    func offLoop(_ operation: String) -> EventLoopError {
        if let current = CurrentLoop.loop, current !== self { return .wrongLoop(operation: operation) }
        return .wrongThread(operation: operation)
    }

    /// Throws when the loop is closed, or when a loop-thread-only call comes
    /// from another thread while the loop runs. One relaxed atomic load and a
    /// compare: cheap enough to do always, not only in debug mode.
    @inline(__always)
    func checkLoopThread(_ operation: @autoclosure () -> String) throws(EventLoopError) {
        if closedFlag.load(ordering: .relaxed) { throw .closed(operation: operation()) }
        if forkGeneration != ProcessGuards.forkGeneration.load(ordering: .relaxed) { throw .usedAfterFork(operation: operation()) }
        let owner = ownerThread.load(ordering: .relaxed)
        if owner != 0, owner != UInt(pthread_self()) { throw offLoop(operation()) }
    }
}
