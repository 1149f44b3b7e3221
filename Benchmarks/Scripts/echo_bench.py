#!/usr/bin/env python3
"""Loopback TCP echo comparison: RingLoop (io_uring, epoll), SwiftNIO, Python
asyncio and uvloop, and the raw C references (liburing, epoll), all driven by
the same C load client
(Reference/echo_client.c), which uses none of the code under test.

Contestants run one after another within each round, and the rounds repeat,
so machine drift hits all of them alike. Reports medians over the rounds.

    python3 Benchmarks/Scripts/echo_bench.py [--rounds 3] [--duration 4]

Needs: release builds of EchoServer (root package) and NIOEchoServer
(Benchmarks package), and cc + liburing-dev for the C programs. The script
builds what is missing.
"""
import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BENCH = os.path.join(ROOT, "Benchmarks")
BIN = os.path.join(BENCH, ".build", "reference")


def build():
    os.makedirs(BIN, exist_ok=True)
    for name, extra in [("echo_client", []), ("epoll_echo", []), ("uring_echo", ["-luring"])]:
        src = os.path.join(BENCH, "Reference", name + ".c")
        out = os.path.join(BIN, name)
        if not os.path.exists(out) or os.path.getmtime(out) < os.path.getmtime(src):
            subprocess.run(["cc", "-O2", "-o", out, src] + extra, check=True)
    subprocess.run(["swift", "build", "-c", "release", "--product", "EchoServer"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    subprocess.run(["swift", "build", "-c", "release", "--product", "NIOEchoServer"], cwd=BENCH, check=True,
                   stdout=subprocess.DEVNULL)


def have_uvloop():
    """uvloop is optional: installed with pip when missing, skipped with a note if that fails."""
    try:
        import uvloop  # noqa: F401
        return True
    except ImportError:
        pass
    result = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "uvloop"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        print("note: uvloop could not be installed; skipping it:", result.stderr.strip()[-200:], file=sys.stderr)
        return False
    return True


UVLOOP = None


def contestants(port):
    global UVLOOP
    if UVLOOP is None:
        UVLOOP = have_uvloop()
    ringloop = os.path.join(ROOT, ".build", "release", "EchoServer")
    nio = os.path.join(BENCH, ".build", "release", "NIOEchoServer")
    python_echo = os.path.join(BENCH, "Reference", "asyncio_echo.py")
    peers = [("Python asyncio", [sys.executable, python_echo, str(port)])]
    if UVLOOP:
        peers.append(("Python uvloop", [sys.executable, python_echo, str(port), "--uvloop"]))
    rows = [
        ("RingLoop io_uring", [ringloop, "--port", str(port), "--backend", "uring"]),
        ("RingLoop epoll", [ringloop, "--port", str(port), "--backend", "epoll"]),
        ("SwiftNIO", [nio, str(port)]),
        ("C liburing", [os.path.join(BIN, "uring_echo"), str(port)]),
        ("C epoll", [os.path.join(BIN, "epoll_echo"), str(port)]),
    ]
    return rows[:3] + peers + rows[3:]


def wait_listening(port, timeout=10.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def run_one(command, port, connections, size, duration, warmup):
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        if not wait_listening(port):
            raise RuntimeError(f"{command[0]} did not start listening")
        out = subprocess.run(
            [os.path.join(BIN, "echo_client"), "127.0.0.1", str(port), str(connections), str(size),
             str(duration), str(warmup), str(server.pid)],
            check=True, capture_output=True, text=True, timeout=duration + warmup + 30)
        return json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        server.kill()
        server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=4.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--port", type=int, default=17000)
    parser.add_argument("--json", help="write all samples here")
    args = parser.parse_args()
    build()
    workloads = [("64 connections x 64 B", 64, 64), ("1 connection x 64 B (latency)", 1, 64)]
    samples = {}
    port = args.port
    for round_index in range(args.rounds):
        for workload, connections, size in workloads:
            for index in range(len(contestants(0))):
                port += 1  # a fresh port for every run: no TIME_WAIT interference
                name, command = contestants(port)[index]
                print(f"round {round_index + 1}/{args.rounds}: {workload}: {name}", file=sys.stderr)
                result = run_one(command, port, connections, size, args.duration, args.warmup)
                samples.setdefault((workload, name), []).append(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{w} | {n}": v for (w, n), v in samples.items()}, f, indent=1)
    for workload, _, _ in workloads:
        print(f"\n{workload} (medians of {args.rounds} runs of {args.duration:g} s)")
        base = None
        print(f"{'server':20} {'trips/s':>10} {'p50 µs':>8} {'p99 µs':>8} {'server CPU ns/trip':>19} {'CPU vs io_uring':>16}")
        for name, _ in contestants(0):
            runs = samples[(workload, name)]
            med = {k: statistics.median(r[k] for r in runs)
                   for k in ("round_trips_per_s", "p50_us", "p99_us", "server_cpu_ns_per_trip")}
            if base is None:
                base = med["server_cpu_ns_per_trip"]
            ratio = med["server_cpu_ns_per_trip"] / base if base else 0
            print(f"{name:20} {med['round_trips_per_s']:>10.0f} {med['p50_us']:>8.1f} {med['p99_us']:>8.1f} "
                  f"{med['server_cpu_ns_per_trip']:>19.0f} {ratio:>15.2f}x")


if __name__ == "__main__":
    main()
