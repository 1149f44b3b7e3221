#!/usr/bin/env python3
"""The http-hello peer: an HTTP/1.1 server on a raw asyncio.Protocol (no
HTTP library), answering every request with 200 OK and "Hello, World!",
keep-alive and pipelining included, as uvloop's own HTTP benchmarks do.
Requests carry no body in the benchmark (wrk GETs).

    python3 http_hello.py PORT [--uvloop]
"""
import asyncio
import socket
import sys

RESPONSE = (b"HTTP/1.1 200 OK\r\nServer: asyncio\r\nContent-Type: text/plain\r\n"
            b"Content-Length: 13\r\n\r\nHello, World!")


class Hello(asyncio.Protocol):
    def connection_made(self, transport):
        transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data):
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4:]
            self.transport.write(RESPONSE * count)


def main():
    port = int(sys.argv[1])
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(Hello, "127.0.0.1", port, backlog=1024))
    print("listening", flush=True)
    try:
        loop.run_until_complete(server.serve_forever())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
