// The load client for every socket workload and every server, built on nothing
// under test: one thread, non-blocking sockets, epoll, C.
//
//   load_client MODE --port P --server-pid PID [options]
//
// Modes:
//   echo    CONNECTIONS connections each send SIZE bytes, read SIZE bytes back,
//           and repeat (closed loop). One operation is one round trip.
//   rate    the same, open loop: RATE round trips per second offered in all,
//           each connection on its own fixed schedule. A late reply delays
//           the next send, and that send's latency is counted from when it
//           was due, not from when it went out (the coordinated-omission
//           correction wrk2 makes).
//   accept  CONNECTIONS slots each connect, send 1 byte, read it back and
//           close, then start over. One operation is one whole connection.
//   idle    the server's resident memory per idle connection: warm up with
//           100 connections echoing 100 times each, then open CONNECTIONS,
//           echo SIZE bytes once on each, wait, and divide the RSS growth by
//           CONNECTIONS.
//
// Options: --host A (127.0.0.1) --connections N --size BYTES --rate OPS/S
//          --duration S --warmup S --cgroup DIR (the server's cgroup: its
//          cpu.stat or cpuacct.usage is read too) --first-echo-timeout S (10)
//          --count-syscalls (run `perf stat -e raw_syscalls:sys_enter` on the
//          server, counting only inside the measured window, through perf's
//          control FIFO; adds syscalls_per_op to the line).
//
// The echo and rate windows start only once every connection has completed
// one round trip (or the first-echo timeout passed), then WARMUP seconds run
// unmeasured, then DURATION measured. Requests still unanswered when the
// window closes count as latency samples of their age so far, so a starved
// connection shows in the percentiles instead of vanishing from them.
//
// Prints one JSON line: operations per second, latency p50/p99/p99.9/max/mean
// (µs), round trips served per connection (min, median, max, how many got
// none), the server's CPU per operation from /proc/PID/task/*/schedstat (and
// from its cgroup when given), the whole machine's busy CPU per operation from
// /proc/stat (softirq included), and this client's own CPU per operation.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "load_client: %s: %s\n", what, strerror(errno));
    exit(1);
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

// CPU nanoseconds charged to a cgroup: v2 cpu.stat usage_usec, or v1
// cpuacct.usage. Unlike schedstat it keeps the time of threads that exited
// (io_uring's io-wq workers come and go). 0 when unreadable.
static uint64_t cgroup_cpu_ns(const char *dir) {
    if (!dir) return 0;
    char path[512];
    snprintf(path, sizeof path, "%s/cpu.stat", dir);
    FILE *f = fopen(path, "r");
    if (f) {
        char key[64];
        unsigned long long value;
        while (fscanf(f, "%63s %llu", key, &value) == 2) {
            if (strcmp(key, "usage_usec") == 0) { fclose(f); return value * 1000ull; }
        }
        fclose(f);
    }
    snprintf(path, sizeof path, "%s/cpuacct.usage", dir);
    f = fopen(path, "r");
    if (f) {
        unsigned long long value = 0;
        int ok = fscanf(f, "%llu", &value) == 1;
        fclose(f);
        if (ok) return value;
    }
    return 0;
}

// Busy nanoseconds of the whole machine (every CPU, softirq and steal
// included, idle and iowait excluded), from /proc/stat.
static uint64_t system_busy_ns(uint64_t *steal_ns) {
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return 0;
    unsigned long long v[10] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu %llu %llu",
                   &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7], &v[8], &v[9]);
    fclose(f);
    if (n < 8) return 0;
    long hz = sysconf(_SC_CLK_TCK);
    uint64_t busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];  // user nice system irq softirq steal
    if (steal_ns) *steal_ns = v[7] * (1000000000ull / hz);
    return busy * (1000000000ull / hz);
}

static uint64_t self_cpu_ns(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return (uint64_t)(u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1000000000ull +
           (uint64_t)(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1000ull;
}

// Resident bytes of `pid`, from /proc/PID/status.
static uint64_t rss_bytes(int pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    uint64_t kb = 0;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "VmRSS: %lu kB", &kb) == 1) break;
    }
    fclose(f);
    return kb * 1024;
}

// perf stat on the server, started with its counter disabled and switched on
// and off through a control FIFO at the measured window's edges, so perf's
// own start-up and the warm-up are not counted.
static struct { pid_t pid; int ctl, ack; char dir[64]; } perf = {.pid = -1};

static void perf_start(int server_pid) {
    snprintf(perf.dir, sizeof perf.dir, "/tmp/load_client.%d", getpid());
    if (mkdir(perf.dir, 0700) && errno != EEXIST) die("mkdir (perf)");
    char ctl[96], ack[96], out[96], target[16];
    snprintf(ctl, sizeof ctl, "%s/ctl", perf.dir);
    snprintf(ack, sizeof ack, "%s/ack", perf.dir);
    snprintf(out, sizeof out, "%s/out", perf.dir);
    snprintf(target, sizeof target, "%d", server_pid);
    unlink(ctl);
    unlink(ack);
    if (mkfifo(ctl, 0600) || mkfifo(ack, 0600)) die("mkfifo (perf)");
    char control[200];
    snprintf(control, sizeof control, "fifo:%s,%s", ctl, ack);
    perf.pid = fork();
    if (perf.pid == 0) {
        execlp("perf", "perf", "stat", "-e", "raw_syscalls:sys_enter", "-p", target, "-x", ",", "-o", out,
               "--control", control, "-D", "-1", (char *)NULL);
        _exit(127);
    }
    if (perf.pid < 0) die("fork (perf)");
    perf.ctl = open(ctl, O_WRONLY);
    perf.ack = open(ack, O_RDONLY);
    if (perf.ctl < 0 || perf.ack < 0) die("open perf's control FIFO");
}

static void perf_command(const char *command) {
    char reply[16];
    if (write(perf.ctl, command, strlen(command)) < 0) die("write to perf");
    if (read(perf.ack, reply, sizeof reply) <= 0) die("read perf's ack");
}

// Stops perf and returns the syscalls it counted, or -1.
static double perf_finish(void) {
    kill(perf.pid, SIGINT);
    int status;
    waitpid(perf.pid, &status, 0);
    char out[96], line[256];
    snprintf(out, sizeof out, "%s/out", perf.dir);
    FILE *f = fopen(out, "r");
    double count = -1;
    while (f && fgets(line, sizeof line, f)) {
        if (strstr(line, "raw_syscalls:sys_enter")) count = atof(line);
    }
    if (f) fclose(f);
    char path[96];
    snprintf(path, sizeof path, "%s/ctl", perf.dir); unlink(path);
    snprintf(path, sizeof path, "%s/ack", perf.dir); unlink(path);
    unlink(out);
    rmdir(perf.dir);
    return count;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

struct conn {
    int fd;
    size_t sent, received;
    uint64_t started;    // when the request in flight was due (rate) or sent (echo)
    uint64_t next_due;   // rate mode: when the next request is due
    uint64_t served;     // round trips completed inside the measured window
    int busy;            // a request is in flight
    int echoed;          // completed at least one round trip
};

static struct sockaddr_in server;
static int ep;
static struct conn *conns;
static int nconn, size;
static char *out, *in;
static size_t in_cap;

static void watch(int op, int fd, uint32_t events, uint32_t slot) {
    struct epoll_event ev = {.events = events, .data.u32 = slot};
    if (epoll_ctl(ep, op, fd, &ev)) die("epoll_ctl");
}

// A new TCP socket to the server, bound to one of 64 loopback source
// addresses (127.0.0.2-65) in turn when the server is on loopback: the client
// closes first in accept mode, and the TIME_WAIT sockets that leaves would
// exhaust one address's ephemeral ports within a run.
static int new_socket(int nonblocking) {
    static uint32_t rotation;
    int fd = socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if ((ntohl(server.sin_addr.s_addr) >> 24) == 127) {
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        struct sockaddr_in source = {.sin_family = AF_INET};
        source.sin_addr.s_addr = htonl(0x7f000002u + (rotation++ % 64));
        if (bind(fd, (struct sockaddr *)&source, sizeof source)) die("bind");
    }
    return fd;
}

static int connect_blocking(void) {
    int fd = new_socket(0);
    if (connect(fd, (struct sockaddr *)&server, sizeof server)) die("connect");
    return fd;
}

static void start_connect(struct conn *c, uint32_t slot) {
    c->fd = new_socket(1);
    if (connect(c->fd, (struct sockaddr *)&server, sizeof server) && errno != EINPROGRESS) die("connect");
    c->sent = c->received = 0;
    c->started = now_ns();
    c->busy = 1;
    watch(EPOLL_CTL_ADD, c->fd, EPOLLOUT | EPOLLIN, slot);
}

// Sends as much of the request as the socket takes right now.
static void pump_send(struct conn *c) {
    while (c->sent < (size_t)size) {
        ssize_t w = send(c->fd, out + c->sent, size - c->sent, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EAGAIN) return;
            die("send");
        }
        c->sent += w;
    }
}

// Reads what has arrived; returns 1 when the whole reply is in.
static int pump_receive(struct conn *c) {
    while (c->received < (size_t)size) {
        size_t want = size - c->received;
        ssize_t r = recv(c->fd, in, want < in_cap ? want : in_cap, MSG_DONTWAIT);
        if (r == 0) { fprintf(stderr, "load_client: the server closed a connection\n"); exit(1); }
        if (r < 0) {
            if (errno == EAGAIN) return 0;
            die("recv");
        }
        c->received += r;
    }
    return 1;
}

static void begin_request(struct conn *c, uint32_t slot, uint64_t due) {
    c->sent = c->received = 0;
    c->started = due;
    c->busy = 1;
    pump_send(c);
    // Watch both directions while sending: a large message is echoed back
    // while it is still going out, and reading only afterwards would deadlock
    // once both sockets' buffers fill.
    watch(EPOLL_CTL_MOD, c->fd, c->sent < (size_t)size ? EPOLLIN | EPOLLOUT : EPOLLIN, slot);
}

static double seconds_arg(const char *value, const char *name) {
    char *end;
    double v = strtod(value, &end);
    if (*end || v < 0) { fprintf(stderr, "load_client: %s must be a non-negative number, got '%s'\n", name, value); exit(2); }
    return v;
}

static const char *syscall_field(double count, uint64_t ops) {
    static char field[64];
    if (count < 0 || ops == 0) return "";
    snprintf(field, sizeof field, ",\"syscalls_per_op\":%.3f", count / ops);
    return field;
}

static void usage(const char *self) {
    fprintf(stderr,
            "usage: %s echo|rate|accept|idle --port P --server-pid PID [--host A] [--connections N] [--size B]\n"
            "          [--rate OPS] [--duration S] [--warmup S] [--cgroup DIR] [--first-echo-timeout S] [--count-syscalls]\n", self);
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage(argv[0]);
    const char *mode = argv[1];
    int echo_mode = !strcmp(mode, "echo"), rate_mode = !strcmp(mode, "rate");
    int accept_mode = !strcmp(mode, "accept"), idle_mode = !strcmp(mode, "idle");
    if (!echo_mode && !rate_mode && !accept_mode && !idle_mode) usage(argv[0]);
    const char *host = "127.0.0.1", *cgroup = NULL;
    int port = 0, server_pid = 0;
    double duration = 2, warmup = 0.5, rate = 0, first_echo_timeout = 10;
    nconn = 1;
    size = 64;
    static struct option options[] = {
        {"host", required_argument, 0, 'h'}, {"port", required_argument, 0, 'p'},
        {"server-pid", required_argument, 0, 's'}, {"connections", required_argument, 0, 'c'},
        {"size", required_argument, 0, 'b'}, {"rate", required_argument, 0, 'r'},
        {"duration", required_argument, 0, 'd'}, {"warmup", required_argument, 0, 'w'},
        {"cgroup", required_argument, 0, 'g'}, {"first-echo-timeout", required_argument, 0, 'f'},
        {"count-syscalls", no_argument, 0, 'y'}, {0, 0, 0, 0}};
    int count_syscalls = 0;
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'h': host = optarg; break;
        case 'p': port = atoi(optarg); break;
        case 's': server_pid = atoi(optarg); break;
        case 'c': nconn = atoi(optarg); break;
        case 'b': size = atoi(optarg); break;
        case 'r': rate = seconds_arg(optarg, "--rate"); break;
        case 'd': duration = seconds_arg(optarg, "--duration"); break;
        case 'w': warmup = seconds_arg(optarg, "--warmup"); break;
        case 'g': cgroup = optarg; break;
        case 'f': first_echo_timeout = seconds_arg(optarg, "--first-echo-timeout"); break;
        case 'y': count_syscalls = 1; break;
        default: usage(argv[0]);
        }
    }
    if (port <= 0 || port > 65535 || server_pid <= 0 || nconn <= 0 || size <= 0 || duration <= 0 ||
        (rate_mode && rate <= 0)) {
        fprintf(stderr, "load_client: --port, --server-pid, --connections, --size and --duration must be "
                        "positive (and --rate in rate mode)\n");
        return 2;
    }
    if (accept_mode) size = 1;
    server = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(port)};
    if (inet_pton(AF_INET, host, &server.sin_addr) != 1) {
        fprintf(stderr, "load_client: %s is not an IPv4 address\n", host);
        return 2;
    }
    out = malloc(size);
    memset(out, 'x', size);
    in_cap = size > 65536 ? 65536 : (size_t)size;
    in = malloc(in_cap);
    conns = calloc(nconn, sizeof *conns);
    ep = epoll_create1(0);
    if (ep < 0) die("epoll_create1");

    if (idle_mode) {
        // Warm the server's one-time allocations (buffer pools, tables) with
        // connections that come and go, so they are not charged to the idle
        // connections measured after. 10,000 echoes: a provided-buffer ring
        // hands out its buffers in turn, and each one's first use faults its
        // page in; a ring of up to 10,000 buffers is fully touched before the
        // measurement starts.
        for (int round = 0; round < 100; round++) {
            int fd = connect_blocking();
            for (int echo = 0; echo < 100; echo++) {
                if (send(fd, out, size, MSG_NOSIGNAL) != size) die("send");
                for (int got = 0; got < size;) {
                    ssize_t r = recv(fd, in, in_cap, 0);
                    if (r <= 0) die("recv (warm-up)");
                    got += r;
                }
            }
            close(fd);
        }
        usleep(500000);
        uint64_t before = rss_bytes(server_pid);
        for (int i = 0; i < nconn; i++) {
            conns[i].fd = connect_blocking();
            if (send(conns[i].fd, out, size, MSG_NOSIGNAL) != size) die("send");
            for (int got = 0; got < size;) {
                ssize_t r = recv(conns[i].fd, in, in_cap, 0);
                if (r <= 0) die("recv (idle connection)");
                got += r;
            }
        }
        usleep((useconds_t)(duration * 1e6));
        uint64_t after = rss_bytes(server_pid);
        printf("{\"rss_before_bytes\":%lu,\"rss_after_bytes\":%lu,\"bytes_per_conn\":%.1f,\"conns\":%d}\n",
               before, after, ((double)after - (double)before) / nconn, nconn);
        return 0;
    }

    if (count_syscalls) perf_start(server_pid);
    uint64_t t0 = now_ns();
    if (accept_mode) {
        for (int i = 0; i < nconn; i++) start_connect(&conns[i], i);
    } else {
        // Every connection is open before any traffic, so accepting is not measured.
        for (int i = 0; i < nconn; i++) {
            int fd = connect_blocking();
            if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)) die("fcntl");
            conns[i].fd = fd;
            watch(EPOLL_CTL_ADD, fd, EPOLLIN, i);
        }
        t0 = now_ns();
        double interval = rate_mode ? nconn / rate * 1e9 : 0;
        for (int i = 0; i < nconn; i++) {
            // Rate mode staggers the connections' schedules evenly over one interval.
            conns[i].next_due = t0 + (uint64_t)(interval * i / nconn);
            if (!rate_mode) begin_request(&conns[i], i, t0);
        }
    }

    size_t cap = 1 << 22, nlat = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t interval_ns = rate_mode ? (uint64_t)(nconn / rate * 1e9) : 0;
    // Phases: 0 = waiting for every connection's first round trip (echo, rate),
    // 1 = warm-up, 2 = measuring.
    int phase = accept_mode ? 1 : 0, echoed = 0;
    uint64_t phase_end = accept_mode ? t0 + (uint64_t)(warmup * 1e9) : t0 + (uint64_t)(first_echo_timeout * 1e9);
    int first_echo_timed_out = 0;
    uint64_t ops = 0, cpu_start = 0, cg_start = 0, busy_start = 0, steal_start = 0, self_start = 0, measure_start = 0;
    uint64_t lat_sum = 0;
    struct epoll_event events[1024];
    for (;;) {
        uint64_t t = now_ns();
        if (phase < 2 && t >= phase_end) {
            if (phase == 0) first_echo_timed_out = 1;
            phase++;
            if (phase == 1) phase_end = t + (uint64_t)(warmup * 1e9);
        }
        if (phase == 1 && t >= phase_end) phase = 2;
        if (phase == 2 && !measure_start) {
            measure_start = t;
            cpu_start = server_cpu_ns(server_pid);
            cg_start = cgroup_cpu_ns(cgroup);
            busy_start = system_busy_ns(&steal_start);
            self_start = self_cpu_ns();
            if (count_syscalls) perf_command("enable\n");
            phase_end = t + (uint64_t)(duration * 1e9);
        }
        if (phase == 2 && t >= phase_end) break;
        struct timespec timeout = {.tv_sec = 0, .tv_nsec = 100000000};
        if (rate_mode) {
            // Send whatever is due; wake for the next due send.
            uint64_t next = UINT64_MAX;
            for (int i = 0; i < nconn; i++) {
                struct conn *c = &conns[i];
                if (!c->busy && c->next_due <= t) {
                    uint64_t due = c->next_due;
                    c->next_due += interval_ns;
                    begin_request(c, i, due);
                }
                if (!c->busy && c->next_due < next) next = c->next_due;
            }
            if (next != UINT64_MAX) {
                // Sub-millisecond: epoll_wait's milliseconds would either spin or send late.
                uint64_t wait = next > t ? next - t : 0;
                if (wait < 100000000) timeout = (struct timespec){.tv_sec = 0, .tv_nsec = (long)wait};
            }
        }
        int n = epoll_pwait2(ep, events, 1024, &timeout, NULL);
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
                pump_send(c);
                if (c->sent == (size_t)size) watch(EPOLL_CTL_MOD, c->fd, EPOLLIN, slot);
            }
            if (!(events[e].events & EPOLLIN) || !pump_receive(c)) continue;
            uint64_t done = now_ns();
            c->busy = 0;
            if (!c->echoed) {
                c->echoed = 1;
                if (++echoed == nconn && phase == 0) {
                    phase = 1;
                    phase_end = done + (uint64_t)(warmup * 1e9);
                }
            }
            if (phase == 2 && done < phase_end) {
                ops++;
                c->served++;
                lat_sum += done - c->started;
                if (nlat < cap) lat[nlat++] = done - c->started;
            }
            if (accept_mode) {
                close(c->fd);  // closing removes it from the epoll set
                start_connect(c, slot);
            } else if (echo_mode) {
                begin_request(c, slot, done);
            } else if (c->next_due <= done) {
                // Rate mode, behind schedule: send at once, latency counted from when it was due.
                uint64_t due = c->next_due;
                c->next_due += interval_ns;
                begin_request(c, slot, due);
            }
        }
    }
    uint64_t end = now_ns();
    double syscalls = -1;
    if (count_syscalls) {
        perf_command("disable\n");
        syscalls = perf_finish();
    }
    uint64_t cpu_end = server_cpu_ns(server_pid), cg_end = cgroup_cpu_ns(cgroup);
    uint64_t steal_end = 0, busy_end = system_busy_ns(&steal_end), self_end = self_cpu_ns();
    // Requests still unanswered are censored samples: at least this old.
    size_t censored = 0;
    if (!accept_mode) {
        for (int i = 0; i < nconn; i++) {
            if (conns[i].busy && conns[i].started < end && nlat < cap) {
                uint64_t age = end - (conns[i].started > measure_start ? conns[i].started : measure_start);
                lat[nlat++] = age;
                lat_sum += age;
                censored++;
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
#define PCT(p) (nlat ? lat[(size_t)((nlat - 1) * (p))] / 1e3 : 0)
    double seconds = (end - measure_start) / 1e9;
    double per_op = ops ? 1.0 / ops : 0;
    // Round trips per connection inside the window (accept mode: slots).
    uint64_t *served = malloc(nconn * sizeof *served);
    int starved = 0;
    for (int i = 0; i < nconn; i++) {
        served[i] = conns[i].served;
        if (!served[i]) starved++;
    }
    qsort(served, nconn, sizeof *served, cmp_u64);
    printf("{\"ops_per_s\":%.1f,\"p50_us\":%.2f,\"p99_us\":%.2f,\"p999_us\":%.2f,\"max_us\":%.2f,\"mean_us\":%.2f,"
           "\"censored\":%zu,\"conns\":%d,\"conn_min\":%lu,\"conn_median\":%lu,\"conn_max\":%lu,\"conn_starved\":%d,"
           "\"first_echo_timeout\":%d,\"server_cpu_ns_per_op\":%.1f,\"cgroup_cpu_ns_per_op\":%.1f,"
           "\"system_busy_ns_per_op\":%.1f,\"client_cpu_ns_per_op\":%.1f,\"steal_ns_per_s\":%.1f,"
           "\"bytes_per_s\":%.1f,\"offered_per_s\":%.1f%s}\n",
           ops / seconds, PCT(0.5), PCT(0.99), PCT(0.999), nlat ? lat[nlat - 1] / 1e3 : 0,
           nlat ? lat_sum / 1e3 / nlat : 0, censored, nconn, served[0], served[nconn / 2], served[nconn - 1], starved,
           first_echo_timed_out, (cpu_end - cpu_start) * per_op, cgroup ? (cg_end - cg_start) * per_op : 0,
           (busy_end - busy_start) * per_op, (self_end - self_start) * per_op, (steal_end - steal_start) / seconds,
           ops * 2.0 * size / seconds, rate_mode ? rate : 0, syscall_field(syscalls, ops));
    return 0;
}
