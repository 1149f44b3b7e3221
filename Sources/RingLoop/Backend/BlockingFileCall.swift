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
            kernelResult(Glibc.openat(directory, path, flags, mode))
        case .statx(let directory, let path, let flags, let mask, let buffer):
            kernelResult(cu_statx(directory, path, flags, mask, buffer))
        case .fsync(let fd, let dataOnly):
            kernelResult(dataOnly ? fdatasync(fd) : Glibc.fsync(fd))
        case .unlinkat(let directory, let path, let flags):
            kernelResult(Glibc.unlinkat(directory, path, flags))
        case .renameat(let from, let to):
            kernelResult(Glibc.rename(from, to))
        case .mkdirat(let directory, let path, let mode):
            kernelResult(Glibc.mkdirat(directory, path, mode))
        case .fallocate(let fd, let mode, let offset, let length):
            kernelResult(cu_fallocate(fd, mode, off_t(Int64(bitPattern: offset)), off_t(Int64(bitPattern: length))))
        case .ftruncate(let fd, let length):
            kernelResult(Glibc.ftruncate(fd, off_t(Int64(bitPattern: length))))
        case .splice(let input, let inputOffset, let output, let outputOffset, let count):
            kernelResult(cu_splice(input, inputOffset, output, outputOffset, Int(count), CU_SPLICE_F_MOVE))
        default:
            preconditionFailure("BlockingFileCall.perform: \(operation.name) is not a file operation")
        }
    }

    /// A transfer at `offset`: the fd's own position (`current`) for
    /// ``currentFileOffset``, the positional call otherwise.
    ///
    /// Some regular files have no positional transfers: the `/proc` files
    /// built on seq_file (`/proc/self/comm`, `uid_map`, `setgroups`) refuse
    /// `pwrite` with ESPIPE, and a driver's `stream_open` files refuse both.
    /// io_uring hands such a file the offset anyway and its handler ignores
    /// it, so `writeFile("/proc/self/comm", …)` works there. The plain call
    /// does the same here, so the backends agree (FIFOs, pipes and
    /// terminals never get this far: `File` refuses offsets for them).
    private static func at(_ offset: UInt64, _ current: () -> Int, _ positional: (off_t) -> Int) -> Int32 {
        if offset == currentFileOffset { return kernelResult(current()) }
        let n = positional(off_t(Int64(bitPattern: offset)))
        return kernelResult(n < 0 && errno == ESPIPE ? current() : n)
    }
}
