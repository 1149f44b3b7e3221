import CUring
import Glibc

/// The file-system calls a server or tool needs around its files, awaited on
/// the running loop. Each is one SQE where the kernel has the opcode (probed
/// when the ring is set up: UNLINKAT, RENAMEAT and MKDIRAT from 5.11-5.15,
/// FALLOCATE, FTRUNCATE from 6.9), and a call on the loop's thread pool
/// otherwise, and always on the epoll backend.
///
/// ```swift
/// try await FileSystem.makeDirectory("/tmp/spool")
/// try await writeFile("/tmp/spool/job.tmp", payload)
/// try await FileSystem.rename("/tmp/spool/job.tmp", to: "/tmp/spool/job")
/// try await FileSystem.syncDirectory("/tmp/spool")     // the rename is durable
/// for name in try await FileSystem.contentsOfDirectory("/tmp/spool") { print(name) }
/// ```
///
/// Errors are ``IOError``s naming the call, the path and the errno:
/// `.noSuchFile`, `.permissionDenied`, `EEXIST`, `ENOTEMPTY`, ...
public enum FileSystem {
    /// Removes a file (or a symbolic link, or a socket): `unlink(2)`.
    public static nonisolated(nonsending) func remove(_ path: String) async throws {
        let buffer = try PathBuffer(path, operation: "unlink")
        try await run(.unlinkat(directory: AT_FDCWD, path: buffer.pointer, flags: 0), keepAlive: buffer, path: path)
    }

    /// Removes an empty directory: `rmdir(2)`.
    public static nonisolated(nonsending) func removeDirectory(_ path: String) async throws {
        let buffer = try PathBuffer(path, operation: "rmdir")
        try await run(.unlinkat(directory: AT_FDCWD, path: buffer.pointer, flags: AT_REMOVEDIR), keepAlive: buffer, path: path)
    }

    /// Renames `source` to `destination`, replacing it if it exists: `rename(2)`.
    public static nonisolated(nonsending) func rename(_ source: String, to destination: String) async throws {
        let buffers = PathPair(try PathBuffer(source, operation: "rename"), try PathBuffer(destination, operation: "rename"))
        try await run(.renameat(from: buffers.first.pointer, to: buffers.second.pointer), keepAlive: buffers,
                      path: "\(source) -> \(destination)")
    }

    /// Makes a directory: `mkdir(2)` (not its parents).
    public static nonisolated(nonsending) func makeDirectory(_ path: String, permissions: mode_t = 0o755) async throws {
        let buffer = try PathBuffer(path, operation: "mkdir")
        try await run(.mkdirat(directory: AT_FDCWD, path: buffer.pointer, mode: permissions), keepAlive: buffer, path: path)
    }

    /// The status of `path` (`statx`), following a final symbolic link
    /// unless `followSymlinks` is false.
    public static nonisolated(nonsending) func status(_ path: String, followSymlinks: Bool = true) async throws -> File.Status {
        let buffer = try PathBuffer(path, operation: "statx")
        let box = StatxBuffer()
        let loop = try EventLoop.running()
        let rc = try await loop.perform("statx", keepAlive: PathPair(buffer, box.emptyPath, box)) { _ in
            .statx(directory: AT_FDCWD, path: buffer.pointer, flags: followSymlinks ? 0 : AT_SYMLINK_NOFOLLOW,
                   mask: UInt32(STATX_BASIC_STATS), buffer: box.pointer)
        }
        try check(rc, "statx", path: path)
        return box.status
    }

    /// The names in a directory, without `.` and `..`, in the order the file
    /// system gives them. Listed on the loop's thread pool (io_uring has no
    /// getdents opcode).
    public static nonisolated(nonsending) func contentsOfDirectory(_ path: String) async throws -> [String] {
        _ = try PathBuffer(path, operation: "opendir")
        let loop = try EventLoop.running()
        return try await loop.offload { () throws -> [String] in
            guard let directory = opendir(path) else { throw IOError(operation: "opendir", errno: Errno(errno), path: path) }
            defer { closedir(directory) }
            var names: [String] = []
            while true {
                errno = 0
                guard let entry = readdir(directory) else {
                    if errno != 0 { throw IOError(operation: "readdir", errno: Errno(errno), path: path) }
                    return names
                }
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
                }
                if name != ".", name != ".." { names.append(name) }
            }
        }
    }

    /// Makes a directory's entries durable (`fsync` of the directory): what
    /// a rename or a new file needs before it survives a crash.
    public static nonisolated(nonsending) func syncDirectory(_ path: String) async throws {
        let directory = try await File.open(path, File.Options(flags: O_RDONLY | O_DIRECTORY))
        do {
            try await directory.sync()
        } catch {
            try? await directory.close()
            throw error
        }
        try await directory.close()
    }

    /// Submits `operation`, or runs it on the thread pool when io_uring lacks its opcode.
    private static nonisolated(nonsending) func run(_ operation: Operation, keepAlive: AnyObject, path: String) async throws {
        let loop = try EventLoop.running()
        try loop.requireLoopThread(operation.name)
        let rc: Int32
        if loop.io.canSubmit(operation) {
            rc = try await loop.perform(operation.fileSystemCallName, keepAlive: keepAlive) { _ in operation }
        } else {
            let call = BlockingCall(operation, keepAlive: keepAlive)
            rc = try await loop.offload { call.run() }
        }
        try check(rc, operation.name, path: path)
    }

    static func check(_ rc: Int32, _ operation: String, path: String) throws(IOError) {
        if rc < 0 { throw IOError(operation: operation, errno: Errno(rc), path: path) }
    }
}

extension File {
    /// Reserves (or with `keepSize`, pre-allocates without growing the size)
    /// `length` bytes from `offset`: `fallocate(2)`. Fails with EOPNOTSUPP on
    /// file systems without it.
    public nonisolated(nonsending) func allocate(offset: Int64 = 0, length: Int64, keepSize: Bool = false) async throws {
        guard offset >= 0, length > 0 else {
            throw IOError(operation: "fallocate", errno: Errno(EINVAL), fd: fileDescriptor, path: path,
                          detail: "offset must not be negative and length must be positive (offset \(offset), length \(length))")
        }
        try await fileSystemCall(.fallocate(fd: fileDescriptor, mode: keepSize ? CU_FALLOC_FL_KEEP_SIZE : 0,
                                            offset: UInt64(offset), length: UInt64(length)))
    }

    /// Cuts or extends the file to `size` bytes: `ftruncate(2)`.
    public nonisolated(nonsending) func truncate(to size: Int64) async throws {
        guard size >= 0 else {
            throw IOError(operation: "ftruncate", errno: Errno(EINVAL), fd: fileDescriptor, path: path, detail: "size must not be negative, got \(size)")
        }
        try await fileSystemCall(.ftruncate(fd: fileDescriptor, length: UInt64(size)))
    }

    private nonisolated(nonsending) func fileSystemCall(_ operation: Operation) async throws {
        let loop = descriptor.loop
        let rc: Int32
        if loop.io.canSubmit(operation) {
            rc = Int32(try await descriptor.perform(operation.fileSystemCallName) { fd, _ in operation.replacingFD(fd) })
        } else {
            let call = BlockingCall(operation, keepAlive: nil)
            rc = try await descriptor.offload(operation.fileSystemCallName) { fd in call.run(fd: fd) }
        }
        try FileSystem.check(rc, operation.name, path: path)
    }
}

/// Two objects kept alive together for one operation.
final class PathPair: @unchecked Sendable {
    let first: PathBuffer
    let second: PathBuffer
    let extra: AnyObject?
    init(_ first: PathBuffer, _ second: PathBuffer, _ extra: AnyObject? = nil) {
        self.first = first
        self.second = second
        self.extra = extra
    }
}

/// A file-system call run on a pool thread, for a kernel whose io_uring lacks
/// the opcode. The pointers it holds live in `keepAlive`.
final class BlockingCall: @unchecked Sendable {
    let operation: Operation
    let keepAlive: AnyObject?
    init(_ operation: Operation, keepAlive: AnyObject?) {
        self.operation = operation
        self.keepAlive = keepAlive
    }

    /// Runs the call; with `fd`, on that descriptor number (the one the
    /// descriptor holds at the time of the call) instead of the operation's.
    func run(fd: Int32? = nil) -> Int32 {
        withExtendedLifetime(keepAlive) { BlockingFileCall.perform(fd.map(operation.replacingFD) ?? operation) }
    }
}

extension Operation {
    /// ``name`` as the static string operations are labelled with.
    var fileSystemCallName: StaticString {
        switch self {
        case .unlinkat(_, _, let flags): flags & AT_REMOVEDIR != 0 ? "rmdir" : "unlink"
        case .renameat: "rename"
        case .mkdirat: "mkdir"
        case .fallocate: "fallocate"
        case .ftruncate: "ftruncate"
        default: "file-system call"
        }
    }

    /// The same file call on another descriptor (a Descriptor supplies its fd).
    func replacingFD(_ fd: Int32) -> Operation {
        switch self {
        case .fallocate(_, let mode, let offset, let length): .fallocate(fd: fd, mode: mode, offset: offset, length: length)
        case .ftruncate(_, let length): .ftruncate(fd: fd, length: length)
        default: self
        }
    }
}
