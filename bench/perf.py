"""The harness's own costs, measured on this machine (``nox -s perf``):

1. virtual-clock speed: simulated events per wall second;
2. measurement overhead: ns per event of all timestamps, latency buffers and histogram
   folding, against the same broker pipeline uninstrumented, alternated in one run;
3. peak memory (max RSS) of one 10M-event point, in a fresh process.

Prints medians; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

from streamsim import Broker, parse_scenario, run_scenario
from streamsim.metrics import LatencyRecorder


class _Item:
    __slots__ = ("deadline_ns", "priority", "sent_ns")

    def __init__(self, priority: int, sent_ns: int) -> None:
        self.priority = priority
        self.sent_ns = sent_ns
        self.deadline_ns = None


def _zero() -> int:
    return 0


async def _pipeline(n: int, instrumented: bool) -> float:
    """n events through one producer, a broker (maxsize 1000) and one consumer;
    returns wall seconds."""
    clock = time.perf_counter_ns
    recorder = LatencyRecorder(3)
    raw = recorder.raw
    wait_raw, service_raw, e2e_raw = raw["queue_wait"], raw["service"], raw["end_to_end"]
    broker: Broker[_Item] = Broker(
        1000,
        levels=3,
        clock=clock if instrumented else _zero,
        on_take=(lambda p, w: wait_raw[p].append(w)) if instrumented else None,
    )

    async def produce() -> None:
        for i in range(n):
            await broker.put(_Item(i % 3, clock() if instrumented else 0))
        broker.close()

    async def consume() -> None:
        get, done = broker.get, broker.task_done
        try:
            while True:
                item = await get()
                if instrumented:
                    taken = clock()
                    finished = clock()
                    service_raw[item.priority].append(finished - taken)
                    e2e_raw[item.priority].append(finished - item.sent_ns)
                done(item)
        except Exception:
            return

    started = time.perf_counter()
    await asyncio.gather(produce(), consume())
    if instrumented:
        recorder.fold()
    return time.perf_counter() - started


def overhead(n: int, rounds: int) -> None:
    plain, inst = [], []
    for _ in range(rounds):  # alternate so drift hits both alike
        plain.append(asyncio.run(_pipeline(n, False)))
        inst.append(asyncio.run(_pipeline(n, True)))
    p, i = statistics.median(plain), statistics.median(inst)
    print(f"pipeline, {n:,} events, median of {rounds} alternated rounds:")
    print(f"  uninstrumented {p / n * 1e9:7.0f} ns/event  ({n / p:,.0f} events/s)")
    print(f"  instrumented   {i / n * 1e9:7.0f} ns/event  ({n / i:,.0f} events/s)")
    print(f"  measurement cost {(i - p) / n * 1e9:.0f} ns/event ({i / p:.2f}x)")


def virtual_speed(events: int) -> None:
    sc = parse_scenario(
        dict(clock="virtual", arrival="poisson", load=0.8, service_mean=0.001, consumers=4, producers=1,
             maxsize=1000, events=events, levels=3)
    )  # fmt: skip
    started = time.perf_counter()
    result = run_scenario(sc)
    wall = time.perf_counter() - started
    simulated = result.elapsed_ns / 1e9
    print(f"virtual clock: {events:,} events, {simulated:,.0f} simulated s in {wall:.1f} wall s:")
    print(f"  {events / wall:,.0f} simulated events per wall second")


def _peak_rss_mb(code: str) -> tuple[str, float]:
    """Run ``code`` in a fresh interpreter; its stdout and its peak RSS. VmHWM, not
    ru_maxrss: after fork and exec Linux's ru_maxrss still counts the parent's size."""
    probe = "\nprint([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])\n"
    lines = subprocess.run(
        [sys.executable, "-c", code + probe], capture_output=True, text=True, check=True
    ).stdout.split()
    return " ".join(lines[:-1]), int(lines[-1]) / 1024


def memory(events: int) -> None:
    code = (
        "from streamsim import parse_scenario, run_scenario\n"
        f"sc = parse_scenario(dict(arrival='closed', service_mean=0.0, events={events}, producers=4,"
        " consumers=4, maxsize=1000, levels=3))\n"
        "r = run_scenario(sc)\n"
        "print(sum(r.stats.processed))"
    )
    started = time.perf_counter()
    processed, peak = _peak_rss_mb(code)
    wall = time.perf_counter() - started
    _, imported = _peak_rss_mb("import streamsim.runner")
    print(f"memory: one point of {int(processed):,} events (closed loop, wall clock) in {wall:.0f} s:")
    print(f"  peak RSS {peak:.0f} MB (importing streamsim alone: {imported:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--events", type=int, default=200_000, help="events for the speed and overhead runs")
    parser.add_argument("--memory-events", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    virtual_speed(args.events)
    overhead(args.events, args.rounds)
    memory(args.memory_events)


if __name__ == "__main__":
    main()
