import Glibc

/// One `addReader` or `addWriter`: the callback, and the loop task that waits
/// for the descriptor to be ready and calls it. Loop-thread only.
final class DescriptorWatch {
    /// A descriptor and a direction: what one watch is for.
    struct Key: Hashable {
        var fd: Int32
        var readable: Bool
    }

    var callback: () throws -> Void
    var task: LoopTask<Void>?
    /// The open file the number named when the watch began (device, inode).
    let file: FileIdentity
    init(_ callback: @escaping () throws -> Void, file: FileIdentity) {
        self.callback = callback
        self.file = file
    }
}

/// What tells two open files apart when they had the same descriptor number.
struct FileIdentity: Equatable {
    var device: UInt64
    var inode: UInt64
}

extension EventLoop {
    /// Calls `callback` on the loop whenever `fd` is readable, until
    /// ``removeReader(_:)``: asyncio's `loop.add_reader`. For descriptors the
    /// application owns and RingLoop does not: a C library's socket, an
    /// inotify, timerfd or eventfd descriptor, a pipe.
    ///
    /// Level-triggered, as asyncio's readers are: while bytes are left
    /// unread, the callback is called again, once per loop iteration. A
    /// descriptor in error or hung up counts as readable, so the callback's
    /// own read sees the error or the end. A second `addReader` for the same
    /// descriptor replaces the callback (or, if the number now names another
    /// file, the whole watch). An error the callback throws goes to
    /// the exception handler, and the reader stays.
    ///
    /// ```swift
    /// let fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
    /// try loop.addReader(fd) { drainEvents(fd) }
    /// // ...
    /// try loop.removeReader(fd)
    /// close(fd)
    /// ```
    ///
    /// The descriptor stays the caller's: remove the reader before closing
    /// it. Closing the loop ends the reader and leaves the descriptor open.
    /// On io_uring each wait is a one-shot `IORING_OP_POLL_ADD`; on epoll, a
    /// readiness wait in the loop's epoll set.
    ///
    /// - Throws: ``IOError`` (`EBADF`) for a descriptor that is not open,
    ///   (`EPERM`) for a regular file or directory, which is always ready
    ///   (read those with ``File``); ``EventLoopError`` from a thread other
    ///   than the running loop's, or on a closed loop. Before the loop runs,
    ///   any thread may add and remove, as with `callSoon`.
    public func addReader(_ fd: Int32, _ callback: @escaping () throws -> Void) throws {
        try watch(fd, readable: true, callback)
    }

    /// Calls `callback` on the loop whenever `fd` is writable, until
    /// ``removeWriter(_:)``: asyncio's `loop.add_writer`. As
    /// ``addReader(_:_:)``, for the sending side: a descriptor in error or
    /// hung up counts as writable.
    ///
    /// ```swift
    /// try loop.addWriter(fd) {
    ///     if flushPending(fd) { try loop.removeWriter(fd) }   // nothing left to send
    /// }
    /// ```
    public func addWriter(_ fd: Int32, _ callback: @escaping () throws -> Void) throws {
        try watch(fd, readable: false, callback)
    }

    /// Stops calling the reader of `fd`; returns false when it had none:
    /// asyncio's `loop.remove_reader`. Safe inside the reader's own callback.
    ///
    /// - Throws: ``EventLoopError`` from a thread other than the running loop's.
    @discardableResult
    public func removeReader(_ fd: Int32) throws(EventLoopError) -> Bool {
        try unwatch(fd, readable: true)
    }

    /// Stops calling the writer of `fd`; returns false when it had none:
    /// asyncio's `loop.remove_writer`.
    ///
    /// - Throws: ``EventLoopError`` from a thread other than the running loop's.
    @discardableResult
    public func removeWriter(_ fd: Int32) throws(EventLoopError) -> Bool {
        try unwatch(fd, readable: false)
    }

    private func watch(_ fd: Int32, readable: Bool, _ callback: @escaping () throws -> Void) throws {
        let operation = readable ? "addReader" : "addWriter"
        // As callSoon: from the loop's thread, or before the loop runs.
        try checkLoopThread(operation)
        let file = try checkWatchable(fd, operation: operation)
        let key = DescriptorWatch.Key(fd: fd, readable: readable)
        if let existing = watches[key] {
            if existing.file == file {
                existing.callback = callback
                return
            }
            // The number was closed and reused without a remove: the old
            // watch waits on a file that is gone. Start afresh.
            _ = dropWatch(key)
        }
        let watch = DescriptorWatch(callback, file: file)
        watches[key] = watch
        // The watch is a loop-thread object; the task runs on this thread only.
        let local = UnsafeSendable(watch)
        watch.task = spawn(name: "\(operation) fd \(fd)") { [self] in
            await runWatch(local.value, key)
        }
    }

    /// Both backends must agree on what can be watched: epoll refuses a
    /// regular file (EPERM) where io_uring's poll says it is always ready.
    private func checkWatchable(_ fd: Int32, operation: String) throws(IOError) -> FileIdentity {
        var status = stat()
        guard fd >= 0, fstat(fd, &status) == 0 else {
            throw IOError(operation: operation, errno: Errno(EBADF), fd: fd, detail: "not an open descriptor")
        }
        let kind = status.st_mode & S_IFMT
        if kind == S_IFREG || kind == S_IFDIR {
            throw IOError(operation: operation, errno: Errno(EPERM), fd: fd,
                          detail: "a regular file or directory is always ready; read and write it with File")
        }
        return FileIdentity(device: UInt64(status.st_dev), inode: UInt64(status.st_ino))
    }

    /// The watch's task: wait for readiness, call, and again, until removed,
    /// cancelled (loop close) or the descriptor fails.
    private nonisolated(nonsending) func runWatch(_ watch: DescriptorWatch, _ key: DescriptorWatch.Key) async {
        defer { watch.task = nil }   // the task held the watch, the watch the task
        let (fd, readable) = (key.fd, key.readable)
        let events = UInt32(readable ? POLLIN : POLLOUT)
        let name = readable ? "reader" : "writer"
        while !Task.isCancelled {
            guard let ready = try? await perform("poll", fd: fd, { _ in .poll(fd: fd, events: events) }, extract: { _, result in result }),
                  !Task.isCancelled, watches[key] === watch else { return }
            // POLLNVAL: the number was closed while watched (epoll's poll
            // says so; io_uring's poll holds the file and never completes).
            guard ready >= 0, Int32(ready) & Int32(POLLNVAL) == 0 else {
                let errno = ready < 0 ? Errno(ready) : Errno(EBADF)
                callExceptionHandler(ExceptionContext(
                    message: "The \(name) of descriptor \(fd) ended: the descriptor failed (was it closed before remove\(readable ? "Reader" : "Writer")?)",
                    error: IOError(operation: readable ? "addReader" : "addWriter", errno: errno, fd: fd), source: .callback(nil)))
                _ = dropWatch(key)
                return
            }
            do {
                try watch.callback()
            } catch {
                callExceptionHandler(ExceptionContext(message: "Error in the \(name) callback of descriptor \(fd)", error: error,
                                                      source: .callback(nil)))
            }
        }
    }

    private func unwatch(_ fd: Int32, readable: Bool) throws(EventLoopError) -> Bool {
        try checkLoopThread(readable ? "removeReader" : "removeWriter")
        return dropWatch(DescriptorWatch.Key(fd: fd, readable: readable))
    }

    /// Ends the watch `key` (a descriptor, one direction) at once: its task
    /// is cancelled (which takes its wait off the backend before `cancel()`
    /// returns, this being the loop thread), and once the descriptor has
    /// neither reader nor writer the epoll backend drops its registration.
    /// Now, not when the task unwinds: the caller may close the descriptor
    /// and get the number back for another file before that.
    private func dropWatch(_ key: DescriptorWatch.Key) -> Bool {
        guard let watch = watches.removeValue(forKey: key) else { return false }
        watch.task?.cancel()
        if watches[DescriptorWatch.Key(fd: key.fd, readable: !key.readable)] == nil { io.unwatch(fd: key.fd) }
        return true
    }
}
