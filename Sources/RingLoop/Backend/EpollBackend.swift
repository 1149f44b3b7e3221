import CUring
import DequeModule
import Glibc
import Synchronization

/// The epoll backend: the same completion-shaped contract as io_uring,
/// emulated over readiness.
///
/// - Socket operations are tried at once; on EAGAIN they wait in the fd's
///   interest entry and are retried when epoll reports the fd ready.
/// - Stream receives and accepts (io_uring's multishot operations) stay armed
///   in the fd's entry: on readiness the backend receives into a pooled
///   buffer, or accepts, until EAGAIN or a per-poll budget, and posts a
///   completion flagged ``CompletionFlag/more`` for each, as the kernel does.
/// - File operations run on the thread pool, because a regular file is always
///   "ready" to epoll; the worker posts the result back and wakes the loop.
/// - Timeout operations live in a small heap of their own (``EpollTimeouts``).
///
/// Per-fd interest lives in one table indexed by fd. Each registration
/// carries a generation in `epoll_event.data`, so an event for a closed and
/// reused fd number is recognised as stale and dropped. A map from token to
/// fd makes cancelling any waiter O(1).
///
/// Thread-safety: everything except ``wake()`` and the pool's completion
/// posting runs on the loop thread (hence `@unchecked Sendable`: only those
/// two paths are reached from pool threads, and both are synchronized).
final class EpollBackend: @unchecked Sendable {
    private let epfd: Int32
    private let wakeFD: Int32
    private let events: UnsafeMutablePointer<epoll_event>
    private static let eventCapacity = 256
    private static let wakeMarker = UInt64.max
    /// Receives one fd's stream may take per poll before others get a turn.
    static let receiveBudget = 4
    @exclusivity(unchecked) var usePwait2 = true
    /// Waits a signal interrupted (tests check EINTR really happened).
    @exclusivity(unchecked) private(set) var interruptedWaits = 0
    @exclusivity(unchecked) private var closed = false
    /// The loop's receive buffers (pool mode).
    let buffers: ReceiveBuffers

    /// Completions known without waiting: NOPs, eager syscall results, cancels.
    @exclusivity(unchecked) private var immediate: [Completion] = []
    /// Completions posted by pool workers.
    private let posted = Locked<[Completion]>([])
    private let postedFlag = Atomic<Bool>(false)
    private let pool: ThreadPool

    /// Timeout operations and emulated link timeouts.
    @exclusivity(unchecked) private var timeouts = EpollTimeouts()

    // Socket operations waiting for readiness.
    private struct Waiter {
        var operation: Operation
        var token: OperationToken
        /// A connect already in progress is finished by reading SO_ERROR, not
        /// by calling connect again.
        var connectStarted = false
    }
    /// One per descriptor that has waited, so every idle connection pays
    /// for one: it is kept to 32 bytes. The armed stream receive or accept
    /// keeps only its token: its fd is the entry's index, and a socket is
    /// either a connection (stream) or a listener (acceptor), never both.
    /// Nor is it in `waiterFD`: whoever cancels it names the fd.
    private struct Interest {
        var generation: UInt32
        var registered = false
        /// A FIFO, terminal or other file that readiness applies to: its
        /// reads and writes wait here instead of going to the thread pool.
        var pollableFile = false
        /// `armed` is an accept, not a stream receive.
        var armedIsAcceptor = false
        var readers = Deque<Waiter>()
        var writers = Deque<Waiter>()
        /// Generation 0, which neither table hands out, marks "none": an
        /// optional token would cost 8 more bytes.
        var armedToken = OperationToken(rawValue: 0)
        var armed: OperationToken? {
            get { armedToken.rawValue == 0 ? nil : armedToken }
            set { armedToken = newValue ?? OperationToken(rawValue: 0) }
        }
        var stream: OperationToken? { armedIsAcceptor ? nil : armed }
        var acceptor: OperationToken? { armedIsAcceptor ? armed : nil }
    }
    /// Indexed by fd; grows to the highest fd seen.
    @exclusivity(unchecked) private var interests: [Interest?] = []
    /// Where each waiting single-shot operation waits: token → fd.
    @exclusivity(unchecked) private var waiterFD: [OperationToken: Int32] = [:]
    /// Armed stream receives and accepts (not in `waiterFD`).
    @exclusivity(unchecked) private var armedCount = 0
    /// Fds whose stream or acceptor stopped at its budget before EAGAIN: with
    /// edge triggering no new event would come, so the next poll resumes them.
    @exclusivity(unchecked) private var readyAgain: [Int32] = []
    @exclusivity(unchecked) private var nextGeneration: UInt32 = 1
    // File operations on the pool, for cancellation.
    @exclusivity(unchecked) private var poolItems: [OperationToken: ThreadPool.WorkItem] = [:]

    init(pool: ThreadPool, receiveBuffers: ReceiveBufferConfiguration = .default) throws(BackendSetupError) {
        let epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epfd >= 0 else { throw BackendSetupError(operation: "epoll_create1", errno: .current) }
        let wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            let e = Errno.current
            Glibc.close(epfd)
            throw BackendSetupError(operation: "eventfd", errno: e)
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.wakeMarker
        guard epoll_ctl(epfd, EPOLL_CTL_ADD, wakeFD, &event) == 0 else {
            let e = Errno.current
            Glibc.close(epfd)
            Glibc.close(wakeFD)
            throw BackendSetupError(operation: "epoll_ctl(ADD eventfd)", errno: e)
        }
        self.epfd = epfd
        self.wakeFD = wakeFD
        self.pool = pool
        buffers = ReceiveBuffers(receiveBuffers)
        events = .allocate(capacity: Self.eventCapacity)
    }

    deinit { close() }

    /// Thread-safe: makes a blocked `poll` return.
    func wake() {
        var one: UInt64 = 1
        _ = Glibc.write(wakeFD, &one, 8)
    }

    // MARK: Submission

    /// With `linkTimeout`, a backend timer cancels the operation if it is
    /// still waiting when the time passes (the emulation of io_uring's
    /// `LINK_TIMEOUT`); it then completes with `-ECANCELED`.
    func submit(_ operation: Operation, token: OperationToken,
                linkTimeout: UnsafeMutablePointer<__kernel_timespec>? = nil) {
        submit(operation, token: token)
        guard let ts = linkTimeout, immediate.last?.token != token else { return }
        let ns = UInt64(max(0, ts.pointee.tv_sec)) * 1_000_000_000 + UInt64(max(0, ts.pointee.tv_nsec))
        timeouts.addLink(token, deadline: cu_monotonic_ns() &+ ns)
    }

    func submit(_ operation: Operation, token: OperationToken) {
        switch operation {
        case .nop:
            immediate.append(Completion(token: token, result: 0, flags: 0))
        case .timeout(let ts):
            let ns = UInt64(max(0, ts.pointee.tv_sec)) * 1_000_000_000 + UInt64(max(0, ts.pointee.tv_nsec))
            timeouts.addTimeout(token, deadline: cu_monotonic_ns() &+ ns)
        case .cancel(let target):
            immediate.append(Completion(token: token, result: cancel(target: target), flags: 0))
        case .recv(let fd, _, _, _), .recvmsg(let fd, _, _), .accept(let fd, _, _, _):
            attempt(Waiter(operation: operation, token: token), fd: fd, readable: true)
        case .poll(let fd, let events):
            attempt(Waiter(operation: operation, token: token), fd: fd, readable: events & UInt32(POLLOUT) == 0)
        case .waitid(let pidfd, _):
            attempt(Waiter(operation: operation, token: token), fd: pidfd, readable: true)
        case .send(let fd, _, _, _), .sendmsg(let fd, _, _), .connect(let fd, _, _):
            attempt(Waiter(operation: operation, token: token), fd: fd, readable: false)
        case .receiveStream(let fd):
            arm(token, stream: true, fd: fd)
        case .acceptStream(let fd):
            arm(token, stream: false, fd: fd)
        case .shutdown(let fd, let how):
            immediate.append(Completion(token: token, result: kernelResult(Glibc.shutdown(fd, how)), flags: 0))
        case .close(let fd):
            forget(fd: fd)
            immediate.append(Completion(token: token, result: kernelResult(Glibc.close(fd)), flags: 0))
        case .read(let fd, _, _, _), .write(let fd, _, _, _):
            if Int(fd) < interests.count, interests[Int(fd)]?.pollableFile == true {
                if case .read = operation {
                    attempt(Waiter(operation: operation, token: token), fd: fd, readable: true)
                } else {
                    attempt(Waiter(operation: operation, token: token), fd: fd, readable: false)
                }
            } else {
                submitToPool(operation, token: token)
            }
        case .readFixed, .writeFixed, .readv, .writev, .openat, .statx, .fsync, .unlinkat, .renameat, .mkdirat, .fallocate, .ftruncate, .splice:
            submitToPool(operation, token: token)
        }
    }

    /// `fd` is a non-blocking FIFO, terminal or socket opened as a file: its
    /// reads and writes wait for readiness (a blocking read on the pool would
    /// hold a worker for as long as the other end stays silent).
    func markPollable(fd: Int32) {
        var entry = interest(for: fd)
        entry.pollableFile = true
        store(entry, for: fd)
    }

    private func interest(for fd: Int32) -> Interest {
        if Int(fd) < interests.count, let existing = interests[Int(fd)] { return existing }
        return Interest(generation: nextGenerationValue())
    }

    private func store(_ interest: Interest?, for fd: Int32) {
        if Int(fd) >= interests.count {
            guard interest != nil else { return }
            interests.append(contentsOf: repeatElement(nil, count: Int(fd) + 1 - interests.count))
        }
        interests[Int(fd)] = interest
    }

    private func attempt(_ waiter: Waiter, fd: Int32, readable: Bool) {
        var waiter = waiter
        var entry = interest(for: fd)
        // Keep FIFO order: if others already wait in this direction, queue behind them.
        let queued = readable ? !entry.readers.isEmpty : !entry.writers.isEmpty
        if !queued, let rc = NonblockingCall.perform(waiter.operation, connectStarted: &waiter.connectStarted) {
            immediate.append(Completion(token: waiter.token, result: rc, flags: 0))
            return
        }
        if readable { entry.readers.append(waiter) } else { entry.writers.append(waiter) }
        waiterFD[waiter.token] = fd
        store(entry, for: fd)
        registerOnce(fd: fd)
    }

    /// Arms a stream receive or accept, and serves it at once: what arrived
    /// while nothing was armed brought its edge already.
    private func arm(_ token: OperationToken, stream: Bool, fd: Int32) {
        var entry = interest(for: fd)
        if entry.armed == nil { armedCount += 1 }
        entry.armed = token
        entry.armedIsAcceptor = !stream
        store(entry, for: fd)
        registerOnce(fd: fd)
        if stream { serveStream(fd: fd, untilDrained: true) } else { serveAcceptor(fd: fd) }
    }

    private func nextGenerationValue() -> UInt32 {
        defer { nextGeneration = nextGeneration &+ 1 == 0 ? 1 : nextGeneration &+ 1 }
        return nextGeneration
    }

    /// Registers `fd` once, edge-triggered for both directions, for as long as
    /// it stays open: one `epoll_ctl` per descriptor, none per wait. An edge
    /// that arrives while nobody waits is simply ignored; that is safe because
    /// every operation tries its syscall before it waits, so it only waits
    /// after seeing EAGAIN, and the next change of state brings a new edge.
    private func registerOnce(fd: Int32) {
        guard Int(fd) < interests.count, var entry = interests[Int(fd)], !entry.registered else { return }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue | EPOLLET.rawValue
        event.data.u64 = UInt64(entry.generation) << 32 | UInt64(UInt32(bitPattern: fd))
        var rc = epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &event)
        // EEXIST: the number was registered under an earlier descriptor that
        // was closed behind our back; take it over with the new generation.
        if rc != 0, errno == EEXIST { rc = epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &event) }
        if rc != 0 {
            // The fd cannot be watched (closed, or not pollable): fail every waiter now.
            fail(entry, fd: fd, result: -errno)
            return
        }
        entry.registered = true
        interests[Int(fd)] = entry
    }

    /// Completes every waiter of `entry` with `result` and drops the entry.
    private func fail(_ entry: Interest, fd: Int32, result: Int32) {
        for token in (entry.readers + entry.writers).map(\.token) {
            waiterFD[token] = nil
            immediate.append(Completion(token: token, result: result, flags: 0))
        }
        if let token = entry.armed {
            armedCount -= 1
            immediate.append(Completion(token: token, result: result, flags: 0))
        }
        store(nil, for: fd)
    }

    /// Drops all interest in `fd` before it is closed, so the number can be
    /// reused without inheriting waiters; they complete with ECANCELED.
    private func forget(fd: Int32) {
        guard Int(fd) < interests.count, let entry = interests[Int(fd)] else { return }
        fail(entry, fd: fd, result: -ECANCELED)
        if entry.registered { _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil) }
    }

    /// A new descriptor got the number `fd`. If an entry for an earlier
    /// descriptor with that number is still here (its owner closed the raw
    /// fd behind RingLoop's back), it is stale: its waiters fail with EBADF
    /// and the new descriptor registers afresh.
    func adopt(fd: Int32) {
        guard !closed, Int(fd) < interests.count, let entry = interests[Int(fd)] else { return }
        fail(entry, fd: fd, result: -EBADF)
    }

    // MARK: Stream receives and accepts

    /// Receives into pooled buffers until EAGAIN, the end of the stream, an
    /// error, or the budget; each receive is a completion, as multishot CQEs are.
    ///
    /// A short read usually means the socket is drained, and the next bytes
    /// bring a new edge, so it saves a recv that would say EAGAIN. It does
    /// not mean there is no FIN queued behind the bytes, which would bring no
    /// further edge: so `untilDrained` (on arming, when the state is unknown,
    /// and for events that report a hang-up) reads until EAGAIN or EOF.
    private func serveStream(fd: Int32, untilDrained: Bool = false) {
        guard Int(fd) < interests.count, var entry = interests[Int(fd)], let token = entry.stream else { return }
        for _ in 0..<Self.receiveBudget {
            guard let id = buffers.take() else {
                // Out of buffers: end the stream receive, as io_uring does
                // with ENOBUFS; the owner re-arms when buffers come back.
                finishStream(&entry, fd: fd, result: -ENOBUFS)
                return
            }
            let n = Glibc.recv(fd, buffers.pointer(id), buffers.size, Int32(MSG_DONTWAIT))
            if n > 0 {
                immediate.append(Completion(token: token, result: Int32(n),
                                            flags: CompletionFlag.more | CompletionFlag.buffer | UInt32(id) << CompletionFlag.bufferShift))
                if n < buffers.size, !untilDrained { return }  // drained: the next bytes bring a new edge
                continue
            }
            let error = n < 0 ? errno : 0
            buffers.recycle(id)
            if error == EAGAIN || error == EWOULDBLOCK { return }
            if error == EINTR { continue }
            finishStream(&entry, fd: fd, result: n == 0 ? 0 : -error)
            return
        }
        readyAgain.append(fd)
    }

    private func finishStream(_ entry: inout Interest, fd: Int32, result: Int32) {
        guard let token = entry.stream else { return }
        entry.armed = nil
        armedCount -= 1
        interests[Int(fd)] = entry
        immediate.append(Completion(token: token, result: result, flags: 0))
    }

    /// Accepts until EAGAIN, an error, or the budget.
    private func serveAcceptor(fd: Int32) {
        guard Int(fd) < interests.count, var entry = interests[Int(fd)], let token = entry.acceptor else { return }
        let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
        for _ in 0..<IOBackend.acceptBudget {
            let accepted = cu_accept4(fd, nil, nil, flags)
            if accepted >= 0 {
                immediate.append(Completion(token: token, result: accepted, flags: CompletionFlag.more))
                continue
            }
            let error = errno
            if error == EAGAIN || error == EWOULDBLOCK { return }
            if error == EINTR { continue }
            // An error ends the stream, as it ends a multishot accept.
            entry.armed = nil
            armedCount -= 1
            interests[Int(fd)] = entry
            immediate.append(Completion(token: token, result: -error, flags: 0))
            return
        }
        readyAgain.append(fd)
    }

    // MARK: The thread pool

    private func submitToPool(_ operation: Operation, token: OperationToken) {
        // The pointers in `operation` stay valid until the completion is
        // reaped (the loop holds the slot), so the worker may use them.
        let work = UnsafeSendable(operation)
        let item = ThreadPool.WorkItem { [self] in
            let rc = BlockingFileCall.perform(work.value)
            post(Completion(token: token, result: rc, flags: 0))
        }
        poolItems[token] = item
        if !pool.submit(item) {
            poolItems[token] = nil
            immediate.append(Completion(token: token, result: -ECANCELED, flags: 0))
        }
    }

    /// Called on pool threads. The lock also orders the wakeup against
    /// ``close()``: once closed, nothing writes to the (closed) eventfd.
    private func post(_ completion: Completion) {
        posted.withLock { list in
            guard !closedForPosting else { return }
            list.append(completion)
            postedFlag.store(true, ordering: .releasing)
            wake()
        }
    }
    /// Guarded by `posted`'s lock.
    private var closedForPosting = false

    // MARK: Cancellation

    /// Cancels `target` if it is still waiting; returns the cancel op's result.
    private func cancel(target: OperationToken) -> Int32 {
        if timeouts.cancelTimeout(target) {
            immediate.append(Completion(token: target, result: -ECANCELED, flags: 0))
            return 0
        }
        if let item = poolItems[target] {
            guard item.cancel() else { return -EALREADY }
            poolItems[target] = nil
            immediate.append(Completion(token: target, result: -ECANCELED, flags: 0))
            return 0
        }
        guard let fd = waiterFD[target], Int(fd) < interests.count, var entry = interests[Int(fd)] else { return -ENOENT }
        if let i = entry.readers.firstIndex(where: { $0.token == target }) {
            entry.readers.remove(at: i)
        } else if let i = entry.writers.firstIndex(where: { $0.token == target }) {
            entry.writers.remove(at: i)
        } else {
            return -ENOENT
        }
        waiterFD[target] = nil
        interests[Int(fd)] = entry
        immediate.append(Completion(token: target, result: -ECANCELED, flags: 0))
        return 0
    }

    /// Cancels `token` if it still waits; its completion says `-ECANCELED`.
    func cancel(_ token: OperationToken) { _ = cancel(target: token) }

    /// Cancels the stream receive or accept `token` armed on `fd`, if it
    /// is still armed; its completion says `-ECANCELED`.
    func cancelArmed(_ token: OperationToken, fd: Int32) {
        guard fd >= 0, Int(fd) < interests.count, var entry = interests[Int(fd)], entry.armed == token else { return }
        entry.armed = nil
        armedCount -= 1
        interests[Int(fd)] = entry
        immediate.append(Completion(token: token, result: -ECANCELED, flags: 0))
    }

    /// Drops the registration of `fd` if nothing waits on it and no stream
    /// receive or accept is armed (see ``IOBackend/unwatch(fd:)``); the next
    /// wait registers it again.
    func unwatch(fd: Int32) {
        guard !closed, Int(fd) < interests.count, var entry = interests[Int(fd)],
              entry.readers.isEmpty, entry.writers.isEmpty, entry.armed == nil else { return }
        if entry.registered { _ = epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil) }
        if entry.pollableFile {
            entry.registered = false
            interests[Int(fd)] = entry
        } else {
            store(nil, for: fd)
        }
    }

    /// `fd` is about to be closed: drop its registration and table entry.
    func willClose(fd: Int32) {
        guard !closed else { return }
        forget(fd: fd)
    }

    // MARK: Polling

    /// Completions are known without waiting: immediate results, posted
    /// pool results, streams to resume, or timeout operations that may have expired.
    var hasPendingWork: Bool {
        !immediate.isEmpty || !timeouts.isEmpty || !readyAgain.isEmpty || postedFlag.load(ordering: .acquiring)
    }

    /// Waits up to `timeout` nanoseconds (`nil`: no limit) and appends every
    /// completion to `completions`. A zero-timeout poll skips `epoll_wait`
    /// unless forced or something waits on readiness.
    func poll(timeout: Int64?, force: Bool, into completions: inout [Completion]) {
        guard !closed else { return }
        if !readyAgain.isEmpty {
            let fds = readyAgain
            readyAgain.removeAll(keepingCapacity: true)
            for fd in fds {
                serveStream(fd: fd, untilDrained: true)
                serveAcceptor(fd: fd)
            }
        }
        var wait = timeout
        if !immediate.isEmpty || !readyAgain.isEmpty || postedFlag.load(ordering: .acquiring) { wait = 0 }
        if let next = timeouts.nextDeadline {
            let now = cu_monotonic_ns()
            let delta = next > now ? Int64(clamping: next - now) : 0
            wait = wait.map { min($0, delta) } ?? delta
        }
        if wait != 0 || force || !waiterFD.isEmpty || armedCount > 0 {
            waitForEvents(timeout: wait)
        }
        expireTimeouts()
        if postedFlag.exchange(false, ordering: .acquiring) {
            posted.withLock { list in
                for c in list { poolItems[c.token] = nil; timeouts.operationEnded(c.token) }
                completions.append(contentsOf: list)
                list.removeAll(keepingCapacity: true)
            }
        }
        if timeouts.hasLinks {
            for c in immediate { timeouts.operationEnded(c.token) }
        }
        completions.append(contentsOf: immediate)
        immediate.removeAll(keepingCapacity: true)
    }

    private func waitForEvents(timeout: Int64?) {
        var n: Int32
        if let timeout, usePwait2 {
            var ts = timespec(tv_sec: Int(timeout / 1_000_000_000), tv_nsec: Int(timeout % 1_000_000_000))
            n = cu_epoll_pwait2(epfd, events, Int32(Self.eventCapacity), &ts)
            if n == -ENOSYS {
                usePwait2 = false
                return waitForEvents(timeout: timeout)
            }
            if n == -EINTR { interruptedWaits += 1 }
            if n < 0 { n = 0 }
        } else {
            // Round up: epoll_wait's millisecond timeout must never wake early.
            let ms = timeout.map { Int32(clamping: ($0 + 999_999) / 1_000_000) } ?? -1
            n = epoll_wait(epfd, events, Int32(Self.eventCapacity), ms)
            if n < 0 {
                if errno == EINTR { interruptedWaits += 1 }
                n = 0
            }
        }
        for i in 0..<Int(n) {
            let data = events[i].data.u64
            if data == Self.wakeMarker {
                var value: UInt64 = 0
                _ = Glibc.read(wakeFD, &value, 8)
                continue
            }
            let fd = Int32(bitPattern: UInt32(truncatingIfNeeded: data))
            let generation = UInt32(truncatingIfNeeded: data >> 32)
            guard Int(fd) < interests.count, interests[Int(fd)]?.generation == generation else { continue }  // stale
            let flags = events[i].events
            let errorOrHangup = flags & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0
            if flags & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue) != 0 || errorOrHangup {
                serveStream(fd: fd, untilDrained: errorOrHangup || flags & EPOLLRDHUP.rawValue != 0)
                serveAcceptor(fd: fd)
                drain(fd: fd, readers: true)
            }
            if flags & EPOLLOUT.rawValue != 0 || errorOrHangup { drain(fd: fd, readers: false) }
        }
    }

    /// Retries waiters in FIFO order until one reports "not ready".
    private func drain(fd: Int32, readers: Bool) {
        guard Int(fd) < interests.count, var entry = interests[Int(fd)] else { return }
        while var waiter = readers ? entry.readers.first : entry.writers.first {
            guard let rc = NonblockingCall.perform(waiter.operation, connectStarted: &waiter.connectStarted) else {
                // Keep the connectStarted state that perform may have set.
                if readers { entry.readers[entry.readers.startIndex] = waiter } else { entry.writers[entry.writers.startIndex] = waiter }
                break
            }
            if readers { entry.readers.removeFirst() } else { entry.writers.removeFirst() }
            waiterFD[waiter.token] = nil
            immediate.append(Completion(token: waiter.token, result: rc, flags: 0))
        }
        interests[Int(fd)] = entry
    }

    private func expireTimeouts() {
        guard !timeouts.isEmpty else { return }
        timeouts.expire(now: cu_monotonic_ns()) { token, isLink in
            if isLink {
                _ = cancel(target: token)  // completes it with -ECANCELED if still waiting
            } else {
                immediate.append(Completion(token: token, result: -ETIME, flags: 0))
            }
        }
    }

    /// Internal state of `fd`'s entry, for diagnosing a stall.
    func debugState(fd: Int32) -> String {
        guard Int(fd) < interests.count, let e = interests[Int(fd)] else { return "no entry" }
        return "gen \(e.generation) registered \(e.registered) readers \(e.readers.count) writers \(e.writers.count) "
            + "stream \(e.stream != nil) acceptor \(e.acceptor != nil) readyAgain \(readyAgain.contains(fd)) immediate \(immediate.count)"
    }

    /// Entries in the timeout heap, stale ones included (tests watch the bound).
    var timeoutHeapCount: Int { timeouts.heapCount }

    /// Closes the epoll fd and the eventfd. Pool work still running finishes
    /// on its own; its late completion is dropped, never written to a closed fd.
    func close() {
        guard !closed else { return }
        closed = true
        posted.withLock { _ in closedForPosting = true }
        Glibc.close(epfd)
        Glibc.close(wakeFD)
        events.deallocate()
        buffers.release()
    }

    var summary: String {
        "epoll (\(usePwait2 ? "epoll_pwait2" : "epoll_wait"); pooled receives \(buffers.count)×\(buffers.size) B)"
    }
}
