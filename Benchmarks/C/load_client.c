// The load client for every socket workload and every server, built on nothing
// under test: one thread, non-blocking sockets, epoll, C.
//
//   load_client echo   HOST PORT CONNECTIONS SIZE DURATION_S WARMUP_S SERVER_PID
//   load_client accept HOST PORT CONCURRENCY      DURATION_S WARMUP_S SERVER_PID
//
// echo:   each connection sends SIZE bytes, waits for all SIZE bytes back, and
//         repeats. One operation is one round trip.
// accept: CONCURRENCY slots each connect, send 1 byte, read it back and close,
//         then start over. One operation is one whole connection.
//
// Runs WARMUP_S seconds unmeasured, then DURATION_S measured. Prints one JSON
// line: operations per second, latency p50/p99 (µs) and the server's CPU time
// per operation (ns), from /proc/PID/task/*/schedstat read at the start and end
// of the measured window, so it counts every thread the server runs.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

// Sum of on-CPU nanoseconds over every thread of `pid` (schedstat's first field).
static uint64_t server_cpu_ns(int pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *dir = opendir(path);
    if (!dir) return 0;
    uint64_t total = 0;
    struct dirent *entry;
    while ((entry = readdir(dir))) {
        if (entry->d_name[0] == '.') continue;
        char stat[320];
        snprintf(stat, sizeof stat, "/proc/%d/task/%s/schedstat", pid, entry->d_name);
        FILE *f = fopen(stat, "r");
        if (!f) continue;
        unsigned long long run = 0;
        if (fscanf(f, "%llu", &run) == 1) total += run;
        fclose(f);
    }
    closedir(dir);
    return total;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void die(const char *what) {
    fprintf(stderr, "load_client: %s: %s\n", what, strerror(errno));
    exit(1);
}

struct conn { int fd; size_t sent, received; uint64_t started; };

static struct sockaddr_in server;
static int ep;

static void watch(int op, int fd, uint32_t events, uint32_t slot) {
    struct epoll_event ev = {.events = events, .data.u32 = slot};
    if (epoll_ctl(ep, op, fd, &ev)) die("epoll_ctl");
}

// Starts a non-blocking connect for slot `slot`; EPOLLOUT reports completion.
//
// The client closes first, so every connection leaves a TIME_WAIT socket
// behind on this side; at tens of thousands of connections a second, one
// source address would run out of ephemeral ports within a run. On loopback,
// connections rotate over 64 source addresses (127.0.0.2-65), with the port
// picked at connect time (IP_BIND_ADDRESS_NO_PORT), for 64 times the room.
static void start_connect(struct conn *c, uint32_t slot) {
    static uint32_t rotation;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c->fd < 0) die("socket");
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((ntohl(server.sin_addr.s_addr) >> 24) == 127) {
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in source = {.sin_family = AF_INET};
        source.sin_addr.s_addr = htonl(0x7f000002u + (rotation++ % 64));
        if (bind(c->fd, (struct sockaddr *)&source, sizeof source)) die("bind");
    }
    if (connect(c->fd, (struct sockaddr *)&server, sizeof server) && errno != EINPROGRESS) die("connect");
    c->sent = c->received = 0;
    c->started = now_ns();
    watch(EPOLL_CTL_ADD, c->fd, EPOLLOUT, slot);
}

int main(int argc, char **argv) {
    int accept_mode = argc > 1 && strcmp(argv[1], "accept") == 0;
    int echo_mode = argc > 1 && strcmp(argv[1], "echo") == 0;
    if (!(echo_mode && argc == 9) && !(accept_mode && argc == 8)) {
        fprintf(stderr, "usage: %s echo HOST PORT CONNECTIONS SIZE DURATION_S WARMUP_S SERVER_PID\n"
                        "       %s accept HOST PORT CONCURRENCY DURATION_S WARMUP_S SERVER_PID\n", argv[0], argv[0]);
        return 2;
    }
    const char *host = argv[2];
    int port = atoi(argv[3]), nconn = atoi(argv[4]);
    int size = echo_mode ? atoi(argv[5]) : 1;
    double duration = atof(argv[echo_mode ? 6 : 5]), warmup = atof(argv[echo_mode ? 7 : 6]);
    int server_pid = atoi(argv[echo_mode ? 8 : 7]);
    if (nconn <= 0 || size <= 0 || duration <= 0 || warmup < 0 || server_pid <= 0) {
        fprintf(stderr, "load_client: CONNECTIONS, SIZE, DURATION_S and SERVER_PID must be positive\n");
        return 2;
    }
    server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "load_client: %s is not an IPv4 address\n", host);
        return 2;
    }
    char *out = malloc(size), *in = malloc(size > 65536 ? size : 65536);
    memset(out, 'x', size);
    struct conn *conns = calloc(nconn, sizeof *conns);
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");

    if (echo_mode) {
        // Connections are made up front, blocking, so the measured window holds only echoes.
        for (int i = 0; i < nconn; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) die("socket");
            if (connect(fd, (struct sockaddr *)&server, sizeof server)) die("connect");
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
            conns[i].fd = fd;
            conns[i].started = now_ns();
            watch(EPOLL_CTL_ADD, fd, EPOLLOUT, i);
        }
    } else {
        for (int i = 0; i < nconn; i++) start_connect(&conns[i], i);
    }

    size_t cap = 1 << 22, nlat = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t t0 = now_ns();
    uint64_t measure_start = t0 + (uint64_t)(warmup * 1e9), measure_end = measure_start + (uint64_t)(duration * 1e9);
    uint64_t ops = 0, cpu_start = 0;
    int measuring = 0;
    struct epoll_event events[1024];
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= measure_start) { measuring = 1; cpu_start = server_cpu_ns(server_pid); }
        if (t >= measure_end) break;
        int n = epoll_wait(ep, events, 1024, 100);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int e = 0; e < n; e++) {
            uint32_t slot = events[e].data.u32;
            struct conn *c = &conns[slot];
            if (events[e].events & (EPOLLERR | EPOLLHUP) && !(events[e].events & EPOLLIN)) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                errno = err ? err : ECONNRESET;
                die("connection failed");
            }
            if ((events[e].events & EPOLLOUT) && c->sent < (size_t)size) {
                ssize_t w = send(c->fd, out + c->sent, size - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w < 0 && errno != EAGAIN) die("send");
                if (w > 0) c->sent += w;
                if (c->sent == (size_t)size) watch(EPOLL_CTL_MOD, c->fd, EPOLLIN, slot);
            }
            if (events[e].events & EPOLLIN) {
                ssize_t r = recv(c->fd, in, size - c->received, MSG_DONTWAIT);
                if (r == 0) { fprintf(stderr, "load_client: the server closed a connection\n"); return 1; }
                if (r < 0 && errno != EAGAIN) die("recv");
                if (r > 0) c->received += r;
                if (c->received == (size_t)size) {
                    if (accept_mode) close(c->fd);  // closing removes it from the epoll set
                    uint64_t done = now_ns();
                    if (measuring) {
                        ops++;
                        if (nlat < cap) lat[nlat++] = done - c->started;
                    }
                    if (accept_mode) {
                        start_connect(c, slot);
                    } else {
                        c->sent = c->received = 0;
                        c->started = done;
                        watch(EPOLL_CTL_MOD, c->fd, EPOLLOUT, slot);
                    }
                }
            }
        }
    }
    uint64_t cpu_end = server_cpu_ns(server_pid);
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double p50 = nlat ? lat[nlat / 2] / 1e3 : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] / 1e3 : 0;
    printf("{\"ops_per_s\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"server_cpu_ns_per_op\":%.1f}\n",
           ops / duration, p50, p99, ops ? (double)(cpu_end - cpu_start) / ops : 0);
    return 0;
}
