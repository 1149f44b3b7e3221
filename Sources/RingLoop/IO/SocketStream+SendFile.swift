import CUring
import Glibc

extension SocketStream {
    /// Sends `count` bytes of `file` from `offset` without copying them
    /// through user space: asyncio's `loop.sendfile`. Returns the bytes sent,
    /// fewer than `count` only when the file ends first.
    ///
    /// Bytes written before this call go first (it waits for the send queue
    /// to empty); then `sendfile(2)` moves page-cache pages to the socket,
    /// and when the socket is full the task waits for room (a poll SQE on
    /// io_uring, readiness on epoll). The file's own position is not used or
    /// moved.
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
        await transport.waitUntilSent()
        try state.throwFailure("sendfile")
        var position = off_t(offset)
        var sent = 0
        while sent < count {
            let socket = fileDescriptor, source = file.fileDescriptor
            guard socket >= 0, source >= 0 else {
                throw IOError(operation: "sendfile", errno: Errno(EBADF), path: source < 0 ? file.path : remoteAddress?.description,
                              detail: IOError.closedDetail)
            }
            let n = Glibc.sendfile(socket, source, &position, Swift.min(count - sent, 1 << 30))
            if n > 0 {
                sent += n
                continue
            }
            if n == 0 { break }  // the file ended
            let error = errno
            guard error == EAGAIN || error == EINTR else {
                throw IOError(operation: "sendfile", errno: Errno(error), fd: socket, path: file.path)
            }
            if error == EAGAIN {
                let ready = try await loop.perform("poll", fd: socket) { _ in .poll(fd: socket, events: UInt32(POLLOUT)) }
                if ready == -ECANCELED {
                    transport.abort()
                    throw CancellationError()
                }
                if ready < 0 { throw IOError(operation: "sendfile", errno: Errno(ready), fd: socket, path: file.path) }
            }
        }
        return sent
    }
}
