#!/usr/bin/env python3
"""readFile and writeFile of one whole file against Python's Path.read_bytes/write_bytes.

Each round runs BenchWorker's `whole-file` on io_uring and on epoll (and on
any other BenchWorker binaries given with --also, for an A/B against an
older build) and Python, in a new random order; before each run the
destination is removed, the source read once (page cache) and the disks
synced. Prints each contestant's median read and write seconds, min-max.

    cd Benchmarks && swift build -c release --product BenchWorker
    python3 Scripts/whole-file.py --size-mib 512 --rounds 8
"""
import argparse
import json
import os
import pathlib
import random
import statistics
import subprocess
import time

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--size-mib", type=int, default=512)
parser.add_argument("--rounds", type=int, default=8)
parser.add_argument("--source", default="/var/tmp/ringloop-whole.src")
parser.add_argument("--destination", default="/var/tmp/ringloop-whole.dst")
parser.add_argument("--worker", default=".build/release/BenchWorker")
parser.add_argument("--also", action="append", default=[], metavar="NAME=PATH",
                    help="another BenchWorker binary to run as contestant NAME (on both backends)")
args = parser.parse_args()

source, destination = pathlib.Path(args.source), pathlib.Path(args.destination)
if not source.exists() or source.stat().st_size != args.size_mib << 20:
    with open(source, "wb") as out:
        for _ in range(args.size_mib):
            out.write(os.urandom(1 << 20))

workers = {"": args.worker}
for item in args.also:
    name, _, path = item.partition("=")
    workers[name + " "] = path


def worker(path, backend):
    output = subprocess.run([path, "whole-file", str(source), str(destination), "--contestant", backend],
                            capture_output=True, text=True, check=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    return report["read_seconds"], report["write_seconds"]


def python():
    started = time.monotonic()
    data = source.read_bytes()
    read = time.monotonic() - started
    os.sync()
    started = time.monotonic()
    destination.write_bytes(data)
    return read, time.monotonic() - started


contestants = {"python": python}
for prefix, path in workers.items():
    for backend in ("uring", "epoll"):
        contestants[f"{prefix}RingLoop {backend}"] = (lambda p, b: lambda: worker(p, b))(path, backend)

results = {name: ([], []) for name in contestants}
for _ in range(args.rounds):
    for name in random.sample(list(contestants), len(contestants)):
        destination.unlink(missing_ok=True)
        source.read_bytes()
        os.sync()
        read, write = contestants[name]()
        results[name][0].append(read)
        results[name][1].append(write)
destination.unlink(missing_ok=True)

print(f"| {args.size_mib} MiB, {args.rounds} rounds | read s, median (min-max) | write s, median (min-max) |")
print("|---|---:|---:|")
for name, (reads, writes) in results.items():
    print(f"| {name} | {statistics.median(reads):.3f} ({min(reads):.3f}-{max(reads):.3f}) "
          f"| {statistics.median(writes):.3f} ({min(writes):.3f}-{max(writes):.3f}) |")
