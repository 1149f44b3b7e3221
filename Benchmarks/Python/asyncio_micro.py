#!/usr/bin/env python3
"""The loop micro-workloads on asyncio (or uvloop), the same six RingLoop and
SwiftNIO run in BenchWorker: a warm-up of a tenth of the count, then the
measured run. Prints one JSON line: CPU and wall nanoseconds per operation.

    python3 asyncio_micro.py WORKLOAD COUNT [--batch N] [--uvloop]
    WORKLOAD: callSoon | timersDue | timersSpread | cancel | hop | crossThread
"""
import asyncio
import json
import random
import sys
import threading
import time


def call_soon_chain(loop, count, batch=0):
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


def timers_due(loop, count, batch):
    """Timers already due: `batch` scheduled with no delay, all fired, then the next batch."""
    state = {"fired": 0, "left": 0}

    def fire():
        state["fired"] += 1
        state["left"] -= 1
        if state["left"] == 0:
            if state["fired"] >= count:
                loop.stop()
            else:
                schedule()

    def schedule():
        size = min(batch, count - state["fired"])
        state["left"] = size
        for _ in range(size):
            loop.call_later(0, fire)

    loop.call_soon(schedule)
    loop.run_forever()


def timers_spread(loop, count, batch, per_ms=100):
    """`batch` timers live, `per_ms` due per millisecond; each firing one
    schedules its successor one period (batch / per_ms ms) later."""
    period = batch / per_ms / 1000
    rng = random.Random(42)
    state = {"fired": 0, "scheduled": 0}

    def fire():
        state["fired"] += 1
        if state["fired"] == count:
            loop.stop()
            return
        if state["scheduled"] < count:
            state["scheduled"] += 1
            loop.call_later(period, fire)

    def start():
        for _ in range(min(batch, count)):
            state["scheduled"] += 1
            loop.call_later(rng.random() * period, fire)

    loop.call_soon(start)
    loop.run_forever()


def timers_cancel(loop, count, batch):
    """Schedule then cancel, `batch` timers at a time: one loop iteration per batch."""
    batches = max(1, count // batch)

    def run_batch(left):
        handles = [loop.call_later(10 + i % 1000, lambda: None) for i in range(min(count, batch))]
        for handle in handles:
            handle.cancel()
        if left > 1:
            loop.call_soon(run_batch, left - 1)
        else:
            loop.stop()

    loop.call_soon(run_batch, batches)
    loop.run_forever()


def task_hop(loop, count, batch=0):
    """A future resolved by a call_soon callback, awaited by a task: the same
    job as RingLoop's continuation resumed by a loop callback."""
    async def hops():
        for _ in range(count):
            future = loop.create_future()
            loop.call_soon(future.set_result, None)
            await future

    loop.run_until_complete(hops())


def cross_thread(loop, count, batch=0):
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


WORKLOADS = {"callSoon": call_soon_chain, "timersDue": timers_due, "timersSpread": timers_spread,
             "cancel": timers_cancel, "hop": task_hop, "crossThread": cross_thread}


def main():
    args = [a for a in sys.argv[1:] if a != "--uvloop"]
    batch = 10_000
    if "--batch" in args:
        at = args.index("--batch")
        if at + 1 >= len(args) or not args[at + 1].isdigit() or int(args[at + 1]) < 100:
            sys.exit("--batch needs a number of at least 100")
        batch = int(args[at + 1])
        del args[at:at + 2]
    if len(args) != 2 or args[0] not in WORKLOADS or not args[1].isdigit() or int(args[1]) < 10_000:
        sys.exit(f"usage: asyncio_micro.py {{{'|'.join(WORKLOADS)}}} COUNT(>=10000) [--batch N] [--uvloop]")
    workload, count = WORKLOADS[args[0]], int(args[1])
    if "--uvloop" in sys.argv:
        import uvloop
        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    workload(loop, max(count // 10, min(count, batch)), batch)
    cpu, wall = time.process_time_ns(), time.perf_counter_ns()
    workload(loop, count, batch)
    print(json.dumps({"cpu_ns_per_op": (time.process_time_ns() - cpu) / count,
                      "wall_ns_per_op": (time.perf_counter_ns() - wall) / count}))
    loop.close()


if __name__ == "__main__":
    main()
