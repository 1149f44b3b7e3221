import CUring
import Glibc

/// The blocking system call behind each file operation, for the threads that
/// run them: the epoll backend's pool for every file operation, and the
/// loop's pool for a file-system call whose io_uring opcode the kernel lacks.
/// Returns the kernel-style result (`>= 0`, or `-errno`).
enum BlockingFileCall {
    static func perform(_ operation: Operation) -> Int32 {
        switch operation {
        case .read(let fd, let buffer, let count, let offset):
            at(offset, { Glibc.read(fd, buffer, Int(count)) }, { pread(fd, buffer, Int(count), $0) })
        case .write(let fd, let buffer, let count, let offset):
            at(offset, { Glibc.write(fd, buffer, Int(count)) }, { pwrite(fd, buffer, Int(count), $0) })
        case .readFixed(let fd, let buffer, let count, let offset, _):
            perform(.read(fd: fd, buffer: buffer, count: count, offset: offset))
        case .writeFixed(let fd, let buffer, let count, let offset, _):
            perform(.write(fd: fd, buffer: buffer, count: count, offset: offset))
        case .readv(let fd, let iovecs, let count, let offset):
            at(offset, { Glibc.readv(fd, iovecs, Int32(count)) }, { preadv(fd, iovecs, Int32(count), $0) })
        case .writev(let fd, let iovecs, let count, let offset):
            at(offset, { Glibc.writev(fd, iovecs, Int32(count)) }, { pwritev(fd, iovecs, Int32(count), $0) })
        case .openat(let directory, let path, let flags, let mode):
            result(Glibc.openat(directory, path, flags, mode))
        case .statx(let directory, let path, let flags, let mask, let buffer):
            result(cu_statx(directory, path, flags, mask, buffer))
        case .fsync(let fd, let dataOnly):
            result(dataOnly ? fdatasync(fd) : Glibc.fsync(fd))
        case .unlinkat(let directory, let path, let flags):
            result(Glibc.unlinkat(directory, path, flags))
        case .renameat(let from, let to):
            result(Glibc.rename(from, to))
        case .mkdirat(let directory, let path, let mode):
            result(Glibc.mkdirat(directory, path, mode))
        case .fallocate(let fd, let mode, let offset, let length):
            result(cu_fallocate(fd, mode, off_t(Int64(bitPattern: offset)), off_t(Int64(bitPattern: length))))
        case .ftruncate(let fd, let length):
            result(Glibc.ftruncate(fd, off_t(Int64(bitPattern: length))))
        case .splice(let input, let inputOffset, let output, let outputOffset, let count):
            result(cu_splice(input, inputOffset, output, outputOffset, Int(count), CU_SPLICE_F_MOVE))
        default:
            preconditionFailure("BlockingFileCall.perform: \(operation.name) is not a file operation")
        }
    }

    /// A transfer at `offset`: the fd's own position (`current`) for
    /// ``currentFileOffset``, the positional call otherwise.
    private static func at(_ offset: UInt64, _ current: () -> Int, _ positional: (off_t) -> Int) -> Int32 {
        result(offset == currentFileOffset ? current() : positional(off_t(Int64(bitPattern: offset))))
    }

    private static func result(_ rc: Int32) -> Int32 { rc < 0 ? -errno : rc }
    private static func result(_ rc: Int) -> Int32 { rc < 0 ? -errno : Int32(truncatingIfNeeded: rc) }
}
