import CUring
import Glibc

extension SocketStream {
    /// Sends `count` bytes of `file` from `offset` without copying them
    /// through user space: asyncio's `loop.sendfile`. Returns the bytes sent,
    /// fewer than `count` only when the file ends first.
    ///
    /// Bytes written before this call go first (it waits for the send queue
    /// to empty), and writes other tasks start while it runs wait until it
    /// ends, so nothing lands inside the file's bytes. Then, a megabyte at a
    /// time: pages in the page cache go by `sendfile(2)` on the loop thread;
    /// on io_uring, pages that would have to be read from disk (cachestat(2)
    /// says so) are spliced into a pipe by an SQE, so the kernel's workers
    /// wait for the disk and the loop does not, and from the pipe to the
    /// socket. When the socket is full the task waits for room (a poll SQE
    /// on io_uring, readiness on epoll). The file's own position is not used
    /// or moved.
    ///
    /// ```swift
    /// let file = try await File.open("index.html")
    /// try await stream.writeAll(header)
    /// _ = try await stream.sendFile(file, offset: 0, count: Int(try await file.stat().size))
    /// ```
    ///
    /// - Throws: ``IOError`` for a negative offset or count, a closed file or
    ///   stream, or the connection's error; `CancellationError` (the bytes
    ///   sent so far stay sent; the connection is aborted, as for a cancelled write).
    @discardableResult
    public nonisolated(nonsending) func sendFile(_ file: File, offset: Int64 = 0, count: Int) async throws -> Int {
        try checkWritable()
        guard offset >= 0, count >= 0 else {
            throw IOError(operation: "sendfile", errno: Errno(EINVAL), fd: fileDescriptor, path: file.path,
                          detail: "offset and count must not be negative (offset \(offset), count \(count))")
        }
        // It sends on the socket directly, past the send queue: hold the
        // write side, as a write of many chunks does.
        return try await holdingWriteSide { try await sendFileWholly(file, offset: offset, count: count) }
    }

    /// ``sendFile(_:offset:count:)`` once it holds the write side.
    private nonisolated(nonsending) func sendFileWholly(_ file: File, offset: Int64, count: Int) async throws -> Int {
        await transport.waitUntilSent()
        try state.throwFailure("sendfile")
        var splice = false
        if case .uring(let ring) = loop.io { splice = ring.options.spliceFiles }
        var pipe: SplicePipe?
        defer { pipe?.close() }
        var position = Int64(offset)
        var sent = 0
        do {
            while sent < count {
                let (socket, source) = try descriptors(file, "sendfile")
                let want = Swift.min(count - sent, Self.sendFileChunk)
                // Cached pages (or epoll): sendfile(2) on the loop thread, the
                // cheapest way. Pages that would be read from disk (or a kernel
                // without cachestat): spliced by the ring's workers instead.
                if !splice || cu_range_cached(source, UInt64(position), UInt64(want)) == 1 {
                    var cursor = off_t(position)
                    let n = Glibc.sendfile(socket, source, &cursor, want)
                    let error = n < 0 ? errno : 0
                    if n > 0 {
                        sent += n
                        position += Int64(n)
                    } else if n == 0 {
                        break  // the file ended
                    } else if error == EAGAIN {
                        try await waitForRoom(socket, file, "sendfile")
                    } else if error != EINTR {
                        throw IOError(operation: "sendfile", errno: Errno(error), fd: socket, path: file.path,
                                      detail: error == EBADF ? Descriptor.accessModeDetail(source) : nil)
                    }
                    continue
                }
                if pipe == nil { pipe = try SplicePipe(for: file, socket: socket) }
                let moved = try await spliceChunk(file, at: position, count: want, through: pipe!)
                if moved == 0 { break }  // the file ended
                sent += moved
                position += Int64(moved)
            }
        } catch is CancellationError {
            transport.abort()
            throw CancellationError()
        }
        return sent
    }

    /// How much one step of ``sendFile(_:offset:count:)`` moves (and checks
    /// for being cached): large enough that the check is noise, small enough
    /// that a cold chunk is one pipe's worth.
    static var sendFileChunk: Int { 1 << 20 }

    /// Splices up to `count` bytes at `position` into the pipe (an SQE, run
    /// by the kernel's workers, so reading a cold page stalls one of them, not
    /// the loop), then from the pipe into the socket on the loop thread
    /// (pipe pages to socket: no disk, never blocks). Returns the bytes sent;
    /// 0 at the end of the file.
    private nonisolated(nonsending) func spliceChunk(_ file: File, at position: Int64, count: Int, through pipe: SplicePipe) async throws -> Int {
        let want = UInt32(Swift.min(count, pipe.capacity))
        let filled = try await file.descriptor.perform("splice") { fd, _ in
            .splice(input: fd, inputOffset: position, output: pipe.input, outputOffset: -1, count: want)
        }
        var inPipe = filled
        while inPipe > 0 {
            let (socket, _) = try descriptors(file, "splice")
            let n = cu_splice(pipe.output, -1, socket, -1, inPipe, CU_SPLICE_F_MOVE | CU_SPLICE_F_NONBLOCK)
            if n == -Int(EAGAIN) {
                try await waitForRoom(socket, file, "splice")
            } else if n < 0, n != -Int(EINTR) {
                throw IOError(operation: "splice", errno: Errno(Int32(n)), fd: socket, path: file.path)
            } else if n > 0 {
                inPipe -= n
            }
        }
        return filled
    }

    /// The socket's and the file's descriptors, or the error for whichever is
    /// closed. A socket the connection's own error closed (the peer reset it
    /// while this call waited for room) throws that error, not `.closed`.
    private func descriptors(_ file: File, _ operation: String) throws -> (socket: Int32, file: Int32) {
        let socket = fileDescriptor, source = file.fileDescriptor
        if socket < 0 {
            try state.throwFailure(operation)
            // Lost this iteration: the socket is closed, connectionLost is still to come.
            try throwPendingLoss()
        }
        guard socket >= 0, source >= 0 else {
            throw IOError(operation: operation, errno: Errno(EBADF), path: source < 0 ? file.path : transport.errorLabel,
                          detail: IOError.closedDetail)
        }
        return (socket, source)
    }

    /// Waits until the socket has room (a poll SQE on io_uring, readiness on epoll).
    private nonisolated(nonsending) func waitForRoom(_ socket: Int32, _ file: File, _ operation: String) async throws {
        let ready = try await loop.perform("poll", fd: socket) { _ in .poll(fd: socket, events: UInt32(POLLOUT)) }
        if ready == -ECANCELED { throw CancellationError() }
        if ready < 0 { throw IOError(operation: operation, errno: Errno(ready), fd: socket, path: file.path) }
    }
}

/// One ``SocketStream/sendFile(_:offset:count:)`` call's pipe for splicing:
/// its own, so the bytes in it belong to that call alone. Closed when the
/// call ends; every splice naming it has completed by then (an operation's
/// `perform` returns only after its completion).
struct SplicePipe {
    let output: Int32
    let input: Int32
    let capacity: Int

    init(for file: File, socket: Int32) throws {
        var ends: [Int32] = [-1, -1]
        let capacity = Int(cu_splice_pipe(&ends, Int32(SocketStream.sendFileChunk)))
        guard capacity > 0 else {
            throw IOError(operation: "pipe2", errno: Errno(Int32(capacity)), fd: socket, path: file.path)
        }
        (output, input, self.capacity) = (ends[0], ends[1], capacity)
    }

    func close() {
        Glibc.close(output)
        Glibc.close(input)
    }
}
