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
    /// Sends on the operation path not yet completed; see ``send(_:count:flags:keepAlive:)``.
    private var sendsInFlight = 0
    private var closing = false
    private var closeWaiters: [UnsafeContinuation<Void, Never>] = []

    init(fd: Int32, loop: EventLoop, label: String?) {
        self.fd = fd
        self.loop = loop
        self.label = label
    }

    deinit {
        // Operations retain their descriptor's owner, so none can be in flight
        // here. The backend must forget the number before it is closed (epoll
        // keeps per-fd registrations), and only the loop's thread may touch
        // the backend: close here when that is us (or nobody runs the loop),
        // otherwise hand the close to the loop, keeping the fd open until then
        // so its number cannot be reused too early.
        guard fd >= 0 else { return }
        let fd = self.fd
        let loop = self.loop
        let owner = loop.ownerThread.load(ordering: .relaxed)
        if loop.isClosed || owner == 0 || owner == UInt(pthread_self()) {
            if !loop.isClosed { loop.io.willClose(fd: fd) }
            Glibc.close(fd)
            return
        }
        do {
            try loop.callSoonThreadsafe {
                loop.io.willClose(fd: fd)
                Glibc.close(fd)
            }
        } catch {
            Glibc.close(fd)
        }
    }

    var isClosed: Bool { fd < 0 || closing }

    func closedError(_ operation: String) -> IOError {
        IOError(operation: operation, errno: Errno(EBADF), path: label, detail: IOError.closedDetail)
    }

    /// Runs one operation on this descriptor and turns its result into a
    /// count or a thrown error: `CancellationError` when the task was
    /// cancelled, ``IOError`` (`.closed`) when the descriptor was closed under
    /// it, ``IOError`` (`.timedOut`) when its linked `timeout` passed first,
    /// ``IOError`` with the errno otherwise.
    func perform<R>(
        _ name: StaticString,
        keepAlive: AnyObject?,
        timeout: Duration? = nil,
        _ prepare: (Int32, UnsafeMutablePointer<OperationScratch>) -> Operation,
        extract: (UnsafeMutablePointer<OperationScratch>, Int32) -> R
    ) async throws -> R {
        // Thread first: this object's state belongs to the loop thread.
        try loop.requireLoopThread(String(describing: name))
        guard !isClosed else { throw closedError(String(describing: name)) }
        let fd = self.fd
        inFlight += 1
        defer {
            inFlight -= 1
            if inFlight == 0, !closeWaiters.isEmpty {
                let waiters = closeWaiters
                closeWaiters = []
                for waiter in waiters { waiter.resume() }
            }
        }
        var raw: Int32 = 0
        let value = try await loop.perform(name, fd: fd, keepAlive: keepAlive, timeout: timeout, { prepare(fd, $0) }, extract: { scratch, result in
            raw = result
            return extract(scratch, result)
        })
        if raw >= 0 { return value }
        if raw == -ECANCELED {
            if closing { throw closedError(String(describing: name)) }
            if Task.isCancelled { throw CancellationError() }
            if let timeout {
                throw IOError(operation: String(describing: name), errno: Errno(ETIMEDOUT), fd: fd, path: label,
                              detail: "no completion within \(timeout)")
            }
        }
        throw IOError(operation: String(describing: name), errno: Errno(raw), fd: fd, path: label)
    }

    /// Sends `count` bytes from `bytes`, returning how many the kernel took.
    ///
    /// A socket nearly always has room for a reply, so the send is first tried
    /// at once, non-blocking, and returns without suspending the task. Only
    /// when it would block does it become an operation (an SQE on io_uring, a
    /// readiness wait on epoll). The operation path costs a task suspension
    /// and resumption through the concurrency runtime; with two per echo that
    /// was about a quarter of an echo server's CPU (BENCHMARKS.md). The direct
    /// try is skipped while another send on this descriptor is still an
    /// operation, so bytes never overtake bytes queued before them, and when
    /// the task is cancelled, so cancellation is reported as on every path.
    func send(_ bytes: UnsafeRawPointer, count: Int, flags: Int32, keepAlive: AnyObject) async throws -> Int {
        try loop.requireLoopThread("send")
        guard !isClosed else { throw closedError("send") }
        if sendsInFlight == 0, !Task.isCancelled {
            let sent = Glibc.send(fd, bytes, count, flags | Int32(MSG_DONTWAIT))
            if sent >= 0 { return sent }
            let error = errno
            if error != EAGAIN && error != EWOULDBLOCK && error != EINTR {
                throw IOError(operation: "send", errno: Errno(error), fd: fd, path: label)
            }
        }
        sendsInFlight += 1
        defer { sendsInFlight -= 1 }
        let length = UInt32(clamping: count)
        return try await perform("send", keepAlive: keepAlive) { fd, _ in
            .send(fd: fd, buffer: bytes, count: length, flags: flags)
        }
    }

    /// ``perform(_:keepAlive:timeout:_:extract:)`` returning the kernel's count.
    func perform(
        _ name: StaticString,
        keepAlive: AnyObject? = nil,
        timeout: Duration? = nil,
        _ prepare: (Int32, UnsafeMutablePointer<OperationScratch>) -> Operation
    ) async throws -> Int {
        Int(try await perform(name, keepAlive: keepAlive, timeout: timeout, prepare, extract: { _, result in result }))
    }

    /// Cancels what is in flight, waits for it, then closes. Idempotent.
    ///
    /// Like every operation, it must run on the loop's thread while the loop
    /// runs (`Task { }` does not inherit the loop as executor; `loop.spawn`
    /// does). Once the loop is closed, the descriptor is simply closed.
    func close() async throws {
        guard fd >= 0 else { return }
        if loop.isClosed {
            let fd = self.fd
            self.fd = -1
            Glibc.close(fd)
            return
        }
        let owner = loop.ownerThread.load(ordering: .relaxed)
        if owner != 0, owner != UInt(pthread_self()) { throw EventLoopError.wrongThread(operation: "close") }
        if inFlight > 0 {
            closing = true
            loop.cancelOperations(onFD: fd)
            await withUnsafeContinuation { closeWaiters.append($0) }
        }
        guard fd >= 0 else { return }  // another close finished meanwhile
        let fd = self.fd
        self.fd = -1
        closing = false
        loop.io.willClose(fd: fd)
        // IORING_OP_CLOSE on io_uring (a plain close(2) on epoll). Nothing is
        // in flight on the fd any more, so nothing can outlive its number.
        let result: Int32
        do {
            result = try await loop.perform("close", fd: fd) { _ in .close(fd: fd) }
        } catch {
            // The loop is closing (teardown lets tasks unwind) or this is not
            // its thread: nothing is in flight, so a plain close is safe.
            result = Glibc.close(fd) == 0 ? 0 : -errno
        }
        if result < 0, result != -EINTR {
            throw IOError(operation: "close", errno: Errno(result), fd: fd, path: label)
        }
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
