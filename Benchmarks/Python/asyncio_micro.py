#!/usr/bin/env python3
"""The loop micro-workloads on asyncio (or uvloop), the same five RingLoop and
SwiftNIO run in BenchWorker: a warm-up of a tenth of the count, then the
measured run. Prints one JSON line: CPU and wall nanoseconds per operation.

    python3 asyncio_micro.py WORKLOAD COUNT [--uvloop]
    WORKLOAD: callSoon | timers | cancel | hop | crossThread
"""
import asyncio
import json
import random
import sys
import threading
import time


def call_soon_chain(loop, count):
    remaining = count

    def step():
        nonlocal remaining
        remaining -= 1
        if remaining == 0:
            loop.stop()
        else:
            loop.call_soon(step)

    loop.call_soon(step)
    loop.run_forever()


def timers_fire(loop, count):
    rng = random.Random(42)
    fired = 0

    def fire():
        nonlocal fired
        fired += 1
        if fired == count:
            loop.stop()

    def schedule():
        for _ in range(count):
            loop.call_later(rng.randrange(500_000) / 1e6, fire)

    loop.call_soon(schedule)
    loop.run_forever()


def timers_cancel(loop, count, live=10_000):
    """Schedule then cancel, `live` timers at a time: one loop iteration per batch."""
    batches = max(1, count // live)

    def batch(left):
        handles = [loop.call_later(10 + i % 1000, lambda: None) for i in range(min(count, live))]
        for handle in handles:
            handle.cancel()
        if left > 1:
            loop.call_soon(batch, left - 1)
        else:
            loop.stop()

    loop.call_soon(batch, batches)
    loop.run_forever()


def task_hop(loop, count):
    async def hops():
        for _ in range(count):
            await asyncio.sleep(0)

    loop.run_until_complete(hops())


def cross_thread(loop, count):
    done = 0

    def arrive():
        nonlocal done
        done += 1
        if done == count:
            loop.stop()

    def produce():
        for _ in range(count):
            loop.call_soon_threadsafe(arrive)

    producer = threading.Thread(target=produce)
    producer.start()
    loop.run_forever()
    producer.join()


WORKLOADS = {"callSoon": call_soon_chain, "timers": timers_fire, "cancel": timers_cancel,
             "hop": task_hop, "crossThread": cross_thread}


def main():
    args = [a for a in sys.argv[1:] if a != "--uvloop"]
    if len(args) != 2 or args[0] not in WORKLOADS or not args[1].isdigit() or int(args[1]) < 10_000:
        sys.exit(f"usage: asyncio_micro.py {{{'|'.join(WORKLOADS)}}} COUNT(>=10000) [--uvloop]")
    workload, count = WORKLOADS[args[0]], int(args[1])
    if "--uvloop" in sys.argv:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    workload(loop, count // 10)
    cpu, wall = time.process_time_ns(), time.perf_counter_ns()
    workload(loop, count)
    print(json.dumps({"cpu_ns_per_op": (time.process_time_ns() - cpu) / count,
                      "wall_ns_per_op": (time.perf_counter_ns() - wall) / count}))
    loop.close()


if __name__ == "__main__":
    main()
