// Minimal liburing echo server: the physical-limit reference for RingLoop's
// io_uring backend. One ring (SINGLE_ISSUER | DEFER_TASKRUN when available),
// one recv or send in flight per connection, one submit-and-wait per batch.
//   cc -O2 -o uring_echo uring_echo.c -luring && ./uring_echo PORT
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_CONN 65536
#define BUF 16384
enum { ACCEPT, RECV, SEND };
struct conn { char buf[BUF]; int len, off; };
static struct conn *conns[MAX_CONN];

static struct io_uring ring;
static inline uint64_t tag(int kind, int fd) { return ((uint64_t)kind << 32) | (uint32_t)fd; }

static void queue_accept(int lfd) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, tag(ACCEPT, lfd));
}
static void queue_recv(int fd) {
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_recv(sqe, fd, conns[fd]->buf, BUF, 0);
    io_uring_sqe_set_data64(sqe, tag(RECV, fd));
}
static void queue_send(int fd) {
    struct conn *c = conns[fd];
    struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);
    io_uring_prep_send(sqe, fd, c->buf + c->off, c->len - c->off, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(sqe, tag(SEND, fd));
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    signal(SIGPIPE, SIG_IGN);
    struct io_uring_params p = {0};
    p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (io_uring_queue_init_params(4096, &ring, &p) < 0) {
        memset(&p, 0, sizeof p);
        p.flags = IORING_SETUP_COOP_TASKRUN;
        if (io_uring_queue_init_params(4096, &ring, &p) < 0) { perror("io_uring"); return 1; }
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(lfd, (struct sockaddr *)&addr, sizeof addr) || listen(lfd, 4096)) { perror("bind/listen"); return 1; }
    printf("uring_echo listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    queue_accept(lfd);
    for (;;) {
        io_uring_submit_and_wait(&ring, 1);
        struct io_uring_cqe *cqe;
        unsigned head, count = 0;
        io_uring_for_each_cqe(&ring, head, cqe) {
            count++;
            int kind = (int)(cqe->user_data >> 32), fd = (int)(uint32_t)cqe->user_data, res = cqe->res;
            if (kind == ACCEPT) {
                if (res >= 0 && res < MAX_CONN) {
                    setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    if (!conns[res]) conns[res] = malloc(sizeof(struct conn));
                    queue_recv(res);
                }
                queue_accept(lfd);
            } else if (kind == RECV) {
                if (res <= 0) { close(fd); continue; }
                conns[fd]->len = res;
                conns[fd]->off = 0;
                queue_send(fd);
            } else {
                if (res < 0) { close(fd); continue; }
                conns[fd]->off += res;
                if (conns[fd]->off < conns[fd]->len) queue_send(fd); else queue_recv(fd);
            }
        }
        io_uring_cq_advance(&ring, count);
    }
}
