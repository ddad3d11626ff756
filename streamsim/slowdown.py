"""A test-only knob that makes the broker slower, so that the regression gate can be
shown to notice: with ``STREAMSIM_SLOWDOWN=0.2`` the broker's ``put`` and ``get`` add
20% to the CPU cost of each event through the closed-loop pipeline the gate measures
(asyncio, 4 producers, 4 consumers, no service time), so its throughput falls to
1/1.2 of what it was: a regression of the size the gate is meant to catch.

The runner builds its broker from ``broker_class()``: the plain ``Broker`` when the
variable is unset (the real broker's hot path pays nothing, not even a branch), a
subclass that busy-waits otherwise. The busy-wait sits in the subclass's clock,
which the broker reads once per admitted ``put`` and once per delivered ``get``;
its length is calibrated in-process against that pipeline run with the plain broker.
"""

from __future__ import annotations

import functools
import math
import os
import statistics
import sys
import time
from typing import TYPE_CHECKING, Any

from .broker import Broker
from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

__all__ = ("SLOWDOWN_ENV", "broker_class", "slowdown_factor")

SLOWDOWN_ENV = "STREAMSIM_SLOWDOWN"


def slowdown_factor() -> float:
    """The knob's value: 0.0 when unset.

    Raises:
        ConfigError: the variable is set to something other than a number >= 0.
    """
    raw = os.environ.get(SLOWDOWN_ENV, "").strip()
    if not raw:
        return 0.0
    try:
        factor = float(raw)
    except ValueError:
        factor = math.nan
    if not (factor >= 0 and math.isfinite(factor)):
        raise ConfigError(f"{SLOWDOWN_ENV} must be a number >= 0, got {raw!r}")
    return factor


_calibrating = False  # while measuring the plain pipeline, the runner gets the plain broker


def broker_class() -> type[Broker[Any]]:
    """``Broker``, or with ``STREAMSIM_SLOWDOWN`` set, a calibrated slower subclass."""
    factor = slowdown_factor()
    return Broker if factor == 0 or _calibrating else _slowed_broker(factor)


def _event_ns() -> float:
    """CPU ns per event of the closed-loop pipeline with the plain broker (median of 5)."""
    global _calibrating
    from .config import parse_scenario
    from .runner import run_scenario  # here: the runner imports this module

    events = 20_000
    sc = parse_scenario(
        dict(
            arrival="closed", service_mean=0.0, events=events, producers=4, consumers=4, maxsize=20, levels=3
        )
    )
    _calibrating = True
    try:
        costs = []
        for _ in range(5):
            start = time.thread_time_ns()
            run_scenario(sc)
            costs.append((time.thread_time_ns() - start) / events)
    finally:
        _calibrating = False
    return statistics.median(costs)


class _Job:
    __slots__ = ("deadline_ns", "priority")

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.deadline_ns: int | None = None


def _finish(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that never waits (put into room, get from a non-empty buffer)
    to completion without an event loop."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("calibration step waited")


def _pair_ns(broker: Broker[Any], jobs: list[_Job]) -> float:
    """CPU ns per put + get + task_done on ``broker``, the buffer never full or empty."""
    put, get, done = broker.put, broker.get, broker.task_done
    start = time.thread_time_ns()
    for job in jobs:
        _finish(put(job))
        done(_finish(get()))
    return (time.thread_time_ns() - start) / len(jobs)


def _spin_ns(clock: Callable[[], int], calls: int) -> float:
    start = time.thread_time_ns()
    for _ in range(calls):
        clock()
    return (time.thread_time_ns() - start) / calls


@functools.cache
def _slowed_broker(factor: float) -> type[Broker[Any]]:
    spins = [0]  # busy-wait iterations per clock read, set by the calibration below

    class SlowedBroker(Broker[Any]):
        """A ``Broker`` whose clock busy-waits first (test-only: see ``STREAMSIM_SLOWDOWN``)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            clock, n = self._clock, spins[0]

            def slow_clock() -> int:
                for _ in range(n):
                    pass
                return clock()

            self._clock = slow_clock

    # Calibrate: the pipeline's cost per event, then the wrapper's own overhead per
    # put + get pair and the cost of one busy-wait iteration, the last two measured
    # interleaved so that drift hits both alike.
    target_ns = factor * _event_ns()
    jobs = [_Job(i % 3) for i in range(2000)]
    extra = []
    for _ in range(15):
        plain = _pair_ns(Broker(100, on_take=lambda p, w: None), jobs)
        spins[0] = 0
        wrapped = _pair_ns(SlowedBroker(100, on_take=lambda p, w: None), jobs)
        spins[0] = 1000
        per_spin = _spin_ns(SlowedBroker(1)._clock, 200) / 1000
        extra.append((target_ns - (wrapped - plain)) / (2 * per_spin))  # two clock reads per event
    spins[0] = max(0, round(statistics.median(extra)))
    # A test knob must never be on by accident: say so, once per process.
    print(
        f"streamsim: {SLOWDOWN_ENV}={factor:g}: the broker busy-waits {spins[0]} iterations per clock read, "
        f"about {target_ns:.0f} ns per event (test-only slowdown)",
        file=sys.stderr,
    )
    return SlowedBroker
