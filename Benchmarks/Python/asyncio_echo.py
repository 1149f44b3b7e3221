#!/usr/bin/env python3
"""asyncio's echo server, the system RingLoop's design comes from, for the echo
comparison. Streams-free Protocol API, as asyncio's own benchmarks use it.

    python3 asyncio_echo.py PORT [--uvloop]
"""
import asyncio
import socket
import sys


class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        sock = transport.get_extra_info("socket")
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.transport = transport

    def data_received(self, data):
        self.transport.write(data)


async def main(port):
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096, reuse_address=True)
    print(f"asyncio_echo listening on 127.0.0.1:{port} ({type(loop).__module__})", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7000
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.run(main(port))
    else:
        asyncio.run(main(port))
