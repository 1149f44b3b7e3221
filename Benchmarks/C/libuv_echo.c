// libuv echo server in C, written as libuv's own examples write one: a
// uv_tcp_t per connection, alloc_cb/read_cb, and a uv_write of the bytes read
// (the buffer is handed to the write and freed in its callback).
//   cc -O2 -o libuv_echo libuv_echo.c -luv && ./libuv_echo PORT
#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

static uv_loop_t *loop;

typedef struct {
    uv_write_t req;
    uv_buf_t buf;
} write_req_t;

static void on_close(uv_handle_t *handle) { free(handle); }

static void after_write(uv_write_t *req, int status) {
    write_req_t *w = (write_req_t *)req;
    free(w->buf.base);
    free(w);
    (void)status;
}

static void alloc_buffer(uv_handle_t *handle, size_t suggested, uv_buf_t *buf) {
    (void)handle;
    buf->base = malloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *client, ssize_t nread, const uv_buf_t *buf) {
    if (nread > 0) {
        write_req_t *w = malloc(sizeof *w);
        w->buf = uv_buf_init(buf->base, (unsigned)nread);
        uv_write(&w->req, client, &w->buf, 1, after_write);
        return;
    }
    if (nread < 0) uv_close((uv_handle_t *)client, on_close);
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status) {
    if (status < 0) return;
    uv_tcp_t *client = malloc(sizeof *client);
    uv_tcp_init(loop, client);
    if (uv_accept(server, (uv_stream_t *)client) == 0) {
        uv_tcp_nodelay(client, 1);
        uv_read_start((uv_stream_t *)client, alloc_buffer, on_read);
    } else {
        uv_close((uv_handle_t *)client, on_close);
    }
}

int main(int argc, char **argv) {
    int port = argc > 1 ? atoi(argv[1]) : 7000;
    loop = uv_default_loop();
    uv_tcp_t server;
    uv_tcp_init(loop, &server);
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", port, &addr);
    uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0);
    int rc = uv_listen((uv_stream_t *)&server, 4096, on_connection);
    if (rc) { fprintf(stderr, "libuv_echo: listen: %s\n", uv_strerror(rc)); return 1; }
    printf("libuv_echo listening on 127.0.0.1:%d\n", port);
    fflush(stdout);
    return uv_run(loop, UV_RUN_DEFAULT);
}
