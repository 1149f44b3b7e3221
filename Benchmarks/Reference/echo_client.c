// The load client for every echo server, built on nothing under test:
// blocking-free epoll, one thread, C. Each connection sends SIZE bytes, waits
// for all SIZE bytes back, and repeats, for DURATION seconds after WARMUP.
//
//   echo_client HOST PORT CONNECTIONS SIZE DURATION_S WARMUP_S SERVER_PID
//
// Prints one JSON line: round trips per second, latency p50/p99 (µs), and the
// server's CPU time per round trip (ns), from /proc/PID/task/*/schedstat
// sampled at the start and end of the measured window.
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

// Sum of on-CPU nanoseconds over every thread of `pid` (first schedstat field).
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

struct conn { int fd; size_t sent, received; uint64_t started; };

int main(int argc, char **argv) {
    if (argc < 8) {
        fprintf(stderr, "usage: %s HOST PORT CONNECTIONS SIZE DURATION_S WARMUP_S SERVER_PID\n", argv[0]);
        return 2;
    }
    const char *host = argv[1];
    int port = atoi(argv[2]), nconn = atoi(argv[3]), size = atoi(argv[4]);
    double duration = atof(argv[5]), warmup = atof(argv[6]);
    int server_pid = atoi(argv[7]);
    char *out = malloc(size), *in = malloc(size > 65536 ? size : 65536);
    memset(out, 'x', size);
    struct conn *conns = calloc(nconn, sizeof *conns);
    int ep = epoll_create1(0);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, host, &addr.sin_addr);
    for (int i = 0; i < nconn; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(fd, (struct sockaddr *)&addr, sizeof addr)) { perror("connect"); return 1; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conns[i].fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.u32 = i};
        epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    size_t cap = 1 << 22, nlat = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t t0 = now_ns();
    uint64_t measure_start = t0 + (uint64_t)(warmup * 1e9), measure_end = measure_start + (uint64_t)(duration * 1e9);
    uint64_t trips = 0, cpu_start = 0;
    int measuring = 0;
    for (int i = 0; i < nconn; i++) conns[i].started = now_ns();
    struct epoll_event events[1024];
    for (;;) {
        uint64_t t = now_ns();
        if (!measuring && t >= measure_start) { measuring = 1; cpu_start = server_cpu_ns(server_pid); }
        if (t >= measure_end) break;
        int n = epoll_wait(ep, events, 1024, 100);
        for (int e = 0; e < n; e++) {
            struct conn *c = &conns[events[e].data.u32];
            if ((events[e].events & EPOLLOUT) && c->sent < (size_t)size) {
                ssize_t w = send(c->fd, out + c->sent, size - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
                if (w > 0) c->sent += w;
                if (c->sent == (size_t)size) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = events[e].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (events[e].events & EPOLLIN) {
                ssize_t r = recv(c->fd, in, size - c->received, MSG_DONTWAIT);
                if (r == 0) { fprintf(stderr, "server closed a connection\n"); return 1; }
                if (r > 0) c->received += r;
                if (c->received == (size_t)size) {
                    uint64_t done = now_ns();
                    if (measuring) {
                        trips++;
                        if (nlat < cap) lat[nlat++] = done - c->started;
                    }
                    c->sent = c->received = 0;
                    c->started = done;
                    struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = events[e].data.u32};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
        }
    }
    uint64_t cpu_end = server_cpu_ns(server_pid);
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    double p50 = nlat ? lat[nlat / 2] / 1e3 : 0, p99 = nlat ? lat[(size_t)(nlat * 0.99)] / 1e3 : 0;
    printf("{\"connections\":%d,\"size\":%d,\"round_trips_per_s\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
           "\"server_cpu_ns_per_trip\":%.0f}\n",
           nconn, size, trips / duration, p50, p99, trips ? (double)(cpu_end - cpu_start) / trips : 0);
    for (int i = 0; i < nconn; i++) close(conns[i].fd);
    return 0;
}
