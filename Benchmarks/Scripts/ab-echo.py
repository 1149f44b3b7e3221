#!/usr/bin/env python3
"""Paired A/B of echo servers: server CPU per echo (or per accepted
connection, with --workload accept), round by round.

Each round runs every variant once, in a new random order, with the server
pinned to CPU 1 and the C load client to CPU 0, and reads the client's
`server_cpu_ns_per_op`. The ratio of each variant to the first is taken
within each round (so a noisy minute moves both sides of it), and the
median of those ratios is printed with its range. This is how the
measurements in BENCHMARKS.md that compare two builds or two settings of one
server were taken; the comparison runner (`./scripts/bench`) is the tool for
comparing different servers.

  Benchmarks/Scripts/ab-echo.py --rounds 10 --size 262144 --connections 4 \\
      old=/tmp/EchoServer.old:uring:protocol new=.build/release/EchoServer:uring:protocol \\
      'plain-wait=.build/release/EchoServer:uring:protocol:RINGLOOP_URING_OPTIONS=batch-wait=0'
  Benchmarks/Scripts/ab-echo.py --workload accept --connections 16 \\
      old=/tmp/EchoServer.old:uring:protocol new=.build/release/EchoServer:uring:protocol

A variant is NAME=SERVER:BACKEND:API[:ENV=VALUE,...]. The first is the
baseline. Needs the load client (built from Benchmarks/C/load_client.c when
missing) and taskset.
"""
import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CLIENT = os.path.join(ROOT, "Benchmarks", ".build", "reference", "load_client")


def parse_variant(text):
    name, _, spec = text.partition("=")
    parts = spec.split(":", 3)
    if not name or len(parts) < 3:
        sys.exit(f"bad variant {text!r}: want NAME=SERVER:BACKEND:API[:ENV=VALUE,...]")
    env = {}
    if len(parts) == 4:
        for item in parts[3].split(","):
            key, _, value = item.partition("=")
            env[key] = value
    return name, parts[0], parts[1], parts[2], env


def run_once(server, backend, api, env, args):
    port = args.port
    process = subprocess.Popen(["taskset", "-c", "1", server, "--port", str(port), "--backend", backend, "--api", api],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **env})
    try:
        time.sleep(0.5)
        out = subprocess.run(["taskset", "-c", "0", CLIENT, args.workload, "--port", str(port), "--server-pid", str(process.pid),
                              "--connections", str(args.connections), "--size", str(args.size),
                              "--duration", str(args.seconds)], capture_output=True, text=True, timeout=args.seconds + 60)
        return json.loads(out.stdout)["server_cpu_ns_per_op"]
    finally:
        process.terminate()
        process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--workload", choices=["echo", "accept"], default="echo",
                        help="echo: requests on open connections; accept: connect, echo 1 B, close")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--seconds", type=int, default=3)
    parser.add_argument("--port", type=int, default=7301)
    parser.add_argument("variants", nargs="+")
    args = parser.parse_args()
    if args.rounds < 1 or args.seconds < 1:
        sys.exit("--rounds and --seconds must be at least 1")
    variants = [parse_variant(v) for v in args.variants]
    if not os.path.exists(CLIENT):
        os.makedirs(os.path.dirname(CLIENT), exist_ok=True)
        subprocess.run(["cc", "-O2", "-o", CLIENT, os.path.join(ROOT, "Benchmarks", "C", "load_client.c")], check=True)
    rounds = []
    for round_index in range(args.rounds):
        order = variants[:]
        random.shuffle(order)
        results = {}
        for name, server, backend, api, env in order:
            results[name] = run_once(server, backend, api, env, args)
        rounds.append(results)
        print(f"round {round_index + 1}: " + ", ".join(f"{n} {results[n] / 1000:.1f} µs" for n, *_ in variants), flush=True)
    base = variants[0][0]
    what = (f"per echo, {args.connections} × {args.size} B" if args.workload == "echo"
            else f"per connection (connect, echo 1 B, close; {args.connections} at a time)")
    print(f"\nserver CPU {what}, {args.rounds} rounds (ratios paired per round, to {base})")
    for name, *_ in variants:
        values = [r[name] for r in rounds]
        ratios = [r[name] / r[base] for r in rounds]
        print(f"  {name:16s} median {statistics.median(values) / 1000:8.1f} µs   "
              f"ratio {statistics.median(ratios):.3f}  [{min(ratios):.2f}–{max(ratios):.2f}]")


if __name__ == "__main__":
    main()
