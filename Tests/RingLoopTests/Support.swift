import Glibc
import Logging
@testable import RingLoop
import Synchronization
import Testing

/// What this machine allows, checked once: tests gate on it instead of
/// failing where a feature is missing (a container's seccomp profile that
/// forbids io_uring, a host without IPv6, no resolver).
enum Capabilities {
    /// nil when io_uring can be set up; otherwise why not.
    static let uringUnavailable: String? = {
        do {
            let loop = try EventLoop(backend: .uring)
            try loop.close()
            return nil
        } catch {
            return "\(error)"
        }
    }()

    static let ipv6: Bool = {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 }
        }
    }()

    static let resolver: Bool = {
        var list: UnsafeMutablePointer<addrinfo>?
        let ok = getaddrinfo("localhost", nil, nil, &list) == 0
        if let list { freeaddrinfo(list) }
        return ok
    }()
}

/// The backends every loop and I/O test runs on: both, or epoll alone where
/// io_uring is not allowed (the io_uring cases are then skipped, and the
/// reason is printed once).
let allBackends: [Backend] = {
    if let reason = Capabilities.uringUnavailable {
        print("note: io_uring test cases are skipped: \(reason)")
        return [.epoll]
    }
    return [.uring, .epoll]
}()

/// io_uring alone, for backend-specific tests; empty where it is not allowed.
let uringOnly: [Backend] = allBackends.filter { $0 == .uring }

/// Runs `body` on a fresh thread and awaits it without blocking a
/// cooperative-pool thread, so a loop under test never starves Swift
/// Testing's own executor.
///
/// A hung body fails its own test: when the test's time limit cancels the
/// awaiting task, the wait ends with an error and the run goes on (the stuck
/// thread is abandoned; it cannot be stopped from outside).
func onNewThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await untilDoneOrHung { once in
        do {
            try startDetachedThread { once.resume(with: Result { try body() }) }
        } catch {
            once.resume(with: .failure(error))
        }
    }
}

/// `task`'s value, awaited so that the test's time limit ends the wait
/// (`Task.value` itself ignores cancellation): a task that never finishes
/// fails its test instead of hanging the run.
func valueOrHung<T: Sendable>(_ task: Task<T, any Error>) async throws -> T {
    try await untilDoneOrHung { once in
        Task { once.resume(with: await task.result) }
    }
}

/// Starts work that reports through `once`, and waits for it or for the
/// test's cancellation, whichever comes first (then with ``TestHung``).
private func untilDoneOrHung<T: Sendable>(_ start: (ResumeOnce<T>) -> Void) async throws -> T {
    let once = ResumeOnce<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            once.set(continuation)
            start(once)
        }
    } onCancel: {
        once.resume(with: .failure(TestHung()))
    }
}

/// The error a test body's wait ends with when the test is cancelled.
struct TestHung: Error, CustomStringConvertible {
    var description: String { "the test body did not finish in its time limit; its thread is abandoned" }
}

/// Resumes a continuation exactly once, whichever side comes first.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private let state = Mutex<(continuation: CheckedContinuation<T, any Error>?, pending: Result<T, any Error>?, done: Bool)>((nil, nil, false))

    func set(_ continuation: CheckedContinuation<T, any Error>) {
        let early = state.withLock { s -> Result<T, any Error>? in
            if let pending = s.pending { s.done = true; s.pending = nil; return pending }
            s.continuation = continuation
            return nil
        }
        if let early { continuation.resume(with: early) }
    }

    func resume(with result: Result<T, any Error>) {
        let continuation = state.withLock { s -> CheckedContinuation<T, any Error>? in
            guard !s.done else { return nil }
            if let c = s.continuation { s.done = true; s.continuation = nil; return c }
            s.pending = result
            return nil
        }
        continuation?.resume(with: result)
    }
}

/// The root of every suite, serialized: the tests share process-wide state
/// (the descriptor table they count, signal dispositions, rlimits, the
/// environment), so they run one at a time however they are started, a
/// plain `swift test` included.
@Suite(.serialized) enum AllSuites {}

/// Checks around every test of a suite that it leaves nothing behind: as
/// many open descriptors after it as before. The tests run one at a time
/// (``AllSuites``), so the count is only the test's own.
struct ResourceCheck: TestTrait, SuiteTrait, TestScoping {
    var isRecursive: Bool { true }

    /// On unless `RINGLOOP_SERIAL_TESTS=0`: the sanitizer passes turn it off,
    /// because a sanitizer's runtime opens descriptors of its own.
    static let enabled = getenv("RINGLOOP_SERIAL_TESTS").map { String(cString: $0) != "0" } ?? true

    func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        // Once per case, not per suite; only in serial runs.
        guard testCase != nil, Self.enabled else { return try await function() }
        let before = openDescriptorCount()
        try await function()
        // A closed descriptor may take a moment to leave /proc (deferred fput).
        var after = openDescriptorCount()
        for _ in 0..<50 where after != before {
            usleep(2_000)
            after = openDescriptorCount()
        }
        #expect(after == before, "\(test.name) leaked \(after - before) descriptor(s)")
    }
}

extension Trait where Self == ResourceCheck {
    /// The descriptor-leak check, applied to every suite.
    static var checksResources: ResourceCheck { ResourceCheck() }
}

/// After a test's loop is closed: nothing may be left in flight.
func expectClosedClean(_ loop: EventLoop, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(loop.operations.inFlight == 0, "operations left in flight at close", sourceLocation: sourceLocation)
    #expect(loop.handlers.count == 0, "transports or listeners left registered at close", sourceLocation: sourceLocation)
    #expect(loop.pendingTaskCount == 0, "spawned tasks left pending at close", sourceLocation: sourceLocation)
}

/// Makes a loop on a new thread, hands it to `body`, and closes it after.
func withLoop<T: Sendable>(
    _ backend: Backend, debug: Bool = false, logger: Logger? = nil,
    _ body: @escaping @Sendable (EventLoop) throws -> T
) async throws -> T {
    try await onNewThread {
        let loop = try EventLoop(backend: backend, debug: debug, logger: logger ?? Logger(label: "test"))
        defer {
            try? loop.close()
            expectClosedClean(loop)
        }
        return try body(loop)
    }
}

/// A thread-safe list, for recording what callbacks saw.
final class Recorder<Element: Sendable>: Sendable {
    private let items = Locked<[Element]>([])
    func append(_ item: Element) { items.withLock { $0.append(item) } }
    var all: [Element] { items.withLock { $0 } }
    var count: Int { items.withLock { $0.count } }
}

/// A swift-log handler that keeps every message with its metadata, so
/// tests can assert on logs.
struct CapturingLogHandler: LogHandler {
    let records: Recorder<(Logger.Level, String)>
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let metadata = event.metadata.map { " \($0.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))" } ?? ""
        records.append((event.level, "\(event.message)\(metadata)"))
    }
}

func capturingLogger() -> (Logger, Recorder<(Logger.Level, String)>) {
    let records = Recorder<(Logger.Level, String)>()
    return (Logger(label: "capture") { _ in CapturingLogHandler(records: records) }, records)
}

var currentThreadID: UInt { UInt(pthread_self()) }

/// The calling thread's name, as `top -H` shows it.
var currentThreadName: String {
    let fd = open("/proc/thread-self/comm", O_RDONLY)
    guard fd >= 0 else { return "?" }
    defer { close(fd) }
    var bytes = [UInt8](repeating: 0, count: 32)
    let n = read(fd, &bytes, bytes.count)
    return String(decoding: bytes.prefix(max(0, n)).filter { $0 != 0x0A }, as: UTF8.self)
}

/// A mutable box for single-thread use inside one loop test.
final class Box<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// A thread-safe flag that closures can capture.
final class Flag: Sendable {
    private let value = Atomic<Bool>(false)
    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}

private func startThread(_ body: @escaping @Sendable () -> Void) throws -> pthread_t {
    try NativeThread.start(name: "test-thread", body)
}

/// Starts `body` on a new thread; returns a function that joins it.
func onNewThreadSync(_ body: @escaping @Sendable () -> Void) throws -> @Sendable () -> Void {
    let thread = try startThread(body)
    return { pthread_join(thread, nil) }
}

/// Starts `body` on a new detached thread.
func startDetachedThread(_ body: @escaping @Sendable () -> Void) throws {
    pthread_detach(try startThread(body))
}

/// Runs `body` as the main task of a fresh loop on its own thread.
func onLoop<T: Sendable>(
    _ backend: Backend, ringEntries: Int = 256,
    _ body: @escaping @Sendable (EventLoop) async throws -> T
) async throws -> T {
    try await onNewThread {
        let loop = try EventLoop(backend: backend, ringEntries: ringEntries)
        defer {
            try? loop.close()
            expectClosedClean(loop)
        }
        return try loop.runUntilComplete { try await body(loop) }
    }
}

/// The descriptors open in this process right now (tests run serially, so
/// the count is only ours).
func openDescriptorCount() -> Int {
    guard let dir = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(dir) }
    var count = 0
    while readdir(dir) != nil { count += 1 }
    return count - 3  // ".", ".." and the directory stream itself
}

/// Deterministic bytes for payloads: eight per generator step, written into
/// raw storage (tests generate tens of MiB, in debug builds).
func pattern(_ count: Int, seed: UInt64 = 1) -> [UInt8] {
    var state = seed &+ 1
    return [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        let raw = UnsafeMutableRawPointer(buffer.baseAddress!)
        var offset = 0
        while offset < count {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            var word = state ^ (state >> 29)
            let n = Swift.min(8, count - offset)
            withUnsafeBytes(of: &word) { (raw + offset).copyMemory(from: $0.baseAddress!, byteCount: n) }
            offset += n
        }
        initialized = count
    }
}

/// A unique path under the temporary directory.
func temporaryPath(_ name: String) -> String {
    "/tmp/ringloop-test-\(getpid())-\(UInt64.random(in: 0...UInt64.max))-\(name)"
}

/// Writes back and drops the page cache's copy of `fd`'s bytes in
/// `offset..<offset+length`, and reports whether they are really gone.
/// `POSIX_FADV_DONTNEED` is advice: a page still under writeback or briefly
/// pinned survives it, so this checks with `mincore(2)` and tries again a few
/// times before giving up.
func dropCachedPages(_ fd: Int32, offset: Int, length: Int) -> Bool {
    let pageSize = Int(sysconf(Int32(_SC_PAGESIZE)))
    let start = offset / pageSize * pageSize
    let mapped = (offset + length - start + pageSize - 1) / pageSize * pageSize
    var resident = [UInt8](repeating: 0, count: mapped / pageSize)
    for attempt in 0..<20 {
        _ = fsync(fd)
        _ = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)
        guard let map = mmap(nil, mapped, PROT_READ, MAP_SHARED, fd, off_t(start)),
              map != MAP_FAILED else { return false }
        let checked = mincore(map, mapped, &resident) == 0
        munmap(map, mapped)
        if checked && resident.allSatisfy({ $0 & 1 == 0 }) { return true }
        usleep(UInt32(1000 * (attempt + 1)))
    }
    return false
}

/// A plain client socket connected to 127.0.0.1:`port`, for driving servers
/// without a loop: blocking unless `nonBlocking` (then the connect is only
/// started), with a receive buffer of `receiveBuffer` bytes (Linux rounds
/// small sizes up to its minimum) and TCP_NODELAY if asked.
func rawConnect(port: Int, nonBlocking: Bool = false, receiveBuffer: Int32? = nil, noDelay: Bool = false) -> Int32 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | (nonBlocking ? Int32(SOCK_NONBLOCK.rawValue) : 0), 0)
    if var size = receiveBuffer { setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size)) }
    _ = try? SocketAddress(ip: "127.0.0.1", port: port).withSockAddr { connect(fd, $0, $1) }
    if noDelay {
        var one: Int32 = 1
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }
    return fd
}
