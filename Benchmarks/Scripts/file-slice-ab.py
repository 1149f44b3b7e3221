#!/usr/bin/env python3
"""A/B of io_uring's file submission slice on O_DIRECT random 4 KiB reads.

Runs BenchWorker's file workload once per `file-slice=N` value and fio once,
every round in a new random order, and prints each value's median reads/s,
its median ratio to fio paired by round, and its CPU per read.

    cd Benchmarks && swift build -c release
    python3 Scripts/file-slice-ab.py --slices 2,4,8 --rounds 10

The data file is the comparison's (written by `Compare` when missing).
"""
import argparse
import json
import os
import random
import statistics
import subprocess

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--slices", default="2,4,8", help="file-slice values, comma-separated")
parser.add_argument("--rounds", type=int, default=10)
parser.add_argument("--seconds", type=float, default=1.5, help="seconds per run")
parser.add_argument("--data-file", default="/var/tmp/ringloop-compare.dat")
parser.add_argument("--worker", default=".build/release/BenchWorker")
args = parser.parse_args()


def ringloop(slice_value):
    environment = dict(os.environ, RINGLOOP_URING_OPTIONS=f"file-slice={slice_value}")
    output = subprocess.run([args.worker, "file", args.data_file, "--contestant", "uring", "--direct",
                             "--depth", "32", "--seconds", str(args.seconds)],
                            capture_output=True, text=True, env=environment, check=True).stdout
    report = json.loads(output.strip().splitlines()[-1])
    return report["ops_per_s"], report["cpu_us_per_op"]


def fio():
    output = subprocess.run(["fio", "--name=slice-ab", f"--filename={args.data_file}", "--ioengine=io_uring",
                             "--mem=mmap", "--rw=randread", "--bs=4096", "--iodepth=32", "--direct=1",
                             "--invalidate=0", "--norandommap", "--randrepeat=0", "--time_based",
                             f"--runtime={int(args.seconds * 1000)}ms", "--output-format=json"],
                            capture_output=True, text=True, check=True).stdout
    job = json.loads(output[output.index("{"):])["jobs"][0]
    cpu_us = (job["usr_cpu"] + job["sys_cpu"]) / 100 * job["job_runtime"] * 1000
    return job["read"]["iops"], cpu_us / max(job["read"]["total_ios"], 1)


contestants = [f"file-slice={value}" for value in args.slices.split(",")] + ["fio"]
rates = {name: [] for name in contestants}
cpus = {name: [] for name in contestants}
for _ in range(args.rounds):
    for name in random.sample(contestants, len(contestants)):
        rate, cpu = fio() if name == "fio" else ringloop(name.split("=")[1])
        rates[name].append(rate)
        cpus[name].append(cpu)

print(f"O_DIRECT random 4 KiB reads, 32 in flight, {args.rounds} rounds in random order")
print(f"{'contestant':<14} {'reads/s':>9} {'vs fio':>7} {'CPU µs/read':>12}")
for name in contestants:
    paired = statistics.median(a / b for a, b in zip(rates[name], rates["fio"]))
    print(f"{name:<14} {statistics.median(rates[name]):>9.0f} {paired:>6.3f}x {statistics.median(cpus[name]):>12.2f}")
