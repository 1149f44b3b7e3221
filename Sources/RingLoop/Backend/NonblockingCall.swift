import CUring
import Glibc

/// The non-blocking system call behind each readiness-driven operation on the
/// epoll backend: socket sends, receives, accepts and connects, polls, pidfd
/// reaps, and reads and writes of pollable files. The counterpart of
/// ``BlockingFileCall``, which the thread pool runs. Returns the kernel-style
/// result (`>= 0`, or `-errno`), or `nil` when the call would block.
enum NonblockingCall {
    /// Performs `operation` without blocking. `nil` means "not ready: wait
    /// for readiness and call again". `connectStarted` carries a connect from
    /// its first call (EINPROGRESS) to the one that reads its outcome.
    static func perform(_ operation: Operation, connectStarted: inout Bool) -> Int32? {
        let rc: Int32
        switch operation {
        case .recv(let fd, let buffer, let count, let flags):
            rc = kernelResult(Glibc.recv(fd, buffer, Int(count), flags | Int32(MSG_DONTWAIT)))
        case .send(let fd, let buffer, let count, let flags):
            rc = kernelResult(Glibc.send(fd, buffer, Int(count), flags | Int32(MSG_DONTWAIT)))
        case .recvmsg(let fd, let message, let flags):
            rc = kernelResult(Glibc.recvmsg(fd, message, Int32(bitPattern: flags) | Int32(MSG_DONTWAIT)))
        case .sendmsg(let fd, let message, let flags):
            rc = kernelResult(Glibc.sendmsg(fd, message, Int32(bitPattern: flags) | Int32(MSG_DONTWAIT)))
        case .accept(let fd, let address, let length, let flags):
            rc = kernelResult(cu_accept4(fd, address, length, flags))
        case .poll(let fd, let events):
            var descriptor = pollfd(fd: fd, events: Int16(truncatingIfNeeded: events), revents: 0)
            let ready = Glibc.poll(&descriptor, 1, 0)
            if ready < 0 { return -errno }
            return ready == 0 ? nil : Int32(descriptor.revents)
        case .waitid(let pidfd, let info):
            let reaped = cu_waitid_pidfd(pidfd, info)
            return reaped == 0 ? nil : min(reaped, 0)
        case .read(let fd, _, _, _):
            // A pollable file (non-blocking): the same call the pool makes.
            rc = BlockingFileCall.perform(operation)
            if rc == 0, awaitsFirstWriter(fifo: fd) { return nil }
        case .write:
            rc = BlockingFileCall.perform(operation)
        case .connect(let fd, let address, let length):
            if connectStarted {
                var error: Int32 = 0
                var size = socklen_t(MemoryLayout<Int32>.size)
                if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0 { return -errno }
                return error == 0 ? 0 : -error
            }
            rc = kernelResult(Glibc.connect(fd, address, length))
            // Only EINPROGRESS means "under way". EAGAIN (from a Unix-domain
            // connect, a full backlog; `Sockets` makes those directly) is a
            // failure, not a connection in progress.
            if rc == -EINPROGRESS {
                connectStarted = true
                return nil
            }
            return rc
        default:
            preconditionFailure("NonblockingCall.perform: \(operation.name) is not a one-shot socket operation")
        }
        return rc == -EAGAIN || rc == -EWOULDBLOCK ? nil : rc
    }

    /// Whether `fd` is a FIFO that no writer has opened yet. Opened
    /// non-blocking, such a FIFO reads 0 at once, where io_uring (and a
    /// blocking open) waits for the first writer; poll tells the two apart,
    /// showing POLLHUP only once a writer has come and gone. Asked only when
    /// a read returned 0, so it costs nothing on the data path.
    private static func awaitsFirstWriter(fifo fd: Int32) -> Bool {
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFIFO else { return false }
        var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return Glibc.poll(&descriptor, 1, 0) == 0
    }
}
