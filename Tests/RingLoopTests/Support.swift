import Glibc
import Logging
@testable import RingLoop
import Synchronization
import Testing

/// Both backends: every loop test runs once per backend.
let allBackends: [Backend] = [.uring, .epoll]

/// Runs `body` on a fresh thread and awaits it without blocking a
/// cooperative-pool thread, so a loop under test never starves Swift
/// Testing's own executor, and a hung loop fails its test's time limit
/// instead of wedging the run.
func onNewThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        do {
            try startDetachedThread { continuation.resume(with: Result { try body() }) }
        } catch {
            continuation.resume(throwing: error)
        }
    }
}

final class ThreadBody: @unchecked Sendable {
    let run: () -> Void
    init(_ run: @escaping () -> Void) { self.run = run }
}

/// Makes a loop on a new thread, hands it to `body`, and closes it after.
func withLoop<T: Sendable>(
    _ backend: Backend, debug: Bool = false, logger: Logger? = nil,
    _ body: @escaping @Sendable (EventLoop) throws -> T
) async throws -> T {
    try await onNewThread {
        let loop = try EventLoop(backend: backend, debug: debug, logger: logger ?? Logger(label: "test"))
        defer { try? loop.close() }
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

/// A swift-log handler that keeps every message, so tests can assert on logs.
struct CapturingLogHandler: LogHandler {
    let records: Recorder<(Logger.Level, String)>
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        records.append((event.level, "\(event.message)"))
    }
}

func capturingLogger() -> (Logger, Recorder<(Logger.Level, String)>) {
    let records = Recorder<(Logger.Level, String)>()
    return (Logger(label: "capture") { _ in CapturingLogHandler(records: records) }, records)
}

var currentThreadID: UInt { UInt(pthread_self()) }

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
    let box = Unmanaged.passRetained(ThreadBody(body))
    var thread = pthread_t()
    let rc = pthread_create(&thread, nil, { raw in
        Unmanaged<ThreadBody>.fromOpaque(raw!).takeRetainedValue().run()
        return nil
    }, box.toOpaque())
    guard rc == 0 else {
        box.release()
        throw Errno(rc)
    }
    return thread
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
        defer { try? loop.close() }
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
