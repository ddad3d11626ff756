"""The broker: a bounded asyncio priority buffer with overflow policies,
per-priority accounting and a zero-loss shutdown.

Hot path: when the buffer is neither full nor empty, ``put`` and ``get`` touch one
deque and a few list counters, read the clock once and create no future, timer or
task. Waiting, timers and policy decisions happen only on the full/empty edges.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import operator
import time
from collections import OrderedDict, deque
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from .errors import BrokerClosed, BrokerFull, ConfigError
from .policies import Overflow, WeightedRoundRobin

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import TracebackType

    from .policies import Discipline

__all__ = ("Broker", "BrokerStatistics", "Prioritized")


def _is_int(value: object) -> bool:
    """An int, and not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


class Prioritized(Protocol):
    """What the broker needs of an event: a priority level and an optional deadline."""

    @property
    def priority(self) -> int: ...  # 0 is most urgent

    @property
    def deadline_ns(self) -> int | None: ...  # clock time after which it expires; None: never


E = TypeVar("E", bound=Prioritized)


@dataclasses.dataclass(frozen=True, slots=True)
class BrokerStatistics:
    """A snapshot of the broker. Per-priority fields are tuples indexed by priority."""

    maxsize: int  # buffer capacity in events (0 for unbounded)
    size: int  # events buffered now
    peak_size: int  # most events ever buffered at once
    unfinished: int  # admitted events not yet done (buffered + held by consumers)
    waiting_putters: int  # producers blocked in put()
    waiting_getters: int  # consumers blocked in get()
    closed: bool
    size_by_priority: tuple[int, ...]  # events buffered now
    offered: tuple[int, ...]  # every put attempt
    accepted: tuple[int, ...]  # admitted into the buffer
    delivered: tuple[int, ...]  # handed to a consumer by get()
    processed: tuple[int, ...]  # task_done() after successful handling
    dropped_full: tuple[int, ...]  # new event dropped at once (drop-new, shed-lowest)
    dropped_timeout: tuple[int, ...]  # new event dropped after put_timeout (timeout), even if then cancelled
    rejected_full: tuple[int, ...]  # BrokerFull raised (reject, put_nowait)
    rejected_closed: tuple[int, ...]  # put() failed by close() (BrokerClosed), even if then cancelled
    rejected_cancelled: tuple[int, ...]  # put() cancelled while waiting, before any other outcome
    evicted: tuple[int, ...]  # admitted, then pushed out (drop-oldest, shed-lowest)
    expired: tuple[int, ...]  # deadline passed before a consumer took it
    dead_lettered: tuple[int, ...]  # handling failed after all retries
    abandoned: tuple[int, ...]  # left behind when a drain deadline ran out
    blocked_ns: tuple[int, ...]  # total time producers spent waiting in put(), ns

    @property
    def dropped(self) -> tuple[int, ...]:
        return tuple(a + b for a, b in zip(self.dropped_full, self.dropped_timeout, strict=True))

    @property
    def rejected(self) -> tuple[int, ...]:
        return tuple(
            a + b + c
            for a, b, c in zip(self.rejected_full, self.rejected_closed, self.rejected_cancelled, strict=True)
        )

    def unaccounted(self) -> tuple[int, ...]:
        """Per priority: offered minus every final outcome. Zero everywhere once a run
        has finished; while running it is the number of events still in flight."""
        outcomes = zip(
            self.processed,
            self.dropped,
            self.rejected,
            self.evicted,
            self.expired,
            self.dead_lettered,
            self.abandoned,
            strict=True,
        )
        return tuple(o - sum(out) for o, out in zip(self.offered, outcomes, strict=True))


_COUNTERS = (
    "offered", "accepted", "delivered", "processed", "dropped_full", "dropped_timeout",
    "rejected_full", "rejected_closed", "rejected_cancelled", "evicted", "expired",
    "dead_lettered", "abandoned", "blocked_ns",
)  # fmt: skip


class _Counters:
    """Mutable per-priority counters behind ``BrokerStatistics`` (plain lists: hot path)."""

    __slots__ = _COUNTERS

    def __init__(self, levels: int) -> None:
        for name in _COUNTERS:
            setattr(self, name, [0] * levels)

    offered: list[int]
    accepted: list[int]
    delivered: list[int]
    processed: list[int]
    dropped_full: list[int]
    dropped_timeout: list[int]
    rejected_full: list[int]
    rejected_closed: list[int]
    rejected_cancelled: list[int]
    evicted: list[int]
    expired: list[int]
    dead_lettered: list[int]
    abandoned: list[int]
    blocked_ns: list[int]


class Broker(Generic[E]):
    """A bounded priority broker for events with a ``priority`` in ``[0, levels)``.

    Strict priority, FIFO within a priority (unless another ``discipline`` is given).
    ``put``/``put_nowait`` admit, ``get``/``get_nowait`` deliver, ``task_done`` (or
    ``dead_letter``/``abandon``) finishes a delivered event, ``join`` waits until every
    admitted event is finished, ``close`` stops intake. Every event offered ends in
    exactly one counter of ``statistics()``.

    Args:
        maxsize: events the buffer holds (an int >= 1), or ``None`` for unbounded (explicitly).
        levels: number of priority levels (an int >= 1); 0 is most urgent.
        overflow: what a full buffer does with a new event (see ``Overflow``).
        put_timeout: seconds ``put`` waits under the ``timeout`` policy (finite, > 0;
            required for ``timeout``, checked if given for the others).
        discipline: dequeue discipline; ``None`` is strict priority. A
            ``WeightedRoundRobin`` needs one weight per level.
        clock: monotonic nanosecond clock used for admission stamps, deadlines and
            blocked time (the virtual loop's clock in simulations).
        on_take: called with ``(priority, queue_wait_ns)`` for every delivered event,
            for latency recording.
    """

    def __init__(
        self,
        maxsize: int | None,
        *,
        levels: int = 3,
        overflow: Overflow | str = Overflow.BLOCK,
        put_timeout: float | None = None,
        discipline: Discipline | None = None,
        clock: Callable[[], int] = time.perf_counter_ns,
        on_take: Callable[[int, int], None] | None = None,
    ) -> None:
        # bool is an int subclass but never a meaningful size; a float (1.5, inf, nan)
        # would make the ``==`` full test never true: silently unbounded.
        if maxsize is not None and not (_is_int(maxsize) and maxsize >= 1):
            raise ConfigError(f"maxsize must be an int >= 1, got {maxsize!r} (None for unbounded)")
        if not (_is_int(levels) and levels >= 1):
            raise ConfigError(f"levels must be an int >= 1, got {levels!r}")
        try:
            self.overflow = Overflow(overflow)
        except ValueError:
            choices = ", ".join(p.value for p in Overflow)
            raise ConfigError(f"overflow must be one of {choices}, got {overflow!r}") from None
        if put_timeout is not None and not (
            isinstance(put_timeout, int | float)
            and not isinstance(put_timeout, bool)
            and math.isfinite(put_timeout)
            and put_timeout > 0
        ):  # nan would never time out, inf never fires
            raise ConfigError(f"put_timeout must be a finite number > 0, got {put_timeout!r}")
        if self.overflow is Overflow.TIMEOUT and put_timeout is None:
            raise ConfigError("put_timeout must be a finite number > 0 for overflow 'timeout', got None")
        if isinstance(discipline, WeightedRoundRobin) and len(discipline.weights) != levels:
            # Levels without a weight are never served (get() would spin forever), extra
            # weights index levels that do not exist.
            raise ConfigError(
                f"weights must have one entry per level ({levels}), got {list(discipline.weights)}"
            )
        self.maxsize = maxsize
        self.levels = levels
        self.put_timeout = put_timeout
        self._capacity = maxsize if maxsize is not None else -1  # -1: never full
        self._discipline = discipline
        self._clock = clock
        self._on_take = on_take
        self._buffer: list[deque[tuple[int, int, E]]] = [deque() for _ in range(levels)]
        self._size = 0
        self._peak_size = 0
        self._seq = 0
        self._unfinished = 0
        self._closed = False
        self._counts = _Counters(levels)
        # Delivered events finished (task_done, dead_letter, abandon) per priority: a
        # consumer holds delivered[p] - _done[p] events of priority p. Kept here, not
        # in get(), so the delivery path does no extra work.
        self._done = [0] * levels
        self._getters: deque[asyncio.Future[None]] = deque()
        # Blocked producers per level: future -> event. OrderedDict gives FIFO order and
        # O(1) removal of a cancelled or timed-out waiter (no leak, no O(n) scan).
        self._putters: list[OrderedDict[asyncio.Future[bool], E]] = [OrderedDict() for _ in range(levels)]
        self._waiting_putters = 0
        self._reserved = 0  # slots handed to woken putters that have not inserted yet
        self._finished: asyncio.Event | None = None

    # ------------------------------------------------------------------ admission

    def put_nowait(self, event: E) -> bool:
        """Admit ``event`` without waiting.

        Returns True if admitted, False if the overflow policy dropped it.

        Raises:
            BrokerFull: the buffer is full and the policy is ``reject``, ``block`` or
                ``timeout`` (which would have to wait).
            BrokerClosed: ``close()`` was called.
            ConfigError: the priority is out of range.
        """
        priority = self._offer(event)
        if self._size + self._reserved == self._capacity:
            if self.overflow.waits:
                self._counts.rejected_full[priority] += 1
                raise BrokerFull(f"broker is full ({self.maxsize} events)")
            return self._admit_when_full(event, priority)
        self._insert(event, priority)
        return True

    async def put(self, event: E) -> bool:
        """Admit ``event``, waiting for space under the ``block`` and ``timeout`` policies.

        Returns True if admitted, False if the policy dropped it (``drop-new``,
        ``shed-lowest``, or ``timeout`` after ``put_timeout``).

        A cancelled call never admits its event, and counts it once, under the outcome
        that was decided first:

        - cancelled while waiting (also after a place was handed to it, which then
          goes to the next waiter): ``rejected_cancelled``;
        - cancelled after its own ``put_timeout`` fired but before it could return
          False: ``dropped_timeout``, as if it had returned;
        - cancelled after ``close()`` failed it but before it could raise:
          ``rejected_closed``, as if it had raised ``BrokerClosed``.

        Raises:
            BrokerFull: the buffer is full and the policy is ``reject``.
            BrokerClosed: the broker was closed before the event was admitted.
        """
        priority = self._offer(event)
        if self._size + self._reserved != self._capacity:
            self._insert(event, priority)
            return True
        if not self.overflow.waits:
            return self._admit_when_full(event, priority)
        return await self._wait_for_space(event, priority)

    def _offer(self, event: E) -> int:
        priority = event.priority
        if not 0 <= priority < self.levels:
            raise ConfigError(f"priority must be in [0, {self.levels}), got {priority}")
        try:  # free unless it raises; a float fails the list index before counting
            self._counts.offered[priority] += 1
        except TypeError:
            raise ConfigError(f"priority must be an int, got {priority!r}") from None
        if self._closed:
            self._counts.rejected_closed[priority] += 1
            raise BrokerClosed("broker is closed")
        return priority

    def _insert(self, event: E, priority: int) -> None:
        self._buffer[priority].append((self._clock(), self._seq, event))
        self._seq += 1
        self._size += 1
        self._unfinished += 1
        self._counts.accepted[priority] += 1
        if self._size > self._peak_size:
            self._peak_size = self._size
        if self._getters:
            self._wake_getter()

    def _admit_when_full(self, event: E, priority: int) -> bool:
        """Non-waiting policies on a full buffer."""
        policy = self.overflow
        if policy is Overflow.REJECT:
            self._counts.rejected_full[priority] += 1
            raise BrokerFull(f"broker is full ({self.maxsize} events)")
        if policy is Overflow.DROP_OLDEST:
            self._evict(self._oldest_level(), newest=False)
        elif policy is Overflow.SHED_LOWEST:
            lowest = self._least_urgent_level()
            if priority >= lowest:  # never make room for an equally or less urgent event
                self._counts.dropped_full[priority] += 1
                return False
            self._evict(lowest, newest=True)
        else:  # drop-new
            self._counts.dropped_full[priority] += 1
            return False
        self._insert(event, priority)
        return True

    async def _wait_for_space(self, event: E, priority: int) -> bool:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[bool] = loop.create_future()
        self._putters[priority][waiter] = event
        self._waiting_putters += 1
        timer = None
        if self.overflow is Overflow.TIMEOUT:
            assert self.put_timeout is not None
            timer = loop.call_later(self.put_timeout, self._time_out_putter, waiter, priority)
        started_ns = self._clock()
        try:
            reserved = await waiter
        except BaseException:
            # Whoever resolved the waiter did its accounting, except for what the
            # cancellation itself leaves to us. No slot and no event is ever lost.
            if self._putters[priority].pop(waiter, None) is not None:
                self._waiting_putters -= 1
            if waiter.cancelled():
                self._counts.rejected_cancelled[priority] += 1
            elif waiter.exception() is not None:
                pass  # BrokerClosed: counted by close()
            elif waiter.result():  # a slot was reserved for us: pass it on
                self._reserved -= 1
                self._hand_slot_to_putter()
                self._counts.rejected_cancelled[priority] += 1
            else:  # timed out, then cancelled before we could return False
                self._counts.dropped_timeout[priority] += 1
            raise
        finally:
            self._counts.blocked_ns[priority] += self._clock() - started_ns
            if timer is not None:
                timer.cancel()
        if not reserved:
            self._counts.dropped_timeout[priority] += 1
            return False
        self._reserved -= 1
        if self._closed:
            self._hand_slot_to_putter()
            self._counts.rejected_closed[priority] += 1
            raise BrokerClosed("broker was closed while waiting for space")
        self._insert(event, priority)
        return True

    def _time_out_putter(self, waiter: asyncio.Future[bool], priority: int) -> None:
        if self._putters[priority].pop(waiter, None) is not None:
            self._waiting_putters -= 1
            if not waiter.done():
                waiter.set_result(False)

    def _hand_slot_to_putter(self) -> None:
        """A slot became free: reserve it for the most urgent, longest-waiting putter."""
        if not self._waiting_putters or self._closed:
            return
        for waiters in self._putters:
            while waiters:
                waiter, _ = waiters.popitem(last=False)
                self._waiting_putters -= 1
                if not waiter.done():  # a cancelled waiter accounts for itself
                    self._reserved += 1
                    waiter.set_result(True)
                    return

    def _oldest_level(self) -> int:
        heads = [(entries[0][1], level) for level, entries in enumerate(self._buffer) if entries]
        return min(heads)[1]

    def _least_urgent_level(self) -> int:
        for level in range(self.levels - 1, -1, -1):
            if self._buffer[level]:
                return level
        raise AssertionError("called on an empty buffer")

    def _evict(self, level: int, *, newest: bool) -> None:
        entries = self._buffer[level]
        entries.pop() if newest else entries.popleft()
        self._size -= 1
        self._unfinished -= 1
        self._counts.evicted[level] += 1

    # ------------------------------------------------------------------ delivery

    def get_nowait(self) -> E:
        """Take the next event without waiting.

        Raises:
            asyncio.QueueEmpty: nothing is buffered (and the broker is open).
            BrokerClosed: the broker is closed and empty: the consumer should stop.
        """
        event = self._take()
        if event is None:
            if self._closed:
                raise BrokerClosed("broker is closed and drained")
            raise asyncio.QueueEmpty
        return event

    async def get(self) -> E:
        """Take the next event, waiting while the buffer is empty.

        Raises:
            BrokerClosed: the broker is closed and empty: the consumer should stop.
        """
        while True:
            event = self._take() if self._size else None
            if event is not None:
                return event
            if self._closed:
                raise BrokerClosed("broker is closed and drained")
            getter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                try:
                    self._getters.remove(getter)
                except ValueError:
                    # We were woken but cancelled before running: pass the wake-up on.
                    if self._size:
                        self._wake_getter()
                raise

    def _take(self) -> E | None:
        """Pop the next deliverable event, counting expired ones on the way."""
        while self._size:
            if self._discipline is None:
                for entries in self._buffer:
                    if entries:
                        break
            else:
                entries = self._buffer[self._discipline.choose(self._buffer, self._clock())]
            admitted_ns, _, event = entries.popleft()
            self._size -= 1
            if self._waiting_putters:
                self._hand_slot_to_putter()
            priority = event.priority
            deadline_ns = event.deadline_ns
            if deadline_ns is not None or self._on_take is not None:
                now_ns = self._clock()
                if deadline_ns is not None and now_ns > deadline_ns:
                    self._counts.expired[priority] += 1
                    self._finish_one()
                    continue
                if self._on_take is not None:
                    self._on_take(priority, now_ns - admitted_ns)
            self._counts.delivered[priority] += 1
            return event
        return None

    def _wake_getter(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

    # ------------------------------------------------------------------ completion

    def task_done(self, event: E) -> None:
        """Mark a delivered event as successfully handled.

        Raises:
            ValueError: no delivered event of this priority is unfinished (nothing changes).
            ConfigError: the priority is out of range or not an int (nothing changes).
        """
        # _finish_delivered() inlined: this is every event's path.
        priority = event.priority
        done = self._done
        try:  # free unless it raises: a float fails the index, priority >= levels too
            if priority < 0 or done[priority] >= self._counts.delivered[priority]:
                raise self._finish_error(priority, "task_done")
        except (TypeError, IndexError):
            raise self._finish_error(priority, "task_done") from None
        done[priority] += 1
        self._counts.processed[priority] += 1
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            self._finished.set()

    def dead_letter(self, event: E) -> None:
        """Mark a delivered event as failed for good (after its retries).

        Raises as ``task_done`` does.
        """
        priority = event.priority
        self._finish_delivered(priority, self._counts.dead_lettered, "dead_letter")

    def abandon(self, event: E) -> None:
        """Mark a delivered event as left unfinished by a shutdown deadline.

        Raises as ``task_done`` does.
        """
        priority = event.priority
        self._finish_delivered(priority, self._counts.abandoned, "abandon")

    def _finish_delivered(self, priority: int, outcome: list[int], what: str) -> None:
        """Finish one event of ``priority`` held by a consumer, counting it in ``outcome``.
        Everything is checked before anything changes (as in ``task_done``)."""
        done = self._done
        try:
            if priority < 0 or done[priority] >= self._counts.delivered[priority]:
                raise self._finish_error(priority, what)
        except (TypeError, IndexError):
            raise self._finish_error(priority, what) from None
        done[priority] += 1
        outcome[priority] += 1
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            self._finished.set()

    def _finish_error(self, priority: int, what: str) -> Exception:
        """The error for finishing an event of ``priority`` that no consumer holds."""
        if not 0 <= priority < self.levels:  # the same checks, in the same order, as put()
            return ConfigError(f"priority must be in [0, {self.levels}), got {priority}")
        try:
            operator.index(priority)
        except TypeError:
            return ConfigError(f"priority must be an int, got {priority!r}")
        return ValueError(
            f"{what}() called more times than events of priority {priority} were delivered"
            f" ({self._counts.delivered[priority]} delivered, {self._done[priority]} already finished)"
        )

    def abandon_buffered(self) -> int:
        """Count every buffered event as abandoned and empty the buffer (a drain
        deadline ran out). Returns how many were abandoned.

        A shutdown operation: call ``close()`` first. On an open broker the freed
        places would have to go to blocked producers, which is not what a drain
        deadline wants, so it refuses instead.

        Raises:
            RuntimeError: the broker is still open.
        """
        if not self._closed:
            raise RuntimeError("abandon_buffered() needs a closed broker: call close() first")
        abandoned = 0
        for level, entries in enumerate(self._buffer):
            self._counts.abandoned[level] += len(entries)
            abandoned += len(entries)
            self._unfinished -= len(entries)
            entries.clear()
        self._size = 0
        if self._unfinished == 0 and self._finished is not None:
            self._finished.set()
        return abandoned

    def _finish_one(self) -> None:
        self._unfinished -= 1
        if self._unfinished == 0 and self._finished is not None:
            self._finished.set()

    async def join(self) -> None:
        """Wait until every admitted event has been finished."""
        if self._unfinished == 0:
            return
        if self._finished is None or self._finished.is_set():
            self._finished = asyncio.Event()
        await self._finished.wait()

    # ------------------------------------------------------------------ shutdown

    def close(self) -> None:
        """Stop intake: new puts and blocked producers get ``BrokerClosed``; buffered
        events stay and are still delivered; idle consumers get ``BrokerClosed`` once
        the buffer is empty."""
        if self._closed:
            return
        self._closed = True
        for waiters in self._putters:
            while waiters:
                waiter, event = waiters.popitem(last=False)
                if waiter.done():  # cancelled: it accounts for itself
                    continue
                self._counts.rejected_closed[event.priority] += 1
                waiter.set_exception(BrokerClosed("broker was closed while waiting for space"))
        self._waiting_putters = 0
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    @property
    def closed(self) -> bool:
        return self._closed

    async def __aenter__(self) -> Broker[E]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ inspection

    def qsize(self) -> int:
        return self._size

    def qsize_by_priority(self) -> list[int]:
        return [len(entries) for entries in self._buffer]

    def statistics(self) -> BrokerStatistics:
        counts = {name: tuple(getattr(self._counts, name)) for name in _COUNTERS}
        return BrokerStatistics(
            maxsize=self.maxsize or 0,
            size=self._size,
            peak_size=self._peak_size,
            unfinished=self._unfinished,
            waiting_putters=self._waiting_putters,
            waiting_getters=sum(1 for g in self._getters if not g.done()),
            closed=self._closed,
            size_by_priority=tuple(self.qsize_by_priority()),
            **counts,
        )
