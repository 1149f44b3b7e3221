// CUring: liburing (2.3 on Debian 12) for Swift, plus the few helpers Swift
// cannot import by itself. Everything here is static inline so the module
// needs nothing beyond liburing-dev at build time.
#ifndef RINGLOOP_CURING_H
#define RINGLOOP_CURING_H

// System headers first, with the default feature macros, so they are parsed
// exactly as Swift's Glibc module parses them. liburing.h defines _GNU_SOURCE
// and _XOPEN_SOURCE itself; had it come first, this module would see a
// different fd_set than Glibc's and a clean build would fail. features.h is
// evaluated once, at the first include, so liburing's defines come too late to
// change anything. The one GNU function needed (accept4) is declared below.
#include <errno.h>
#include <fcntl.h>
#include <linux/stat.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <spawn.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

// Flags newer than some liburing headers. The kernel decides what it accepts;
// these only let us name them.
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_FEAT_NODROP
#define IORING_FEAT_NODROP (1U << 1)
#endif
#ifndef IORING_FEAT_EXT_ARG
#define IORING_FEAT_EXT_ARG (1U << 8)
#endif

// Swift imports plain integer macros but not every shifted expression, so
// the flags RingLoop uses are re-exported as constants.
static const unsigned CU_SETUP_R_DISABLED = IORING_SETUP_R_DISABLED;
static const unsigned CU_SETUP_SUBMIT_ALL = IORING_SETUP_SUBMIT_ALL;
static const unsigned CU_SETUP_COOP_TASKRUN = IORING_SETUP_COOP_TASKRUN;
static const unsigned CU_SETUP_TASKRUN_FLAG = IORING_SETUP_TASKRUN_FLAG;
static const unsigned CU_SETUP_SINGLE_ISSUER = IORING_SETUP_SINGLE_ISSUER;
static const unsigned CU_SETUP_DEFER_TASKRUN = IORING_SETUP_DEFER_TASKRUN;
static const unsigned CU_SETUP_CQSIZE = IORING_SETUP_CQSIZE;
static const unsigned CU_FEAT_NODROP = IORING_FEAT_NODROP;
static const unsigned CU_FEAT_EXT_ARG = IORING_FEAT_EXT_ARG;
static const unsigned CU_SQ_TASKRUN = IORING_SQ_TASKRUN;
static const unsigned CU_SQ_CQ_OVERFLOW = IORING_SQ_CQ_OVERFLOW;
static const unsigned char CU_SQE_IO_LINK = IOSQE_IO_LINK;
static const unsigned char CU_SQE_FIXED_FILE = IOSQE_FIXED_FILE;
static const unsigned char CU_SQE_BUFFER_SELECT = IOSQE_BUFFER_SELECT;
static const unsigned CU_RECVSEND_POLL_FIRST = IORING_RECVSEND_POLL_FIRST;

// GNU-only names from fcntl.h, spelled through the always-defined internals.
static const int CU_O_DIRECT = __O_DIRECT;
static const int CU_AT_EMPTY_PATH = 0x1000;  /* AT_EMPTY_PATH, the same on every Linux architecture */

/// One reaped completion, copied out of the CQ ring so the ring slot can be
/// returned to the kernel before any Swift code looks at it.
typedef struct {
    uint64_t user_data;
    int32_t res;
    uint32_t flags;
} cu_completion;

/// The `io_uring_for_each_cqe` macro as a function: copy up to `max` visible
/// CQEs into `out`, advance the CQ head once for the whole batch, and return
/// how many were copied. Never blocks and never enters the kernel.
static inline unsigned cu_reap(struct io_uring *ring, cu_completion *out, unsigned max) {
    unsigned head, n = 0;
    struct io_uring_cqe *cqe;
    io_uring_for_each_cqe(ring, head, cqe) {
        if (n == max) break;
        out[n].user_data = cqe->user_data;
        out[n].res = cqe->res;
        out[n].flags = cqe->flags;
        n++;
    }
    if (n) io_uring_cq_advance(ring, n);
    return n;
}

/// The SQ ring's flags word, which the kernel updates behind our back
/// (TASKRUN, CQ_OVERFLOW). Read with acquire ordering.
static inline unsigned cu_sq_flags(const struct io_uring *ring) {
    return __atomic_load_n(ring->sq.kflags, __ATOMIC_ACQUIRE);
}

/// IORING_REGISTER_ENABLE_RINGS. liburing 2.3 declares io_uring_enable_rings
/// but its shared library does not export it, so go through the syscall.
static inline int cu_enable_rings(struct io_uring *ring) {
    int ret = (int)syscall(__NR_io_uring_register, ring->ring_fd, IORING_REGISTER_ENABLE_RINGS, NULL, 0);
    return ret < 0 ? -errno : ret;
}

/// CQEs the kernel had to drop for want of memory, even under
/// IORING_FEAT_NODROP (the CQ ring's overflow counter). Should stay 0.
static inline unsigned cu_cq_dropped(const struct io_uring *ring) {
    return __atomic_load_n(ring->cq.koverflow, __ATOMIC_RELAXED);
}

/// Selects provided buffers from group `group` for a recv SQE.
static inline void cu_sqe_select_buffer(struct io_uring_sqe *sqe, unsigned short group) {
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = group;
}

/// Adds IORING_RECVSEND_POLL_FIRST to a send or recv SQE: arm the poll
/// first instead of trying the socket at submission.
static inline void cu_sqe_poll_first(struct io_uring_sqe *sqe) {
    sqe->ioprio |= IORING_RECVSEND_POLL_FIRST;
}

/// IORING_FEAT_MIN_TIMEOUT (6.12): io_uring_enter's EXT_ARG takes a
/// min_wait_usec batch timeout. liburing 2.3 predates it.
static const unsigned CU_FEAT_MIN_TIMEOUT = 1U << 15;

/// Submits what is queued and waits for `wait_nr` completions, returning
/// early once `min_wait_usec` has passed with at least one posted, and in
/// any case by `ts` (NULL: no limit). The batch wait of liburing 2.8's
/// io_uring_submit_and_wait_min_timeout, for liburing 2.3: the SQ is flushed
/// by hand exactly as liburing flushes it, then io_uring_enter is called
/// with the 6.12 getevents argument (whose former pad field is
/// min_wait_usec). Returns the enter result, or -errno.
static inline int cu_submit_and_wait_batch(struct io_uring *ring, unsigned wait_nr,
                                           struct __kernel_timespec *ts, unsigned min_wait_usec) {
    struct io_uring_sq *sq = &ring->sq;
    unsigned tail = sq->sqe_tail;
    if (sq->sqe_head != tail) {
        sq->sqe_head = tail;
        __atomic_store_n(sq->ktail, tail, __ATOMIC_RELEASE);
    }
    unsigned submit = tail - __atomic_load_n(sq->khead, __ATOMIC_ACQUIRE);
    struct {
        __u64 sigmask;
        __u32 sigmask_sz;
        __u32 min_wait_usec;
        __u64 ts;
    } arg = {0, _NSIG / 8, min_wait_usec, (__u64)(uintptr_t)ts};
    long ret = syscall(__NR_io_uring_enter, ring->ring_fd, submit, wait_nr,
                       IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG, &arg, sizeof(arg));
    return ret < 0 ? -errno : (int)ret;
}

/// The ring's features, which Swift can't reach through the anonymous
/// struct layout reliably.
static inline unsigned cu_ring_features(const struct io_uring *ring) { return ring->features; }

/// Advise the kernel not to copy the ring mappings into a forked child: a
/// child that touched them would corrupt the parent's queues.
static inline int cu_ring_dontfork(struct io_uring *ring) {
    int rc = 0;
    if (ring->sq.ring_ptr && madvise(ring->sq.ring_ptr, ring->sq.ring_sz, MADV_DONTFORK) != 0) rc = -errno;
    if (ring->cq.ring_ptr && ring->cq.ring_ptr != ring->sq.ring_ptr &&
        madvise(ring->cq.ring_ptr, ring->cq.ring_sz, MADV_DONTFORK) != 0) rc = -errno;
    if (ring->sq.sqes && madvise(ring->sq.sqes, ring->sq.ring_entries * sizeof(struct io_uring_sqe), MADV_DONTFORK) != 0) rc = -errno;
    return rc;
}

/// epoll_pwait2 (Linux 5.11+) through the raw syscall, since glibc's wrapper
/// is not always declared. Returns the count, or -errno.
static inline int cu_epoll_pwait2(int epfd, struct epoll_event *events, int maxevents,
                                  const struct timespec *timeout) {
#ifdef __NR_epoll_pwait2
    long ret = syscall(__NR_epoll_pwait2, epfd, events, maxevents, timeout, NULL, (size_t)8);
    return ret < 0 ? -errno : (int)ret;
#else
    (void)epfd; (void)events; (void)maxevents; (void)timeout;
    return -ENOSYS;
#endif
}

/// accept4 is a GNU extension that Swift's Glibc module does not declare.
/// Returns the fd, or -1 with errno set, exactly like accept4.
extern int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
static inline int cu_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    return accept4(fd, addr, len, flags);
}

/// Names the calling thread (the kernel keeps 15 bytes): prctl is variadic,
/// which Swift cannot call, and pthread_setname_np is a GNU extension.
static inline int cu_set_thread_name(const char *name) {
    return prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
}

/// statx through the raw syscall, for the same reason. Returns 0 or -1/errno.
static inline int cu_statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *buf) {
    return (int)syscall(__NR_statx, dirfd, path, flags, mask, buf);
}

/// CLOCK_MONOTONIC in nanoseconds: the loop's time base.
static inline uint64_t cu_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/// pidfd_open(2) (Linux 5.3): a descriptor for a child process that becomes
/// readable when the child exits. Returns the fd, or -errno.
static inline int cu_pidfd_open(pid_t pid) {
    long fd = syscall(SYS_pidfd_open, pid, 0);
    return fd < 0 ? -errno : (int)fd;
}

/// pidfd_send_signal(2) (Linux 5.1): signals exactly this child, never a
/// process that reused its pid. Returns 0 or -errno.
static inline int cu_pidfd_send_signal(int pidfd, int signal) {
    return syscall(SYS_pidfd_send_signal, pidfd, signal, NULL, 0) < 0 ? -errno : 0;
}

/// How a reaped child ended, from the `siginfo_t` waitid filled: 1 with
/// `*exited` (1 for an exit code in `*status`, 0 for a signal number), or 0
/// when it holds no child (still running).
static inline int cu_siginfo_outcome(const siginfo_t *info, int *exited, int *status) {
    if (info->si_pid == 0) return 0;
    *exited = info->si_code == CLD_EXITED;
    *status = info->si_status;
    return 1;
}

/// Reaps the child behind `pidfd` without blocking (waitid P_PIDFD, Linux
/// 5.4) into `info` (zeroed first). Returns 1 when it was reaped, 0 while it
/// still runs, or -errno.
static inline int cu_waitid_pidfd(int pidfd, siginfo_t *info) {
    memset(info, 0, sizeof *info);
    if (waitid((idtype_t)3 /* P_PIDFD */, (id_t)pidfd, info, WEXITED | WNOHANG) < 0) return -errno;
    return info->si_pid != 0;
}

/// IORING_OP_WAITID (Linux 6.7), which liburing 2.3 has no helper for: reaps
/// the child behind `pidfd` into `info`, completing when it exits. The layout
/// is the kernel's: id in fd, idtype in len, options in file_index, the
/// siginfo pointer in addr2.
#define CU_OP_WAITID 50
static inline void cu_prep_waitid_pidfd(struct io_uring_sqe *sqe, int pidfd, siginfo_t *info) {
    io_uring_prep_rw(CU_OP_WAITID, sqe, pidfd, NULL, 3 /* P_PIDFD */, 0);
    sqe->rw_flags = 0;
    sqe->file_index = WEXITED;
    sqe->addr2 = (uint64_t)(uintptr_t)info;
}

/// posix_spawn_file_actions_addchdir_np (glibc 2.29), which Swift's Glibc
/// module does not declare. Returns 0 or an errno.
extern int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
static inline int cu_spawn_addchdir(posix_spawn_file_actions_t *actions, const char *path) {
    return posix_spawn_file_actions_addchdir_np(actions, path);
}

/// fallocate(2) through the raw syscall (a GNU declaration Swift's Glibc
/// module leaves out). Returns 0 or -1 with errno set.
static inline int cu_fallocate(int fd, int mode, off_t offset, off_t length) {
    return (int)syscall(SYS_fallocate, fd, mode, offset, length);
}

/// copy_file_range(2) through the raw syscall, from the files' own offsets
/// (`*in_offset`, `*out_offset`, advanced). Returns the bytes copied or -errno.
static inline long cu_copy_file_range(int in, int64_t *in_offset, int out, int64_t *out_offset, size_t length) {
    long n = syscall(SYS_copy_file_range, in, in_offset, out, out_offset, length, 0);
    return n < 0 ? -errno : n;
}

/// preadv2(2) with RWF_NOWAIT (Linux 4.14): reads only what the page cache
/// holds, never waiting for the device. Returns bytes read or -errno (EAGAIN
/// when the data is not cached).
static inline long cu_pread_nowait(int fd, void *buffer, size_t count, int64_t offset) {
    struct iovec vector = { buffer, count };
    long n = syscall(SYS_preadv2, fd, &vector, 1, (long)offset, (long)((uint64_t)offset >> 32), 0x00000008 /* RWF_NOWAIT */);
    return n < 0 ? -errno : n;
}

/// FALLOC_FL_KEEP_SIZE from <linux/falloc.h>.
static const int CU_FALLOC_FL_KEEP_SIZE = 0x01;

/// IORING_OP_FTRUNCATE (Linux 6.9), which liburing 2.3 has no helper for.
#define CU_OP_FTRUNCATE 55
static inline void cu_prep_ftruncate(struct io_uring_sqe *sqe, int fd, uint64_t length) {
    io_uring_prep_rw(CU_OP_FTRUNCATE, sqe, fd, 0, 0, length);
}

/// A pipe for splicing (blocking ends, close-on-exec), grown to `size`
/// bytes where the limit allows. Returns its capacity, or -errno.
static inline int cu_splice_pipe(int fds[2], int size) {
    if (pipe2(fds, O_CLOEXEC) < 0) return -errno;
    (void)fcntl(fds[1], 1031 /* F_SETPIPE_SZ */, size);
    int capacity = fcntl(fds[1], 1032 /* F_GETPIPE_SZ */);
    return capacity > 0 ? capacity : 65536;
}

/// splice(2) with kernel-style result (bytes moved or -errno); an offset of
/// -1 means "none" (a pipe or socket end).
static inline long cu_splice(int in, int64_t inOffset, int out, int64_t outOffset, size_t count, unsigned flags) {
    loff_t a = inOffset, b = outOffset;
    long n = splice(in, inOffset < 0 ? NULL : &a, out, outOffset < 0 ? NULL : &b, count, flags);
    return n < 0 ? -errno : n;
}

/// Whether every page of `fd`'s bytes `offset..<offset+length` is in the
/// page cache, by cachestat(2) (Linux 6.5): 1 yes, 0 no, -errno (ENOSYS on
/// older kernels). One syscall, no mapping, nothing read.
static inline int cu_range_cached(int fd, uint64_t offset, uint64_t length) {
    struct { uint64_t off, len; } range = { offset, length };
    struct { uint64_t cache, dirty, writeback, evicted, recently_evicted; } stat;
    if (syscall(451 /* cachestat */, fd, &range, &stat, 0) < 0) return -errno;
    long page = sysconf(_SC_PAGESIZE);
    uint64_t pages = length == 0 ? 0 : (offset + length - 1) / page - offset / page + 1;
    return stat.cache >= pages;
}

/// SPLICE_F_MOVE from <fcntl.h> (a hint; pages move where they can).
static const unsigned CU_SPLICE_F_MOVE = 1;
/// SPLICE_F_NONBLOCK: the pipe end does not block (the socket's own
/// O_NONBLOCK covers the other end).
static const unsigned CU_SPLICE_F_NONBLOCK = 2;

/// Lock-free int loads and stores for memory a signal handler reads (C11
/// atomics are async-signal-safe when lock-free, and ThreadSanitizer knows them).
static inline int cu_load_acquire(const int *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void cu_store_release(int *p, int value) { __atomic_store_n(p, value, __ATOMIC_RELEASE); }
/// Sequentially consistent, for the handshake between a signal handler and
/// the thread that closes the descriptor it writes to (SignalHandlers.swift).
static inline int cu_load_seq_cst(const int *p) { return __atomic_load_n(p, __ATOMIC_SEQ_CST); }
static inline void cu_store_seq_cst(int *p, int value) { __atomic_store_n(p, value, __ATOMIC_SEQ_CST); }
static inline int cu_fetch_add_seq_cst(int *p, int delta) { return __atomic_fetch_add(p, delta, __ATOMIC_SEQ_CST); }

/// The kernel thread id, for log lines and debug checks.
static inline int cu_gettid(void) { return (int)syscall(SYS_gettid); }

/// libdispatch's run-loop hooks for the main queue, which Foundation's
/// RunLoop uses on Linux (MainActorBridge.swift). Declared weak: linked
/// where the Swift runtime (and libdispatch with it) is linked statically,
/// NULL where it is a shared library the executable does not name, and then
/// found with dlsym.
extern int _dispatch_get_main_queue_handle_4CF(void) __attribute__((weak));
extern void _dispatch_main_queue_callback_4CF(void *message) __attribute__((weak));
static inline void *cu_dispatch_main_queue_handle_function(void) { return (void *)&_dispatch_get_main_queue_handle_4CF; }
static inline void *cu_dispatch_main_queue_drain_function(void) { return (void *)&_dispatch_main_queue_callback_4CF; }

#endif
