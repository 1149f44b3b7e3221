#!/usr/bin/env python3
"""The file workload on asyncio (or uvloop), the idiomatic way: blocking
preadv calls on the loop's default executor, DEPTH coroutines at once, each
with its own page-aligned buffer (mmap), so O_DIRECT works too. Prints one
JSON line: reads per second, MiB per second and CPU time per read, with the
clocks started after the loop and the file are set up. The default executor
has min(32, cores + 4) threads, so at most that many reads run at once.

    python3 asyncio_file.py PATH [--pattern random|sequential] [--direct]
                            [--depth 32] [--block-size 4096] [--seconds 3] [--uvloop]
"""
import argparse
import asyncio
import json
import mmap
import os
import random
import time


async def read_all(path, pattern, direct, depth, block_size, seconds):
    loop = asyncio.get_running_loop()
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    try:
        blocks = os.fstat(fd).st_size // block_size
        if blocks == 0:
            raise SystemExit(f"{path} is smaller than one {block_size}-byte block")
        # The clocks start here, after the loop and the file are set up.
        tally = {"reads": 0, "bytes": 0, "cpu": time.process_time(), "wall": time.perf_counter()}
        deadline = time.monotonic() + seconds
        next_block = 0

        async def reader(worker):
            nonlocal next_block
            rng = random.Random(worker + 1)
            buffer = mmap.mmap(-1, block_size)
            while True:
                if pattern == "random":
                    if time.monotonic() >= deadline:
                        return
                    block = rng.randrange(blocks)
                else:
                    if next_block >= blocks:
                        return
                    block, next_block = next_block, next_block + 1
                # Await first, then add: `tally["bytes"] += await ...` would read the
                # old total before suspending and lose the other readers' updates.
                count = await loop.run_in_executor(None, os.preadv, fd, [buffer], block * block_size)
                tally["bytes"] += count
                tally["reads"] += 1

        await asyncio.gather(*(reader(w) for w in range(depth)))
        return tally
    finally:
        os.close(fd)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path")
    parser.add_argument("--pattern", choices=["random", "sequential"], default="random")
    parser.add_argument("--direct", action="store_true")
    parser.add_argument("--depth", type=int, default=32)
    parser.add_argument("--block-size", type=int, default=4096)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--uvloop", action="store_true")
    args = parser.parse_args()
    if args.depth <= 0 or args.block_size <= 0 or args.block_size % 4096 or args.seconds <= 0:
        parser.error("--depth and --seconds must be positive, --block-size a positive multiple of 4096")
    work = read_all(args.path, args.pattern, args.direct, args.depth, args.block_size, args.seconds)
    if args.uvloop:
        import uvloop
        tally = uvloop.run(work)
    else:
        tally = asyncio.run(work)
    elapsed, cpu = time.perf_counter() - tally["wall"], time.process_time() - tally["cpu"]
    print(json.dumps({"ops_per_s": tally["reads"] / elapsed, "mib_per_s": tally["bytes"] / elapsed / 1048576,
                      "cpu_us_per_op": cpu * 1e6 / max(tally["reads"], 1)}))


if __name__ == "__main__":
    main()
