#!/usr/bin/env python3
"""asyncio's echo server, the system RingLoop's design comes from, for the echo
comparison. Two ways, as asyncio users write them:

- the low-level Protocol API (default), as asyncio's own benchmarks use it;
- the streams API (--streams): asyncio.start_server, a coroutine per
  connection reading from a StreamReader and writing to a StreamWriter, the
  closest match to RingLoop's task-per-connection streams.

    python3 asyncio_echo.py PORT [--streams] [--uvloop]
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


async def echo_stream(reader, writer):
    writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        while True:
            data = await reader.read(16384)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def main(port, streams):
    loop = asyncio.get_running_loop()
    if streams:
        server = await asyncio.start_server(echo_stream, "127.0.0.1", port, backlog=4096, reuse_address=True)
    else:
        server = await loop.create_server(Echo, "127.0.0.1", port, backlog=4096, reuse_address=True)
    api = "streams" if streams else "protocol"
    print(f"asyncio_echo listening on 127.0.0.1:{port} ({type(loop).__module__}, {api})", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 7000
    streams = "--streams" in sys.argv
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.run(main(port, streams))
    else:
        asyncio.run(main(port, streams))
