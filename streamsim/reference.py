"""Noise control for wall-clock throughput: a reference pipeline measured in the same
process, right before and right after each repeat.

The machine's speed drifts while a sweep runs (other processes, a busy sibling
hyperthread or VM neighbour, frequency changes), and by as much as 20% within
seconds on a shared runner. A raw ``asyncio.Queue`` producer/consumer loop on the
same kind of event loop feels the same drift, so throughput divided by the
reference's throughput cancels most of it; that ratio is what the regression gate
compares on closed-loop points. A point divides by the median of its repeats'
references: one 50 ms window jitters more than a whole repeat does.

Both sides are counted per CPU-second of this thread (``time.thread_time_ns``), not
per wall second: time stolen by other processes then counts on neither side, and
what remains of the drift (a slower core) is common to both and divides out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from typing import TYPE_CHECKING

from .clock import loop_factory
from .runner import run_scenario

if TYPE_CHECKING:
    from .config import Scenario
    from .runner import RunResult
    from .workload import Trace

__all__ = ("REFERENCE_S", "Reference", "reference_hz", "run_with_reference")

REFERENCE_S = 0.05  # each side of a repeat: 100 ms per repeat in all
_PRODUCERS = _CONSUMERS = 4
_MAXSIZE = 20


@dataclasses.dataclass(frozen=True, slots=True)
class Reference:
    """The reference around one repeat, and the repeat's own CPU time."""

    reference_hz: float  # reference events per CPU-second: the better of before and after
    run_cpu_ns: int  # CPU time of this thread spent in the repeat, loop set-up included


async def _pipeline(duration_s: float) -> tuple[int, int]:
    """Move events through a plain ``asyncio.Queue`` for ``duration_s``; return
    (events, CPU ns)."""
    queue: asyncio.Queue[tuple[int, int]] = asyncio.Queue(_MAXSIZE)
    clock = time.perf_counter_ns
    stop_ns = clock() + round(duration_s * 1e9)
    moved = 0

    async def produce(index: int) -> None:
        put, full = queue.put, queue.full
        while clock() < stop_ns:
            await put((index, clock()))
            if full():
                await asyncio.sleep(0)  # as the runner's closed loop does: let consumers run

    async def consume() -> None:
        nonlocal moved
        get, done = queue.get, queue.task_done
        while True:
            await get()
            clock()
            moved += 1
            done()

    cpu_start = time.thread_time_ns()
    consumers = [asyncio.create_task(consume()) for _ in range(_CONSUMERS)]
    await asyncio.gather(*(produce(i) for i in range(_PRODUCERS)))
    await queue.join()
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return moved, time.thread_time_ns() - cpu_start


def reference_hz(loop: str, duration_s: float = REFERENCE_S) -> float:
    """Events per CPU-second through a raw ``asyncio.Queue`` (4 producers, 4 consumers,
    maxsize 20) on a fresh event loop of kind ``loop`` (``asyncio`` or ``uvloop``)."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        moved, cpu_ns = runner.run(_pipeline(duration_s))
    return moved / (max(cpu_ns, 1) / 1e9)


def run_with_reference(sc: Scenario, *, seed: int, trace: Trace | None) -> tuple[RunResult, Reference | None]:
    """``run_scenario``, bracketed by the reference pipeline on wall-clock scenarios
    (virtual-clock runs are exact: they get no reference)."""
    if sc.clock != "wall":
        return run_scenario(sc, seed=seed, trace=trace), None
    before = reference_hz(sc.loop)
    cpu_start = time.thread_time_ns()
    result = run_scenario(sc, seed=seed, trace=trace)
    run_cpu_ns = time.thread_time_ns() - cpu_start
    after = reference_hz(sc.loop)
    # Interference (a neighbour's burst, a page-cache flush) only ever slows a measurement,
    # so the faster of the two is the closer to the machine's real speed.
    return result, Reference(reference_hz=max(before, after), run_cpu_ns=run_cpu_ns)
