import CUring
import Glibc

// Memory the kernel reads or writes while an operation is in flight: each is
// a class, kept alive by the operation (its `keepAlive`) so that it stays at
// one address until the final completion, even when the awaiting task is
// cancelled and gone.

/// The iovec array for a vectored operation plus the buffers it points
/// into, kept alive together until the final completion.
final class IOVector {
    /// Linux's `IOV_MAX` (`UIO_MAXIOV`), which Swift's Glibc does not export.
    static let limit = 1024
    let buffers: [IOBuffer]
    let iovecs: UnsafeMutablePointer<iovec>

    /// `fd` and `path` name the file in the error a bad count gets.
    init(_ buffers: [IOBuffer], filled: Bool, fd: Int32, path: String) throws(IOError) {
        guard !buffers.isEmpty, buffers.count <= IOVector.limit else {
            throw IOError(operation: filled ? "writev" : "readv", errno: Errno(EINVAL), fd: fd, path: path,
                          detail: "1...\(IOVector.limit) buffers are needed, got \(buffers.count)")
        }
        self.buffers = buffers
        iovecs = .allocate(capacity: buffers.count)
        for (i, buffer) in buffers.enumerated() {
            iovecs[i] = iovec(iov_base: buffer.base, iov_len: filled ? buffer.count : buffer.capacity)
        }
    }

    deinit { iovecs.deallocate() }
}

/// A C string that stays at one address until the operation using it ends.
final class PathBuffer {
    let pointer: UnsafeMutablePointer<CChar>

    /// - Throws: ``IOError`` (`.invalidArgument`) for an empty path or one
    ///   holding a NUL byte (C would stop there and name another file).
    convenience init(_ path: String, operation: String) throws(IOError) {
        guard !path.isEmpty else {
            throw IOError(operation: operation, errno: Errno(ENOENT), path: path, detail: "the path is empty")
        }
        try SocketAddress.rejectNUL(path, "path", operation: operation)
        self.init(path)
    }

    init(_ path: String) {
        let utf8 = Array(path.utf8CString)
        pointer = .allocate(capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
    }
    deinit { pointer.deallocate() }
}

/// A `struct statx` the kernel fills, kept alive by the operation.
final class StatxBuffer {
    let pointer = UnsafeMutablePointer<statx>.allocate(capacity: 1)
    let emptyPath = PathBuffer("")
    init() { pointer.initialize(to: statx()) }
    deinit { pointer.deallocate() }

    var status: File.Status {
        let s = pointer.pointee
        return File.Status(size: Int64(s.stx_size), mode: UInt32(s.stx_mode),
                           modificationTimeNanoseconds: Int64(s.stx_mtime.tv_sec) * 1_000_000_000 + Int64(s.stx_mtime.tv_nsec))
    }
}
