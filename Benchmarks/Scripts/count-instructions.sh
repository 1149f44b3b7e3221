#!/usr/bin/env bash
# User-space instructions per echo request, exactly, with callgrind.
#
# Runs the EchoServer under valgrind's callgrind, zeroes its counters once it
# listens, drives it with the C load client, dumps the counters and divides
# by the echoes the client counted. Instruction counts do not depend on the
# machine's load, so two builds can be compared to a fraction of a percent
# where timing them on this shared 2-core VM cannot resolve 5%. What they do
# not see: the kernel's share (80-95% of an echo's CPU) and the cost of each
# instruction (an atomic retain counts as one).
#
#   Benchmarks/Scripts/count-instructions.sh [--workload echo|accept] [--api stream|protocol]
#       [--backend uring|epoll] [--connections 1] [--size 64] [--seconds 3] [--top 25] [--server PATH]
#
# --workload accept counts per accepted connection instead (the load client's
# accept mode: connect, echo 1 B, close, --connections at a time).
#
# Needs valgrind (apt-get install valgrind). Prints the total and the
# functions with the most instructions of their own, per echo.
set -euo pipefail
cd "$(dirname "$0")/../.."
workload=echo api=stream backend=uring connections=1 size=64 seconds=3 top=25 server=""
while [ $# -gt 0 ]; do
    case "$1" in
        --workload) workload=$2; shift 2 ;;
        --api) api=$2; shift 2 ;;
        --backend) backend=$2; shift 2 ;;
        --connections) connections=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        --top) top=$2; shift 2 ;;
        --server) server=$2; shift 2 ;;
        *) echo "usage: $0 [--workload echo|accept] [--api stream|protocol] [--backend uring|epoll] [--connections N] [--size B] [--seconds S] [--top N] [--server PATH]" >&2; exit 2 ;;
    esac
done
command -v valgrind >/dev/null || { echo "valgrind is missing: apt-get install valgrind" >&2; exit 1; }

if [ -z "$server" ]; then
    swift build -c release --product EchoServer >/dev/null
    server=.build/release/EchoServer
fi
mkdir -p Benchmarks/.build/reference
client=Benchmarks/.build/reference/load_client
[ -x "$client" ] || cc -O2 -o "$client" Benchmarks/C/load_client.c

work=$(mktemp -d)
port=$((20000 + RANDOM % 12000))
valgrind --tool=callgrind --callgrind-out-file="$work/out" \
    "$server" --port "$port" --backend "$backend" --api "$api" >"$work/server.log" 2>&1 &
pid=$!
trap 'kill -9 $pid 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 600); do
    grep -q "listening" "$work/server.log" && break
    kill -0 $pid 2>/dev/null || { cat "$work/server.log" >&2; exit 1; }
    sleep 0.05
done
grep -q "listening" "$work/server.log" || { echo "the server did not listen within 30 s" >&2; exit 1; }
callgrind_control -z $pid >/dev/null 2>&1
case "$workload" in echo|accept) ;; *) echo "--workload is echo or accept, not $workload" >&2; exit 2 ;; esac
"$client" "$workload" --port "$port" --server-pid $pid --connections "$connections" --size "$size" \
    --duration "$seconds" --warmup 0 --first-echo-timeout 30 >"$work/client.json"
callgrind_control -d $pid >/dev/null 2>&1
sleep 0.5
kill -9 $pid 2>/dev/null || true
wait $pid 2>/dev/null || true

python3 - "$work" "$seconds" "$top" "$api" "$backend" "$connections" "$size" "$workload" <<'PY'
import glob, json, re, subprocess, sys
work, seconds, top = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])
api, backend, connections, size, workload = sys.argv[4:9]
unit = "connection" if workload == "accept" else "echo"
client = json.load(open(f"{work}/client.json"))
echoes = client["ops_per_s"] * seconds
dumps = sorted(glob.glob(f"{work}/out.*"))
if not dumps or echoes <= 0:
    sys.exit("no counters dumped, or no echoes counted")
flat = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", "--auto=no", dumps[-1]],
                      capture_output=True, text=True, check=True).stdout
total = None
rows = []
for line in flat.splitlines():
    m = re.match(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    ir = int(m.group(1).replace(",", ""))
    if "PROGRAM TOTALS" in m.group(2):
        total = ir
    elif ir < 0.99 * (total or 0):   # skip the frames every instruction is under
        where, _, name = m.group(2).split(" [")[0].partition(":")
        # Lines inlined from another file (a C header) name no object.
        obj = m.group(2).split(" [")[-1].rstrip("]").split("/")[-1] if " [" in m.group(2) else "(inlined from " + where.split("/")[-1] + ")"
        rows.append((ir, name.split("(")[0], obj))
print(f"EchoServer --api {api} --backend {backend}, {workload}, {connections} connection(s) x {size} B, "
      f"{echoes:,.0f} {unit}s in {seconds:g} s under callgrind")
print(f"\nuser-space instructions per {unit}: {total / echoes:,.0f}\n")
# Swift names read better demangled; the toolchain's demangler is optional.
names = [name for _, name, _ in rows[:top]]
try:
    names = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input="\n".join(names),
                           capture_output=True, text=True, check=True).stdout.splitlines()
except (OSError, subprocess.CalledProcessError):
    pass
print(f"| instructions per {unit} | function | object |")
print("|---:|---|---|")
for (ir, _, obj), name in zip(rows[:top], names):
    print(f"| {ir / echoes:,.0f} | `{name[:100]}` | {obj} |")
PY
