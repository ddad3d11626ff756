"""Clocks and event-loop factories: wall-clock asyncio and uvloop, and a virtual-time
loop whose clock jumps to the next timer whenever every task is waiting."""

from __future__ import annotations

import asyncio
import selectors
import time
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

__all__ = ("LOOPS", "VirtualEventLoop", "clock_for", "loop_factory")

LOOPS = ("asyncio", "uvloop")


class _VirtualSelector(selectors.BaseSelector):
    """Wraps a real selector. A wait that would sleep instead advances virtual time
    by the timeout, so a simulated second costs no wall time."""

    def __init__(self, loop_clock: list[float]) -> None:
        self._real = selectors.DefaultSelector()
        self._now = loop_clock
        self._calls = 0

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            # Nothing scheduled and nothing ready: only another thread can wake us.
            return self._real.select(None)
        self._calls += 1
        if self._calls % 64 == 0:
            # Drain the loop's self-pipe now and then (call_soon_threadsafe, signals);
            # polling on every pass would cost more than the rest of the iteration.
            ready = self._real.select(0)
            if ready:
                return ready
        if timeout > 0:
            self._now[0] += timeout
        return []

    def close(self) -> None:
        self._real.close()

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time: ``time()`` starts at 0 and only moves when
    every task is idle, jumping straight to the next scheduled timer. Runs are
    deterministic: the same program gives the same timings, byte for byte."""

    def __init__(self) -> None:
        self._virtual_now = [0.0]
        super().__init__(_VirtualSelector(self._virtual_now))

    def time(self) -> float:
        return self._virtual_now[0]

    def time_ns(self) -> int:
        return round(self._virtual_now[0] * 1e9)


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop]:
    """Return a factory for a new loop of kind ``name`` (``asyncio``, ``uvloop`` or
    ``virtual``), for ``asyncio.Runner(loop_factory=...)``.

    Raises:
        ConfigError: unknown name, or uvloop is not installed.
    """
    if name == "asyncio":
        return asyncio.SelectorEventLoop
    if name == "virtual":
        return VirtualEventLoop
    if name == "uvloop":
        try:
            import uvloop
        except ImportError:
            raise ConfigError(
                "loop 'uvloop' is not installed: pip install uvloop (Linux and macOS only)"
            ) from None
        return uvloop.new_event_loop
    raise ConfigError(f"loop must be one of asyncio, uvloop, got {name!r}")


def uvloop_available() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def clock_for(loop: asyncio.AbstractEventLoop) -> Callable[[], int]:
    """The nanosecond clock that matches ``loop``: virtual time on a virtual loop,
    ``time.perf_counter_ns`` otherwise."""
    if isinstance(loop, VirtualEventLoop):
        return loop.time_ns
    return time.perf_counter_ns
