import CUring
import Glibc

/// The file descriptor behind a `File` or a socket, and everything the loop
/// must know to close it safely.
///
/// All methods run on the loop thread (the public types check that through
/// ``EventLoop/perform(_:fd:keepAlive:_:extract:)``).
///
/// Closing with operations in flight cancels them first and waits for their
/// final completions; only then is the descriptor closed. So a kernel-side
/// operation can never outlive its fd number, and a later fd that reuses the
/// number can never receive a stale completion.
final class Descriptor {
    let loop: EventLoop
    private(set) var fd: Int32
    /// What to name in errors: the path of a file, the address of a socket.
    var label: String?
    private var inFlight = 0
    /// The tokens of this descriptor's operations in flight: what a close
    /// cancels, without scanning the loop's whole operation table.
    private var tokens: [OperationToken] = []
    private var closing = false
    private var closeWaiters: [UnsafeContinuation<Void, Never>] = []

    init(fd: Int32, loop: EventLoop, label: String?) {
        self.fd = fd
        self.loop = loop
        self.label = label
        if loop.isOnLoopThread { loop.io.adopt(fd: fd) }
    }

    deinit {
        // Operations retain their descriptor's owner, so none can be in flight
        // here. The backend must forget the number before it is closed (epoll
        // keeps per-fd registrations), and only the loop's thread may touch
        // the backend: close here when that is us (or nobody runs the loop),
        // otherwise hand the close to the loop, keeping the fd open until then
        // so its number cannot be reused too early.
        //
        // `onLoopThread` takes the run-state lock when the loop is not running,
        // so this can never race a thread that starts running it; the inbox
        // items left at close are run by the teardown, so the fd is closed
        // even then.
        guard fd >= 0 else { return }
        let fd = self.fd
        let loop = self.loop
        if loop.isClosed {
            Glibc.close(fd)
            return
        }
        let queued = loop.onLoopThread {
            if !loop.isClosed { loop.io.willClose(fd: fd) }
            Glibc.close(fd)
        }
        if !queued { Glibc.close(fd) }
    }

    var isClosed: Bool { fd < 0 || closing }

    func closedError(_ operation: String, inFlight: Bool = false) -> IOError {
        IOError(operation: operation, errno: Errno(EBADF), path: label,
                detail: IOError.closedDetail + (inFlight ? " while the operation was in flight" : ""))
    }

    /// The error for a failed operation on this open descriptor, `raw` a
    /// negative errno. An EBADF on a descriptor that is still open is the
    /// kernel's answer to using it against its access mode (a read from a
    /// file opened write-only); "Bad file descriptor" alone would send the
    /// reader looking for a closed descriptor, so the detail says which.
    func failure(_ operation: String, _ raw: Int32, fd: Int32) -> IOError {
        IOError(operation: operation, errno: Errno(raw), fd: fd, path: label,
                detail: raw == -EBADF ? Self.accessModeDetail(fd) : nil)
    }

    /// What `fd`'s access mode forbids, when it forbids reading or writing.
    static func accessModeDetail(_ fd: Int32) -> String? {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return nil }
        switch flags & O_ACCMODE {
        case O_WRONLY: return "it is open for writing only; open it with .read or .readWrite to read it"
        case O_RDONLY: return "it is open for reading only; open it with .write or .readWrite to write it"
        default: return nil
        }
    }

    /// Starts an operation on this descriptor: checks the thread (first: this
    /// object's state belongs to the loop thread) and that it is open, counts
    /// it in flight, and returns the fd to use.
    private func begin(_ name: StaticString) throws -> Int32 {
        try loop.requireLoopThread(String(describing: name))
        guard !isClosed else { throw closedError(String(describing: name)) }
        inFlight += 1
        return fd
    }

    /// Ends what ``begin(_:)`` started; the last one out wakes a waiting close.
    private func end() {
        inFlight -= 1
        if inFlight == 0, !closeWaiters.isEmpty {
            let waiters = closeWaiters
            closeWaiters = []
            for waiter in waiters { waiter.resume() }
        }
    }

    /// Records each operation's token while it runs, so a close can cancel
    /// exactly this descriptor's operations.
    private func track(_ token: OperationToken, _ started: Bool) {
        if started {
            tokens.append(token)
        } else if let index = tokens.firstIndex(of: token) {
            tokens.remove(at: index)
        }
    }

    /// Runs `call` with this descriptor's fd on the loop's thread pool,
    /// counted in flight like a kernel operation, so a concurrent close waits
    /// for it instead of closing (and freeing the number for reuse) under it.
    nonisolated(nonsending) func offload(_ name: StaticString, _ call: @escaping @Sendable (Int32) -> Int32) async throws -> Int32 {
        let fd = try begin(name)
        defer { end() }
        return try await loop.offload { call(fd) }
    }

    /// Runs `count` operations on this descriptor with one suspension and
    /// returns each one's kernel-style result (`-errno` for a failure, which
    /// fails that member alone). Throws only for the whole call: a closed
    /// descriptor, the wrong thread, `CancellationError` when the task was
    /// cancelled (the members still in flight were cancelled with it).
    nonisolated(nonsending) func performBatch(
        _ name: StaticString,
        count: Int,
        keepAlive: (Int) -> AnyObject?,
        _ prepare: (Int32, Int, UnsafeMutablePointer<OperationScratch>) -> Operation
    ) async throws -> [Int32] {
        let fd = try begin(name)
        defer { end() }
        let results = try await loop.performBatch(name, count: count, fd: fd, keepAlive: keepAlive, track: track) { index, scratch in
            prepare(fd, index, scratch)
        }
        if closing, results.contains(-ECANCELED) { throw closedError(String(describing: name), inFlight: true) }
        if Task.isCancelled, results.contains(-ECANCELED) { throw CancellationError() }
        return results
    }

    /// Runs one operation on this descriptor and turns its result into a
    /// count or a thrown error: `CancellationError` when the task was
    /// cancelled, ``IOError`` (`.closed`) when the descriptor was closed under
    /// it, ``IOError`` (`.timedOut`) when its linked `timeout` passed first,
    /// ``IOError`` with the errno otherwise.
    nonisolated(nonsending) func perform<R>(
        _ name: StaticString,
        keepAlive: AnyObject?,
        timeout: Duration? = nil,
        _ prepare: (Int32, UnsafeMutablePointer<OperationScratch>) -> Operation,
        extract: (UnsafeMutablePointer<OperationScratch>, Int32) -> R
    ) async throws -> R {
        let fd = try begin(name)
        defer { end() }
        var raw: Int32 = 0
        let value = try await loop.perform(name, fd: fd, keepAlive: keepAlive, timeout: timeout, track: track,
                                           { prepare(fd, $0) }, extract: { scratch, result in
            raw = result
            return extract(scratch, result)
        })
        if raw >= 0 { return value }
        if raw == -ECANCELED {
            if closing { throw closedError(String(describing: name), inFlight: true) }
            if Task.isCancelled { throw CancellationError() }
            if let timeout {
                throw IOError(operation: String(describing: name), errno: Errno(ETIMEDOUT), fd: fd, path: label,
                              detail: "no completion within \(timeout)")
            }
        }
        throw failure(String(describing: name), raw, fd: fd)
    }

    /// ``perform(_:keepAlive:timeout:_:extract:)`` returning the kernel's count.
    nonisolated(nonsending) func perform(
        _ name: StaticString,
        keepAlive: AnyObject? = nil,
        timeout: Duration? = nil,
        _ prepare: (Int32, UnsafeMutablePointer<OperationScratch>) -> Operation
    ) async throws -> Int {
        Int(try await perform(name, keepAlive: keepAlive, timeout: timeout, prepare, extract: { _, result in result }))
    }

    /// Cancels what is in flight, waits for it, then closes. Idempotent.
    ///
    /// Closing is never cancellable: cleanup runs in cancelled tasks all the
    /// time (`withTimeout`, `EventLoop.run` tearing handlers down), and a
    /// close that gave up would leak the descriptor. The wait is for final
    /// completions of operations already cancelled, so it is short.
    ///
    /// Like every operation, it must run on the loop's thread while the loop
    /// runs (`Task { }` does not inherit the loop as executor; `loop.spawn`
    /// does). Once the loop is closed, the descriptor is simply closed.
    nonisolated(nonsending) func close() async throws {
        guard fd >= 0 else { return }
        if loop.isClosed {
            let fd = self.fd
            self.fd = -1
            Glibc.close(fd)
            return
        }
        let owner = loop.ownerThread.load(ordering: .relaxed)
        if owner != 0, owner != UInt(pthread_self()) { throw loop.offLoop("close") }
        let number = fd
        await closeNow()
        if closeResult != 0, closeResult != EINTR {
            throw IOError(operation: "close", errno: Errno(closeResult), fd: number, path: label)
        }
    }

    /// ``close()`` without its thread check, for the library's own cleanup
    /// paths, which already run on the loop thread. Never throws: a close(2)
    /// error other than EINTR is reported by ``close()`` only.
    nonisolated(nonsending) func closeNow() async {
        guard fd >= 0 else { return }
        if inFlight > 0, !loop.isClosed {
            closing = true
            loop.cancelOperations(tokens)
            // No cancellation handler: this wait must not be cut short.
            await loop.suspendUncancellably { if inFlight == 0 { $0.resume() } else { closeWaiters.append($0) } }
        }
        guard fd >= 0 else { return }  // another close finished meanwhile
        let fd = self.fd
        self.fd = -1
        closing = false
        if !loop.isClosed { loop.io.willClose(fd: fd) }
        closeResult = Glibc.close(fd) == 0 ? 0 : errno
    }

    /// The errno of the last close(2), 0 if it succeeded.
    private(set) var closeResult: Int32 = 0

    /// Closes at once if nothing is in flight on it: for the loop's own
    /// descriptors during teardown, after the drain (the backend is still open).
    func closeIfIdle() {
        guard fd >= 0, inFlight == 0 else { return }
        loop.io.willClose(fd: fd)
        Glibc.close(fd)
        fd = -1
    }

    /// Gives the descriptor up without closing it (it now belongs to the
    /// caller, a transport for example). Nothing may be in flight on it.
    func release() -> Int32 {
        precondition(inFlight == 0, "Descriptor.release with operations in flight")
        let fd = self.fd
        self.fd = -1
        return fd
    }

    /// Sets an integer socket option.
    func setOption(_ level: Int32, _ name: Int32, _ value: Int32, _ label: String) throws(IOError) {
        guard fd >= 0 else { throw closedError("setsockopt(\(label))") }
        try Sockets.setOption(fd, level, name, value, label, path: self.label)
    }

    /// Reads an integer socket option.
    func option(_ level: Int32, _ name: Int32, _ label: String) throws(IOError) -> Int32 {
        guard fd >= 0 else { throw closedError("getsockopt(\(label))") }
        var value: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, level, name, &value, &size) != 0 {
            throw IOError(operation: "getsockopt(\(label))", errno: .current, fd: fd, path: self.label)
        }
        return value
    }
}
