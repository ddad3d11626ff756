"""Overflow policies (what a full broker does with a new event) and dequeue
disciplines (which level a consumer is served from next)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, Protocol

from .errors import ConfigError

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Sequence

__all__ = ("Aging", "Discipline", "Overflow", "WeightedRoundRobin", "make_discipline")


class Overflow(enum.StrEnum):
    """What ``put`` does when the buffer already holds ``maxsize`` events."""

    BLOCK = "block"  # wait for space; most urgent waiter first, then FIFO
    TIMEOUT = "timeout"  # wait up to put_timeout, then drop the new event
    DROP_NEW = "drop-new"  # drop the new event at once
    REJECT = "reject"  # raise BrokerFull at once
    DROP_OLDEST = "drop-oldest"  # evict the longest-waiting event, admit the new one
    SHED_LOWEST = "shed-lowest"  # evict the newest least-urgent event if the new one is more urgent

    @property
    def waits(self) -> bool:
        """True for the policies under which ``put`` may wait for space."""
        return self in (Overflow.BLOCK, Overflow.TIMEOUT)


def _is_int(value: object) -> bool:
    """An int, and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


# A buffered entry: (admitted_ns, admission sequence number, event). The sequence
# number breaks ties between events admitted at the same virtual instant.
Entry = tuple[int, int, Any]


class Discipline(Protocol):
    """Chooses the level the next event is taken from. Strict priority is the
    broker's built-in fast path and has no object."""

    def choose(self, buffer: Sequence[deque[Entry]], now_ns: int) -> int:
        """Return the index of a non-empty level; called only when the buffer is not empty."""
        ...


class Aging:
    """Strict priority, except that an event's effective level improves by one for
    every ``age_step_ns`` it has waited, so low levels cannot starve forever.
    Ties go to the event admitted first."""

    def __init__(self, age_step_ns: int) -> None:
        # An int: a nan step would make every key compare false (silently strict).
        if not (_is_int(age_step_ns) and age_step_ns >= 1):
            raise ConfigError(f"age_step must be > 0, got {age_step_ns!r} ns (an int)")
        self.age_step_ns = age_step_ns

    def choose(self, buffer: Sequence[deque[Entry]], now_ns: int) -> int:
        best_level = -1
        best_key: tuple[int, int] | None = None
        for level, entries in enumerate(buffer):
            if entries:
                admitted_ns, seq, _ = entries[0]  # the head is the oldest of its level
                key = (level - (now_ns - admitted_ns) // self.age_step_ns, seq)
                if best_key is None or key < best_key:
                    best_level, best_key = level, key
        return best_level


class WeightedRoundRobin:
    """Deficit round robin with a cost of one per event: level ``i`` is served up
    to ``weights[i]`` events per round, empty levels lose their credit. Needs one
    weight per level: the broker refuses a length that does not match its levels."""

    def __init__(self, weights: Sequence[int]) -> None:
        # Integers only: a nan weight never earns the credit to be served (choose()
        # would spin forever).
        if not weights or not all(_is_int(w) and w >= 1 for w in weights):
            raise ConfigError(f"weights must be integers >= 1, got {list(weights)}")
        self.weights = tuple(weights)
        self._credit = [0] * len(weights)
        self._credit[0] = self.weights[0]
        self._current = 0

    def choose(self, buffer: Sequence[deque[Entry]], now_ns: int) -> int:
        levels = len(self.weights)
        while True:
            level = self._current
            if buffer[level] and self._credit[level] >= 1:
                self._credit[level] -= 1
                return level
            if not buffer[level]:
                self._credit[level] = 0
            self._current = (level + 1) % levels
            self._credit[self._current] += self.weights[self._current]


def make_discipline(
    name: str, *, levels: int, age_step_ns: int | None = None, weights: Sequence[int] | None = None
) -> Discipline | None:
    """Build the discipline called ``name``; ``None`` means strict priority."""
    if name == "strict":
        return None
    if name == "aging":
        if age_step_ns is None:
            raise ConfigError("discipline 'aging' needs age_step")
        return Aging(age_step_ns)
    if name == "wrr":
        if weights is None:
            weights = [2 ** (levels - 1 - i) for i in range(levels)]
        if len(weights) != levels:
            raise ConfigError(f"weights must have one entry per level ({levels}), got {list(weights)}")
        return WeightedRoundRobin(weights)
    raise ConfigError(f"discipline must be one of strict, aging, wrr, got {name!r}")
