#!/usr/bin/env bash
# Random 4 KiB reads, 32 in flight, on a 1 GiB file: RingLoop (io_uring and
# epoll) beside fio --ioengine=io_uring, alternating, ROUNDS times.
#   Benchmarks/Scripts/file_bench.sh [ROUNDS] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-4}
file=${RINGLOOP_BENCH_FILE:-/var/tmp/ringloop-bench.dat}
command -v fio >/dev/null || { echo "fio is not installed (apt-get install fio)"; exit 1; }
swift build -c release --product FileBench > /dev/null
[ -f "$file" ] || fio --name=make --filename="$file" --size=1G --rw=write --bs=1M --direct=1 > /dev/null
for round in $(seq "$rounds"); do
    for mode in direct buffered; do
        flag=$([ $mode = direct ] && echo --direct || true)
        [ $mode = buffered ] && cat "$file" > /dev/null   # warm the page cache
        for backend in uring epoll; do
            echo "round $round $mode RingLoop-$backend $(.build/release/FileBench "$file" --backend $backend $flag --seconds "$seconds")"
        done
        direct=$([ $mode = direct ] && echo 1 || echo 0)
        iops=$(fio --name=rr --filename="$file" --rw=randread --bs=4k --iodepth=32 --ioengine=io_uring \
            --direct=$direct --runtime="$seconds" --time_based --output-format=terse 2>/dev/null | awk -F';' '{print $8}')
        echo "round $round $mode fio-io_uring {\"reads_per_s\":$iops}"
    done
done
