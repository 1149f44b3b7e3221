import CUring
import Glibc

// How each ``Operation`` becomes an SQE: one case per opcode, with the
// choices the backend makes while filling it (multishot or single-shot,
// provided buffers or a pooled one, a fixed file, WAITID or a pidfd poll).
// Kept apart from the ring's submission and reaping, which never look
// inside an operation; this file never touches the ring itself.
extension URingBackend {
    /// Fills `sqe`; false when the operation completed without the kernel.
    func prepare(_ sqe: UnsafeMutablePointer<io_uring_sqe>, _ operation: Operation, _ token: OperationToken) -> Bool {
        switch operation {
        case .nop:
            io_uring_prep_nop(sqe)
        case .timeout(let ts):
            io_uring_prep_timeout(sqe, ts, 0, 0)
        case .cancel(let target):
            io_uring_prep_cancel64(sqe, target.rawValue, 0)
        case .read(let fd, let buffer, let count, let offset):
            io_uring_prep_read(sqe, fd, buffer, count, offset)
        case .write(let fd, let buffer, let count, let offset):
            io_uring_prep_write(sqe, fd, buffer, count, offset)
        case .readFixed(let fd, let buffer, let count, let offset, let index):
            io_uring_prep_read_fixed(sqe, fd, buffer, count, offset, Int32(index))
        case .writeFixed(let fd, let buffer, let count, let offset, let index):
            io_uring_prep_write_fixed(sqe, fd, buffer, count, offset, Int32(index))
        case .readv(let fd, let iovecs, let count, let offset):
            io_uring_prep_readv(sqe, fd, iovecs, count, offset)
        case .writev(let fd, let iovecs, let count, let offset):
            io_uring_prep_writev(sqe, fd, iovecs, count, offset)
        case .recv(let fd, let buffer, let count, let flags):
            io_uring_prep_recv(sqe, fd, buffer, Int(count), flags)
        case .receiveStream(let fd):
            if buffers.isKernelRing {
                if multishot.useMultishot(operation, token: token) {
                    io_uring_prep_recv_multishot(sqe, fd, nil, 0, 0)
                } else {
                    io_uring_prep_recv(sqe, fd, nil, 0, 0)
                }
                cu_sqe_select_buffer(sqe, buffers.group)
                if options.pollFirst { cu_sqe_poll_first(sqe) }
                if options.fixedFiles { useFixedFile(sqe, fd) }
            } else {
                guard let id = buffers.take() else {
                    known.append(Completion(token: token, result: -ENOBUFS, flags: 0))
                    return false
                }
                pooledReceives[token.rawValue] = id
                io_uring_prep_recv(sqe, fd, buffers.pointer(id), buffers.size, 0)
            }
        case .send(let fd, let buffer, let count, let flags):
            io_uring_prep_send(sqe, fd, buffer, Int(count), flags)
            if options.fixedFiles { useFixedFile(sqe, fd) }
            sendsSubmitted += 1
        case .recvmsg(let fd, let message, let flags):
            io_uring_prep_recvmsg(sqe, fd, message, flags)
        case .sendmsg(let fd, let message, let flags):
            io_uring_prep_sendmsg(sqe, fd, message, flags)
            if options.fixedFiles { useFixedFile(sqe, fd) }
            sendsSubmitted += 1
        case .accept(let fd, let address, let length, let flags):
            io_uring_prep_accept(sqe, fd, address, length, flags)
        case .acceptStream(let fd):
            let flags = Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
            if multishot.useMultishot(operation, token: token) {
                io_uring_prep_multishot_accept(sqe, fd, nil, nil, flags)
            } else {
                io_uring_prep_accept(sqe, fd, nil, nil, flags)
                singleShotAccepts[token.rawValue] = fd
            }
        case .connect(let fd, let address, let length):
            io_uring_prep_connect(sqe, fd, address, length)
        case .shutdown(let fd, let how):
            io_uring_prep_shutdown(sqe, fd, how)
        case .close(let fd):
            io_uring_prep_close(sqe, fd)
        case .openat(let directory, let path, let flags, let mode):
            io_uring_prep_openat(sqe, directory, path, flags, mode)
        case .statx(let directory, let path, let flags, let mask, let buffer):
            io_uring_prep_statx(sqe, directory, path, flags, mask, buffer)
        case .fsync(let fd, let dataOnly):
            io_uring_prep_fsync(sqe, fd, dataOnly ? UInt32(IORING_FSYNC_DATASYNC) : 0)
        case .poll(let fd, let events):
            io_uring_prep_poll_add(sqe, fd, events)
        case .splice(let input, let inputOffset, let output, let outputOffset, let count):
            io_uring_prep_splice(sqe, input, inputOffset, output, outputOffset, count, CU_SPLICE_F_MOVE)
        case .waitid(let pidfd, let info):
            if supportedOptionalOpcodes.contains(UInt32(CU_OP_WAITID)) {
                cu_prep_waitid_pidfd(sqe, pidfd, info)
            } else {
                memset(info, 0, MemoryLayout<siginfo_t>.size)   // "not reaped": the caller reaps
                io_uring_prep_poll_add(sqe, pidfd, UInt32(POLLIN))
            }
        case .unlinkat(let directory, let path, let flags):
            io_uring_prep_unlinkat(sqe, directory, path, flags)
        case .renameat(let from, let to):
            io_uring_prep_renameat(sqe, AT_FDCWD, from, AT_FDCWD, to, 0)
        case .mkdirat(let directory, let path, let mode):
            io_uring_prep_mkdirat(sqe, directory, path, mode)
        case .fallocate(let fd, let mode, let offset, let length):
            io_uring_prep_fallocate(sqe, fd, mode, off_t(Int64(bitPattern: offset)), off_t(Int64(bitPattern: length)))
        case .ftruncate(let fd, let length):
            cu_prep_ftruncate(sqe, fd, length)
        }
        io_uring_sqe_set_data64(sqe, token.rawValue)
        return true
    }
}
