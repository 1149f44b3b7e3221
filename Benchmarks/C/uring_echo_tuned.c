// Tuned liburing echo server: the ceiling for RingLoop's io_uring backend, as
// a liburing author would write an echo server today.
//
// - one ring, SINGLE_ISSUER | DEFER_TASKRUN (COOP_TASKRUN where refused);
// - multishot accept: one SQE accepts every connection;
// - multishot recv over a provided-buffer ring: one SQE per connection for its
//   whole life, the kernel picks a buffer per receive;
// - replies go out straight from the ring buffers they arrived in (no copy):
//   one sendmsg in flight per connection, covering every buffer queued behind
//   it, and the buffers go back to the ring as their bytes leave;
// - every SQE of a batch goes to the kernel in the one submit-and-wait that
//   also reaps the next batch.
//
// It keeps no per-connection buffer, only a little state per fd.
//   cc -O2 -o uring_echo_tuned uring_echo_tuned.c -luring && ./uring_echo_tuned PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FD 65536
#define NBUF 4096           // ring buffers (a power of two)
#define BUF_SIZE 16384
#define GROUP 1
#define MAX_IOV 64
enum { ACCEPT = 1, RECV, SEND };

static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *buffers;

// Per fd: the FIFO of ring buffers waiting to go out (threaded through
// `queued_next`, indexed by buffer id, each with its length and how much of
// it has been sent), whether a sendmsg is in flight and its iovecs, and
// whether the fd waits to be closed once its replies are out. One send in
// flight per connection: two on one socket could complete out of order.
static unsigned char sending[MAX_FD], closing[MAX_FD];
static int queue_head[MAX_FD], queue_tail[MAX_FD];
static int queued_next[NBUF];
static unsigned queued_len[NBUF], queued_off[NBUF];
static struct iovec *iovs[MAX_FD];
static struct msghdr msgs[MAX_FD];
// Connections with replies queued in this batch, flushed once it is reaped.
static int pending[MAX_FD], npending;
static unsigned char is_pending[MAX_FD];
// Connections whose recv ended for want of buffers, re-armed when buffers return.
static int starved[MAX_FD], nstarved;

static inline uint64_t tag(int kind, int fd) { return ((uint64_t)kind << 32) | (uint32_t)fd; }

static struct io_uring_sqe *sqe_or_flush(void) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    if (!sqe) {
        io_uring_submit(&ring);
        sqe = io_uring_get_sqe(&ring);
    }
    return sqe;
}

static void give_back(int bid) {
    io_uring_buf_ring_add(br, buffers + (size_t)bid * BUF_SIZE, BUF_SIZE, bid, io_uring_buf_ring_mask(NBUF), 0);
    io_uring_buf_ring_advance(br, 1);
}

static void arm_accept(int lfd) {
    struct io_uring_sqe *sqe = sqe_or_flush();
    io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(ACCEPT, lfd));
}

static void arm_recv(int fd) {
    struct io_uring_sqe *sqe = sqe_or_flush();
    io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = GROUP;
    io_uring_sqe_set_data64(sqe, tag(RECV, fd));
}

static void mark(int fd) {
    if (!is_pending[fd]) { is_pending[fd] = 1; pending[npending++] = fd; }
}

static void queue_reply(int fd, int bid, unsigned len) {
    queued_len[bid] = len;
    queued_off[bid] = 0;
    queued_next[bid] = -1;
    if (queue_head[fd] < 0) queue_head[fd] = bid; else queued_next[queue_tail[fd]] = bid;
    queue_tail[fd] = bid;
    mark(fd);
}

// Sends every queued buffer (up to MAX_IOV) in one sendmsg.
static void flush(int fd) {
    if (sending[fd] || queue_head[fd] < 0) return;
    if (!iovs[fd]) iovs[fd] = malloc(MAX_IOV * sizeof(struct iovec));
    int n = 0;
    for (int b = queue_head[fd]; b >= 0 && n < MAX_IOV; b = queued_next[b], n++) {
        iovs[fd][n].iov_base = buffers + (size_t)b * BUF_SIZE + queued_off[b];
        iovs[fd][n].iov_len = queued_len[b] - queued_off[b];
    }
    msgs[fd] = (struct msghdr){.msg_iov = iovs[fd], .msg_iovlen = n};
    struct io_uring_sqe *sqe = sqe_or_flush();
    io_uring_prep_sendmsg(sqe, fd, &msgs[fd], MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(SEND, fd));
    sending[fd] = 1;
}

// A sendmsg took `sent` bytes: return the buffers it finished, keep the rest.
static void sent_bytes(int fd, unsigned sent) {
    while (queue_head[fd] >= 0 && sent > 0) {
        int b = queue_head[fd];
        unsigned left = queued_len[b] - queued_off[b];
        if (sent < left) { queued_off[b] += sent; return; }
        sent -= left;
        queue_head[fd] = queued_next[b];
        give_back(b);
    }
}

static void drop_queue(int fd) {
    for (int b = queue_head[fd]; b >= 0; b = queued_next[b]) give_back(b);
    queue_head[fd] = -1;
}

static void maybe_close(int fd) {
    if (closing[fd] && !sending[fd]) {
        closing[fd] = 0;
        drop_queue(fd);
        close(fd);
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    signal(SIGPIPE, SIG_IGN);
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    p.cq_entries = 16384;
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE;
        p.cq_entries = 16384;
        if (io_uring_queue_init_params(4096, &ring, &p) < 0) { perror("io_uring"); return 1; }
    }
    // The provided-buffer ring: registered by hand, as liburing 2.3 has no setup helper.
    br = mmap(NULL, NBUF * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE, MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    buffers = malloc((size_t)NBUF * BUF_SIZE);
    if (br == MAP_FAILED || !buffers) { perror("buffers"); return 1; }
    struct io_uring_buf_reg reg = {.ring_addr = (unsigned long)br, .ring_entries = NBUF, .bgid = GROUP};
    int rc = io_uring_register_buf_ring(&ring, &reg, 0);
    if (rc) { fprintf(stderr, "io_uring_register_buf_ring: %s\n", strerror(-rc)); return 1; }
    io_uring_buf_ring_init(br);
    for (int i = 0; i < NBUF; i++)
        io_uring_buf_ring_add(br, buffers + (size_t)i * BUF_SIZE, BUF_SIZE, i, io_uring_buf_ring_mask(NBUF), i);
    io_uring_buf_ring_advance(br, NBUF);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) { perror("bind/listen"); return 1; }
    printf("uring_echo_tuned listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    arm_accept(lfd);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, count = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            count++;
            int kind = (int)(cqe->user_data >> 32), fd = (int)(uint32_t)cqe->user_data, res = cqe->res;
            int more = cqe->flags & IORING_CQE_F_MORE;
            if (kind == ACCEPT) {
                if (res >= 0 && res < MAX_FD) {
                    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    queue_head[res] = -1;
                    sending[res] = closing[res] = 0;
                    arm_recv(res);
                } else if (res >= 0) {
                    close(res);
                }
                if (!more) arm_accept(lfd);
            } else if (kind == RECV) {
                if (res > 0) {
                    queue_reply(fd, cqe->flags >> IORING_CQE_BUFFER_SHIFT, (unsigned)res);
                    if (!more) arm_recv(fd);
                } else if (res == -ENOBUFS) {
                    starved[nstarved++] = fd;
                } else if (!more) {
                    // EOF or error: close once the replies in flight are out.
                    closing[fd] = 1;
                    maybe_close(fd);
                }
            } else if (kind == SEND) {
                sending[fd] = 0;
                if (res < 0) drop_queue(fd); else { sent_bytes(fd, (unsigned)res); mark(fd); }
                maybe_close(fd);
            }
        }
        io_uring_cq_advance(&ring, count);
        // One sendmsg per connection per batch, covering all it has queued.
        while (npending > 0) {
            int fd = pending[--npending];
            is_pending[fd] = 0;
            flush(fd);
        }
        while (nstarved > 0) arm_recv(starved[--nstarved]);
    }
}
