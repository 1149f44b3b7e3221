#!/usr/bin/env bash
# Exact runtime work per echo request, for each RingLoop API and the C servers.
#
# perf uprobes on libswift_Concurrency.so (swift_task_enqueue,
# swift_task_switch, swift_continuation_resume,
# swift_task_addCancellationHandler) and libc's malloc, plus the syscall
# tracepoints, counted with `perf stat -p` on the server over a measured
# window while the C load client drives it, then divided by the echoes the
# client counted in that window. The counts are exact (every call is
# counted), unlike a sampled profile.
#
#   Benchmarks/Scripts/count-per-request.sh [--connections 64] [--size 64] [--seconds 2]
#
# Needs root, perf (Debian's linux-perf) and uprobes; builds what it runs.
# Prints a Markdown table. Servers and client are pinned to CPUs 1 and 0.
set -euo pipefail
cd "$(dirname "$0")/../.."
connections=64 size=64 seconds=2
while [ $# -gt 0 ]; do
    case "$1" in
        --connections) connections=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --seconds) seconds=$2; shift 2 ;;
        *) echo "usage: $0 [--connections N] [--size BYTES] [--seconds S]" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || { echo "perf is missing: apt-get install linux-perf" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || { echo "uprobes need root" >&2; exit 1; }

swift build -c release --product EchoServer >/dev/null
mkdir -p Benchmarks/.build/reference
for c in load_client uring_echo uring_echo_tuned epoll_echo; do
    libs=""; [[ $c == uring* ]] && libs=-luring
    cc -O2 -o "Benchmarks/.build/reference/$c" "Benchmarks/C/$c.c" $libs
done
client=Benchmarks/.build/reference/load_client

concurrency=$(ldd .build/release/EchoServer | awk '/libswift_Concurrency.so/ {print $3}')
libc=$(ldd .build/release/EchoServer | awk '/libc.so.6/ {print $3}')
probes=()
for fn in swift_task_enqueue swift_task_switch swift_continuation_resume swift_task_addCancellationHandler; do
    perf probe -q -d "probe_libswift_Concurrency:$fn" 2>/dev/null || true
    perf probe -q -x "$concurrency" --add "$fn" && probes+=("probe_libswift_Concurrency:$fn")
done
perf probe -q -d "probe_libc:malloc" 2>/dev/null || true
perf probe -q -x "$libc" --add malloc && probes+=("probe_libc:malloc")
cleanup() { for p in "${probes[@]}"; do perf probe -q -d "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
events=$(IFS=,; echo "${probes[*]},raw_syscalls:sys_enter,syscalls:sys_enter_io_uring_enter,syscalls:sys_enter_sendto,syscalls:sys_enter_recvfrom,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_epoll_pwait2")


run() {  # name, command with PORT placeholder
    local name=$1; shift
    local port=$((20000 + RANDOM % 12000))   # below the ephemeral range (32768 and up)
    local args=("${@//PORT/$port}")
    taskset -c 1 "${args[@]}" >/dev/null 2>&1 &
    local server=$!
    local ready=0
    for _ in $(seq 300); do
        if (echo >/dev/tcp/127.0.0.1/$port) 2>/dev/null; then ready=1; break; fi
        sleep 0.05
    done
    if [ $ready = 0 ]; then echo "| $name | (did not listen on port $port within 15 s) |"; kill $server 2>/dev/null; return; fi
    # The client's window starts after every connection's first echo and a
    # 0.5 s warm-up, and outlasts perf's count by 1.5 s: attaching uprobes
    # delays perf's own timer by a few hundred ms, and a window that reached
    # the client's exit would count the connections' teardown as echo work.
    # perf's ops are the client's rate times perf's span.
    taskset -c 0 "$client" echo --port "$port" --server-pid "$server" --connections "$connections" --size "$size" \
        --duration "$(python3 -c "print($seconds + 1.5)")" --warmup 0.5 > /tmp/count-client.json &
    local load=$!
    sleep 0.8
    local window=$seconds
    perf stat -x, -e "$events" -p "$server" -o /tmp/count-perf.csv -- sleep "$window" 2>/dev/null
    wait $load
    kill $server; wait $server 2>/dev/null || true
    python3 - "$name" "$window" <<'PY'
import json, sys, csv
name, window = sys.argv[1], float(sys.argv[2])
client = json.load(open("/tmp/count-client.json"))
ops = client["ops_per_s"] * window
counts = {}
for row in csv.reader(open("/tmp/count-perf.csv")):
    if len(row) < 3 or row[0].startswith("#") or not row[0].strip():
        continue
    try:
        counts[row[2].split(":")[-1]] = float(row[0])
    except ValueError:
        counts[row[2].split(":")[-1]] = 0.0
def per(key):
    return counts.get(key, 0.0) / ops if ops else 0.0
cells = [per("swift_task_enqueue"), per("swift_task_switch"), per("swift_continuation_resume"),
         per("swift_task_addCancellationHandler"), per("malloc"), per("sys_enter"), per("sys_enter_io_uring_enter"),
         per("sys_enter_sendto"), per("sys_enter_recvfrom"), per("sys_enter_epoll_wait") + per("sys_enter_epoll_pwait2")]
text = [f"{c:.3f}" for c in cells]
text[4] += f" ({counts.get('malloc', 0.0):.0f})"   # the raw count: 0.000 could hide a few
print("| " + name + " | " + " | ".join(text) + f" | {client['server_cpu_ns_per_op']/1000:.2f} |")
PY
}

echo "Per echo, $connections connections × $size B, $(date -u +%Y-%m-%dT%H:%MZ), $(uname -r):"
echo
echo "| server | swift_task_enqueue | swift_task_switch | continuation_resume | addCancellationHandler | malloc (count) | syscalls | io_uring_enter | sendto | recvfrom | epoll_wait | server CPU µs |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for backend in uring epoll; do
    for api in stream protocol; do
        run "RingLoop $backend $api" .build/release/EchoServer --port PORT --backend $backend --api $api
    done
done
run "C liburing (naive)" Benchmarks/.build/reference/uring_echo PORT
run "C liburing (tuned)" Benchmarks/.build/reference/uring_echo_tuned PORT
run "C epoll" Benchmarks/.build/reference/epoll_echo PORT
