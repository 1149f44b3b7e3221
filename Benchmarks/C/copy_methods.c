// copyFile's two candidate kernel paths, side by side: copy_file_range(2)
// (what RingLoop's copyFile uses, as cp does) and splice(2) through a 1 MiB
// pipe (file to pipe, pipe to file). Prints wall and CPU seconds for one
// copy, fsync included unless --no-fsync is given. `cfr` asks for the whole
// rest of the file per call, as cp does; `cfr64` for 64 MiB per call, as
// copyFile does.
//
//   gcc -O2 -o copy_methods Benchmarks/C/copy_methods.c
//   ./copy_methods cfr|cfr64|splice SOURCE DESTINATION [--no-fsync]
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static double wall(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static double cpu(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv) {
    int sync_at_end = !(argc == 5 && !strcmp(argv[4], "--no-fsync"));
    int chunked = argc > 1 && !strcmp(argv[1], "cfr64");
    int copy_range = chunked || (argc > 1 && !strcmp(argv[1], "cfr"));
    if (argc < 4 || (argc != 4 && sync_at_end) || (!copy_range && strcmp(argv[1], "splice"))) {
        fprintf(stderr, "usage: %s cfr|cfr64|splice SOURCE DESTINATION [--no-fsync]\n", argv[0]);
        return 2;
    }
    int in = open(argv[2], O_RDONLY), out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) { perror("open"); return 1; }
    off_t size = lseek(in, 0, SEEK_END), done = 0;
    off_t from = 0, to = 0;   // 64-bit on LP64 Linux
    double w0 = wall(), c0 = cpu();
    if (copy_range) {
        while (done < size) {
            off_t want = size - done;
            if (chunked && want > (64 << 20)) want = 64 << 20;
            ssize_t n = copy_file_range(in, &from, out, &to, want, 0);
            if (n <= 0) { perror("copy_file_range"); return 1; }
            done += n;
        }
    } else {
        int pipe_ends[2];
        if (pipe(pipe_ends)) { perror("pipe"); return 1; }
        fcntl(pipe_ends[1], F_SETPIPE_SZ, 1 << 20);
        while (done < size) {
            ssize_t n = splice(in, &from, pipe_ends[1], NULL, 1 << 20, SPLICE_F_MOVE);
            if (n <= 0) { perror("splice (file to pipe)"); return 1; }
            for (ssize_t left = n; left > 0;) {
                ssize_t k = splice(pipe_ends[0], NULL, out, &to, left, SPLICE_F_MOVE);
                if (k <= 0) { perror("splice (pipe to file)"); return 1; }
                left -= k;
            }
            done += n;
        }
    }
    if (sync_at_end) fsync(out);
    printf("{\"method\":\"%s\",\"seconds\":%.4f,\"cpu_seconds\":%.4f}\n", argv[1], wall() - w0, cpu() - c0);
    return 0;
}
