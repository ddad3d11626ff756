"""Tests for ``streamsim.broker``: order, overflow policies, close/drain/join, deadlines,
cancellation safety, dequeue disciplines and the per-priority accounting invariant.

Async tests run on every loop of the matrix in ``conftest.py``. Time never comes from
sleeping: a ``FakeClock`` the test sets by hand feeds the broker's clock, ``asyncio.sleep(0)``
lets ready tasks run, and the few tests that need loop timers to fire (``put_timeout``,
``asyncio.wait_for`` with a real delay) run on ``VirtualEventLoop``, where they cost no
wall time and give exact nanosecond values.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import sys
import tracemalloc
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsim.broker import Broker, BrokerStatistics
from streamsim.clock import VirtualEventLoop, clock_for
from streamsim.errors import BrokerClosed, BrokerFull, ConfigError
from streamsim.events import Event
from streamsim.policies import Aging, Overflow, WeightedRoundRobin, make_discipline

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine

T = TypeVar("T")

LEVELS = 3  # the broker's default: priorities 0 (most urgent), 1, 2
CANCEL_WAYS = ("cancel", "timeout", "wait_for")


# ---------------------------------------------------------------------- helpers


@dataclasses.dataclass(frozen=True, slots=True, eq=False)
class Job:
    """The smallest event a broker accepts; ``name`` makes order checks readable."""

    name: str
    priority: int
    deadline_ns: int | None = None


class FakeClock:
    """A nanosecond clock that moves only when the test sets ``now_ns``."""

    __slots__ = ("now_ns",)

    def __init__(self) -> None:
        self.now_ns = 0

    def __call__(self) -> int:
        return self.now_ns


async def run_ready(passes: int = 3) -> None:
    """Let every task that is ready run until it blocks again (no time passes)."""
    for _ in range(passes):
        await asyncio.sleep(0)


def take(broker: Broker[Job]) -> str:
    """Take the next event without waiting, finish it, and return its name."""
    job = broker.get_nowait()
    broker.task_done(job)
    return job.name


def take_all(broker: Broker[Job]) -> list[str]:
    """Take and finish every deliverable event without waiting; names in delivery order."""
    names: list[str] = []
    while True:
        try:
            names.append(take(broker))
        except (asyncio.QueueEmpty, BrokerClosed):
            return names


def assert_settled(broker: Broker[Any]) -> BrokerStatistics:
    """Check that nothing is in flight and every offered event has exactly one outcome.

    Also checks the internal waiter structures directly: a leaked waiter that the
    counters forgot would otherwise go unseen.
    """
    stats = broker.statistics()
    assert stats.unaccounted() == (0,) * broker.levels
    assert stats.size == 0
    assert stats.unfinished == 0
    assert stats.waiting_putters == 0
    assert stats.waiting_getters == 0
    assert not any(broker._putters)
    assert not broker._getters
    assert broker._reserved == 0
    return stats


def run_virtual(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``scenario`` on a virtual-time loop: timers fire at once, time is exact."""
    with asyncio.Runner(loop_factory=VirtualEventLoop) as runner:
        return runner.run(scenario())


class Canceller(Generic[T]):
    """Cancels a task blocked in the broker in one of three ways: ``cancel``
    (``Task.cancel``), ``timeout`` (its ``asyncio.timeout`` scope expires) or
    ``wait_for`` (``asyncio.wait_for`` times out on it)."""

    def __init__(self, how: str) -> None:
        self.how = how
        self._scope: asyncio.Timeout | None = None

    def spawn(self, call: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """Start ``call()`` in a task (inside a timeout scope for ``timeout``)."""
        if self.how != "timeout":
            return asyncio.create_task(call())

        async def scoped() -> T:
            async with asyncio.timeout(None) as scope:
                self._scope = scope
                return await call()

        return asyncio.create_task(scoped())

    def arm(self) -> None:
        """For ``timeout``: make the scope expire on the loop's next pass. Anything the
        test does before yielding happens before the cancellation arrives."""
        if self.how == "timeout":
            assert self._scope is not None
            self._scope.reschedule(asyncio.get_running_loop().time())

    async def cancel(self, task: asyncio.Task[T]) -> None:
        """Cancel ``task`` now (``arm`` first for ``timeout``) and check how it ended."""
        if self.how == "cancel":
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        elif self.how == "timeout":
            assert self._scope is not None
            with pytest.raises(TimeoutError):
                await task
            assert self._scope.expired()
        else:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(task, timeout=0)
        assert task.done()


# ---------------------------------------------------------------------- order


@pytest.mark.asyncio
async def test_strict_priority_then_fifo_within_a_priority() -> None:
    broker: Broker[Event] = Broker(None)
    arrivals = [(1, 2), (2, 1), (3, 0), (4, 2), (5, 1), (6, 0)]  # (id, priority)
    for event_id, priority in arrivals:
        assert await broker.put(Event(id=event_id, priority=priority, created_ns=0))
    delivered: list[int] = []
    for _ in arrivals:
        event = await broker.get()
        delivered.append(event.id)
        broker.task_done(event)
    assert delivered == [3, 6, 2, 5, 1, 4]
    stats = assert_settled(broker)
    assert stats.maxsize == 0  # unbounded
    assert stats.peak_size == 6
    assert stats.offered == stats.accepted == stats.delivered == stats.processed == (2, 2, 2)


@pytest.mark.asyncio
async def test_more_urgent_event_overtakes_ones_already_waiting() -> None:
    broker = Broker[Job](4)
    broker.put_nowait(Job("low", 2))
    broker.put_nowait(Job("mid", 1))
    assert take(broker) == "mid"
    broker.put_nowait(Job("urgent", 0))
    broker.put_nowait(Job("mid-2", 1))
    assert take_all(broker) == ["urgent", "mid-2", "low"]
    assert assert_settled(broker).size_by_priority == (0, 0, 0)


@pytest.mark.asyncio
async def test_consumer_waiting_on_empty_broker_gets_the_next_event() -> None:
    broker = Broker[Job](2)
    consumer = asyncio.create_task(broker.get())
    await run_ready()
    assert not consumer.done()
    assert broker.statistics().waiting_getters == 1
    job = Job("a", 1)
    assert broker.put_nowait(job)
    assert await consumer is job
    broker.task_done(job)
    assert assert_settled(broker).delivered == (0, 1, 0)


@pytest.mark.asyncio
async def test_unbounded_broker_never_blocks() -> None:
    broker = Broker[Job](None, overflow="block")
    for i in range(1_000):
        assert await broker.put(Job(f"j{i}", i % LEVELS))
    assert broker.qsize() == 1_000
    assert broker.qsize_by_priority() == [334, 333, 333]
    assert len(take_all(broker)) == 1_000
    assert assert_settled(broker).peak_size == 1_000


# ---------------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    ("maxsize", "shown"),
    [
        (0, "0"),
        (-1, "-1"),
        (1.5, "1.5"),
        (math.inf, "inf"),
        (math.nan, "nan"),
        ("10", "'10'"),
        (True, "True"),
    ],
)
def test_maxsize_not_an_int_of_at_least_one_raises_config_error(maxsize: Any, shown: str) -> None:
    message = f"maxsize must be an int >= 1, got {shown} (None for unbounded)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        Broker[Job](maxsize)


@pytest.mark.parametrize(
    ("levels", "shown"), [(0, "0"), (-2, "-2"), (1.5, "1.5"), ("3", "'3'"), (True, "True")]
)
def test_levels_not_an_int_of_at_least_one_raises_config_error(levels: Any, shown: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"levels must be an int >= 1, got {shown}")):
        Broker[Job](1, levels=levels)


def test_unknown_overflow_raises_config_error() -> None:
    with pytest.raises(ConfigError, match=r"overflow must be one of block, .* got 'spill'"):
        Broker[Job](1, overflow="spill")


def test_timeout_policy_needs_a_put_timeout() -> None:
    message = "put_timeout must be a finite number > 0 for overflow 'timeout', got None"
    with pytest.raises(ConfigError, match=re.escape(message)):
        Broker[Job](1, overflow="timeout")


@pytest.mark.parametrize("overflow", ["timeout", "block"])
@pytest.mark.parametrize(
    ("put_timeout", "shown"),
    [(0.0, "0.0"), (-1.0, "-1.0"), (math.nan, "nan"), (math.inf, "inf"), (True, "True"), ("1", "'1'")],
)
def test_put_timeout_not_a_finite_positive_number_raises_config_error(
    overflow: str, put_timeout: Any, shown: str
) -> None:
    message = f"put_timeout must be a finite number > 0, got {shown}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        Broker[Job](1, overflow=overflow, put_timeout=put_timeout)


@pytest.mark.asyncio
@pytest.mark.parametrize("priority", [-1, LEVELS])
async def test_priority_out_of_range_raises_config_error(priority: int) -> None:
    broker = Broker[Job](1)
    message = re.escape(f"priority must be in [0, {LEVELS}), got {priority}")
    with pytest.raises(ConfigError, match=message):
        broker.put_nowait(Job("bad", priority))
    with pytest.raises(ConfigError, match=message):
        await broker.put(Job("bad", priority))
    stats = assert_settled(broker)
    assert stats.offered == (0, 0, 0)  # not an offer: nothing to account for


@pytest.mark.asyncio
async def test_float_priority_raises_config_error_and_counts_nothing() -> None:
    broker = Broker[Any](1)
    event = Job("bad", 0)
    object.__setattr__(event, "priority", 1.0)  # in range, but not an int
    message = re.escape("priority must be an int, got 1.0")
    with pytest.raises(ConfigError, match=message):
        broker.put_nowait(event)
    with pytest.raises(ConfigError, match=message):
        await broker.put(event)
    assert assert_settled(broker).offered == (0, 0, 0)


# ---------------------------------------------------------------------- overflow: block


@pytest.mark.asyncio
async def test_block_policy_waits_for_space_and_counts_blocked_time() -> None:
    clock = FakeClock()
    broker = Broker[Job](1, overflow="block", clock=clock)
    assert await broker.put(Job("a", 1))
    producer = asyncio.create_task(broker.put(Job("b", 2)))
    await run_ready()
    assert not producer.done()
    stats = broker.statistics()
    assert (stats.size, stats.waiting_putters, stats.offered, stats.accepted) == (1, 1, (0, 1, 1), (0, 1, 0))
    clock.now_ns = 250
    assert take(broker) == "a"
    assert await producer is True
    assert take_all(broker) == ["b"]
    stats = assert_settled(broker)
    assert stats.accepted == stats.processed == (0, 1, 1)
    assert stats.blocked_ns == (0, 0, 250)
    assert stats.peak_size == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("overflow", ["block", "timeout"])
async def test_put_nowait_raises_broker_full_when_put_would_wait(overflow: str) -> None:
    broker = Broker[Job](2, overflow=overflow, put_timeout=60.0)
    assert broker.put_nowait(Job("a", 0))
    assert broker.put_nowait(Job("b", 1))
    with pytest.raises(BrokerFull, match=r"broker is full \(2 events\)"):
        broker.put_nowait(Job("c", 0))
    with pytest.raises(BrokerFull):
        broker.put_nowait(Job("d", 2))
    assert take_all(broker) == ["a", "b"]
    stats = assert_settled(broker)
    assert stats.offered == (2, 1, 1)
    assert stats.accepted == (1, 1, 0)
    assert stats.rejected_full == (1, 0, 1)
    assert stats.blocked_ns == (0, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("maxsize", "expected"),
    [
        (1, ["fill-1", "high-1", "high-2", "mid-1", "mid-2", "low-1", "low-2"]),
        # With two places a newly admitted urgent event overtakes the buffered fill-2.
        (2, ["fill-1", "high-1", "high-2", "mid-1", "mid-2", "fill-2", "low-1", "low-2"]),
    ],
)
async def test_blocked_producers_are_admitted_most_urgent_first_then_fifo(
    maxsize: int, expected: list[str]
) -> None:
    broker = Broker[Job](maxsize, overflow="block")
    for i in range(1, maxsize + 1):
        broker.put_nowait(Job(f"fill-{i}", 2))
    arrivals = ["low-1", "mid-1", "high-1", "mid-2", "high-2", "low-2"]
    priority = {"high": 0, "mid": 1, "low": 2}
    producers: list[asyncio.Task[bool]] = []
    for name in arrivals:
        producers.append(asyncio.create_task(broker.put(Job(name, priority[name.split("-")[0]]))))
        await run_ready()  # it blocks before the next one arrives: arrival order is known
    assert broker.statistics().waiting_putters == 6
    delivered: list[str] = []
    for _ in expected:
        delivered.append(take(broker))
        await run_ready()  # the freed place goes to one waiter, which inserts
    assert delivered == expected
    assert [await p for p in producers] == [True] * 6
    stats = assert_settled(broker)
    assert stats.accepted == (2, 2, 2 + maxsize)
    assert stats.peak_size == maxsize


# ---------------------------------------------------------------------- overflow: timeout


def test_timeout_policy_drops_the_new_event_after_put_timeout() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker[Job](1, overflow="timeout", put_timeout=0.5, clock=clock_for(loop))
        assert await broker.put(Job("a", 0))
        assert await broker.put(Job("b", 1)) is False
        assert loop.time() == 0.5
        assert take_all(broker) == ["a"]
        stats = assert_settled(broker)
        assert stats.offered == (1, 1, 0)
        assert stats.accepted == (1, 0, 0)
        assert stats.dropped_timeout == (0, 1, 0)
        assert stats.dropped_full == stats.rejected_cancelled == (0, 0, 0)
        assert stats.blocked_ns == (0, 500_000_000, 0)

    run_virtual(scenario)


def test_timeout_policy_admits_when_a_place_frees_in_time() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker[Job](2, overflow="timeout", put_timeout=0.5, clock=clock_for(loop))
        assert broker.put_nowait(Job("a", 2))
        assert broker.put_nowait(Job("b", 2))

        async def consume_later() -> str:
            await asyncio.sleep(0.2)
            return take(broker)

        consumer = asyncio.create_task(consume_later())
        assert await broker.put(Job("c", 0)) is True  # admitted at 0.2 s, before its 0.5 s ran out
        assert loop.time() == 0.2
        assert await consumer == "a"
        assert await broker.put(Job("d", 1)) is False  # nobody consumes: dropped at 0.7 s
        assert take_all(broker) == ["c", "b"]
        stats = assert_settled(broker)
        assert stats.accepted == (1, 0, 2)
        assert stats.dropped_timeout == (0, 1, 0)
        assert stats.blocked_ns == (200_000_000, 500_000_000, 0)

    run_virtual(scenario)


def test_put_cancelled_after_timing_out_counts_one_timeout() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker[Job](1, overflow="timeout", put_timeout=0.5, clock=clock_for(loop))
        broker.put_nowait(Job("a", 0))
        producer = asyncio.create_task(broker.put(Job("b", 1)))
        await run_ready()
        # Due at the same instant as the put's own timer and scheduled after it: the put
        # times out, then is cancelled before it can return False.
        loop.call_later(0.5, producer.cancel)
        with pytest.raises(asyncio.CancelledError):
            await producer
        assert take_all(broker) == ["a"]
        stats = assert_settled(broker)
        assert stats.dropped_timeout == (0, 1, 0)
        assert stats.rejected_cancelled == (0, 0, 0)

    run_virtual(scenario)


# ---------------------------------------------------------------------- overflow: non-waiting


@pytest.mark.asyncio
@pytest.mark.parametrize("maxsize", [1, 2])
async def test_drop_new_policy_drops_the_new_event_even_if_urgent(maxsize: int) -> None:
    broker = Broker[Job](maxsize, overflow="drop-new")
    fills = [f"fill-{i}" for i in range(maxsize)]
    for name in fills:
        assert await broker.put(Job(name, 2))
    assert await broker.put(Job("urgent", 0)) is False
    assert broker.put_nowait(Job("low", 2)) is False
    assert take_all(broker) == fills
    stats = assert_settled(broker)
    assert stats.offered == (1, 0, maxsize + 1)
    assert stats.accepted == (0, 0, maxsize)
    assert stats.dropped_full == (1, 0, 1)
    assert stats.evicted == stats.rejected_full == (0, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("maxsize", [1, 2])
async def test_reject_policy_raises_broker_full_at_once(maxsize: int) -> None:
    broker = Broker[Job](maxsize, overflow="reject")
    fills = [f"fill-{i}" for i in range(maxsize)]
    for name in fills:
        assert await broker.put(Job(name, 1))
    with pytest.raises(BrokerFull, match=rf"broker is full \({maxsize} events\)"):
        await broker.put(Job("urgent", 0))
    with pytest.raises(BrokerFull):
        broker.put_nowait(Job("low", 2))
    assert broker.statistics().waiting_putters == 0
    assert take_all(broker) == fills
    stats = assert_settled(broker)
    assert stats.offered == (1, maxsize, 1)
    assert stats.rejected_full == (1, 0, 1)
    assert stats.dropped == stats.evicted == (0, 0, 0)


@pytest.mark.asyncio
async def test_drop_oldest_with_one_place_evicts_the_waiting_event_even_if_urgent() -> None:
    broker = Broker[Job](1, overflow="drop-oldest")
    assert await broker.put(Job("urgent", 0))
    assert await broker.put(Job("low", 2)) is True
    assert take_all(broker) == ["low"]
    stats = assert_settled(broker)
    assert stats.accepted == (1, 0, 1)
    assert stats.evicted == (1, 0, 0)
    assert stats.processed == (0, 0, 1)


@pytest.mark.asyncio
async def test_drop_oldest_evicts_the_longest_waiting_event_across_levels() -> None:
    broker = Broker[Job](2, overflow="drop-oldest")
    assert broker.put_nowait(Job("a", 1))
    assert broker.put_nowait(Job("b", 1))
    assert await broker.put(Job("c", 0))  # evicts a, the older of the two
    assert take_all(broker) == ["c", "b"]
    assert broker.put_nowait(Job("d", 0))
    assert broker.put_nowait(Job("e", 2))
    assert broker.put_nowait(Job("f", 1))  # evicts d: the oldest, though the most urgent
    assert broker.statistics().size_by_priority == (0, 1, 1)
    assert await broker.put(Job("g", 2))  # evicts e
    assert take_all(broker) == ["f", "g"]
    stats = assert_settled(broker)
    assert stats.offered == stats.accepted == (2, 3, 2)
    assert stats.evicted == (1, 1, 1)
    assert stats.processed == (1, 2, 1)
    assert stats.dropped == (0, 0, 0)


@pytest.mark.asyncio
async def test_shed_lowest_never_drops_an_urgent_event_for_a_less_urgent_one() -> None:
    broker = Broker[Job](1, overflow="shed-lowest")
    assert await broker.put(Job("urgent", 0))
    assert await broker.put(Job("low", 2)) is False
    assert broker.put_nowait(Job("urgent-2", 0)) is False  # equally urgent: no room made either
    assert take_all(broker) == ["urgent"]
    stats = assert_settled(broker)
    assert stats.dropped_full == (1, 0, 1)
    assert stats.evicted == (0, 0, 0)
    assert stats.processed == (1, 0, 0)


@pytest.mark.asyncio
async def test_shed_lowest_with_one_place_evicts_a_less_urgent_event() -> None:
    broker = Broker[Job](1, overflow="shed-lowest")
    assert await broker.put(Job("low", 2))
    assert await broker.put(Job("urgent", 0)) is True
    assert take_all(broker) == ["urgent"]
    stats = assert_settled(broker)
    assert stats.evicted == (0, 0, 1)
    assert stats.processed == (1, 0, 0)


@pytest.mark.asyncio
async def test_shed_lowest_evicts_the_newest_event_of_the_least_urgent_level() -> None:
    broker = Broker[Job](2, overflow="shed-lowest")
    assert broker.put_nowait(Job("a", 2))
    assert broker.put_nowait(Job("b", 2))
    assert await broker.put(Job("c", 1))  # evicts b: the newest of level 2; a keeps its place
    assert take_all(broker) == ["c", "a"]
    assert broker.put_nowait(Job("d", 1))
    assert broker.put_nowait(Job("e", 1))
    assert broker.put_nowait(Job("f", 2)) is False  # less urgent than everything buffered
    assert await broker.put(Job("g", 1)) is False  # as urgent as the least urgent level
    assert broker.put_nowait(Job("h", 0))  # evicts e, the newest of level 1
    assert take_all(broker) == ["h", "d"]
    stats = assert_settled(broker)
    assert stats.offered == (1, 4, 3)
    assert stats.accepted == (1, 3, 2)
    assert stats.evicted == (0, 1, 1)
    assert stats.dropped_full == (0, 1, 1)
    assert stats.processed == (1, 2, 1)


# ---------------------------------------------------------------------- close and drain


@pytest.mark.asyncio
@pytest.mark.parametrize("overflow", ["block", "timeout"])
async def test_close_fails_blocked_producers_and_keeps_buffered_events(overflow: str) -> None:
    broker = Broker[Job](1, overflow=overflow, put_timeout=60.0)
    broker.put_nowait(Job("a", 2))
    producers = [asyncio.create_task(broker.put(Job(name, p))) for name, p in [("b", 0), ("c", 1)]]
    await run_ready()
    assert broker.statistics().waiting_putters == 2
    broker.close()
    assert broker.statistics().waiting_putters == 0
    for producer in producers:
        with pytest.raises(BrokerClosed, match="broker was closed while waiting for space"):
            await producer
    with pytest.raises(BrokerClosed, match="broker is closed"):
        await broker.put(Job("late", 0))
    with pytest.raises(BrokerClosed):
        broker.put_nowait(Job("late-2", 2))
    assert take_all(broker) == ["a"]  # buffered events are still delivered
    with pytest.raises(BrokerClosed, match="broker is closed and drained"):
        await broker.get()
    with pytest.raises(BrokerClosed):
        broker.get_nowait()
    stats = assert_settled(broker)
    assert stats.closed
    assert stats.offered == (2, 1, 2)
    assert stats.rejected_closed == (2, 1, 1)
    assert stats.processed == (0, 0, 1)


@pytest.mark.asyncio
async def test_close_wakes_idle_consumers_with_broker_closed() -> None:
    broker = Broker[Job](1)
    consumers = [asyncio.create_task(broker.get()) for _ in range(2)]
    await run_ready()
    assert broker.statistics().waiting_getters == 2
    broker.close()
    for consumer in consumers:
        with pytest.raises(BrokerClosed, match="broker is closed and drained"):
            await consumer
    assert_settled(broker)


@pytest.mark.asyncio
async def test_consumers_drain_the_buffer_after_close() -> None:
    broker = Broker[Job](4)
    for name, priority in [("a", 2), ("b", 0), ("c", 1), ("d", 0)]:
        broker.put_nowait(Job(name, priority))
    broker.close()
    broker.close()  # idempotent
    drained: list[str] = []

    async def consume() -> None:
        while True:
            try:
                job = await broker.get()
            except BrokerClosed:
                return
            drained.append(job.name)
            broker.task_done(job)
            await asyncio.sleep(0)

    await asyncio.gather(consume(), consume())
    assert drained == ["b", "d", "c", "a"]
    stats = assert_settled(broker)
    assert stats.processed == (2, 1, 1)
    assert stats.rejected_closed == (0, 0, 0)


@pytest.mark.asyncio
async def test_close_after_a_place_was_reserved_fails_that_producer() -> None:
    broker = Broker[Job](1, overflow="block")
    broker.put_nowait(Job("a", 0))
    producer = asyncio.create_task(broker.put(Job("b", 1)))
    await run_ready()
    assert take(broker) == "a"  # the freed place is reserved for the producer...
    assert broker._reserved == 1
    broker.close()  # ...which is closed out before it could insert
    with pytest.raises(BrokerClosed):
        await producer
    stats = assert_settled(broker)
    assert stats.rejected_closed == (0, 1, 0)
    assert stats.accepted == (1, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", CANCEL_WAYS)
async def test_put_cancelled_after_close_failed_it_counts_one_closed_rejection(how: str) -> None:
    broker = Broker[Job](1, overflow="block")
    broker.put_nowait(Job("a", 0))
    canceller = Canceller[bool](how)
    producer = canceller.spawn(lambda: broker.put(Job("b", 1)))
    await run_ready()
    canceller.arm()  # the cancellation arrives after close() below failed the put
    broker.close()
    await canceller.cancel(producer)
    assert take_all(broker) == ["a"]
    stats = assert_settled(broker)
    assert stats.rejected_closed == (0, 1, 0)
    assert stats.rejected_cancelled == (0, 0, 0)


@pytest.mark.asyncio
async def test_async_with_closes_the_broker() -> None:
    async with Broker[Job](1) as broker:
        broker.put_nowait(Job("a", 1))
        assert not broker.closed
    assert broker.closed
    assert take_all(broker) == ["a"]
    assert assert_settled(broker).closed


# ---------------------------------------------------------------------- join and completion


@pytest.mark.asyncio
async def test_join_returns_only_when_every_delivered_event_is_finished() -> None:
    broker = Broker[Job](4)
    for name, priority in [("a", 0), ("b", 1), ("c", 2)]:
        broker.put_nowait(Job(name, priority))
    joiner = asyncio.create_task(broker.join())
    a, b, c = broker.get_nowait(), broker.get_nowait(), broker.get_nowait()
    await run_ready()
    assert not joiner.done()  # all delivered, none finished
    broker.task_done(a)
    await run_ready()
    assert not joiner.done()
    broker.dead_letter(b)
    await run_ready()
    assert not joiner.done()
    assert broker.statistics().unfinished == 1
    broker.abandon(c)
    await joiner
    stats = assert_settled(broker)
    assert stats.processed == (1, 0, 0)
    assert stats.dead_lettered == (0, 1, 0)
    assert stats.abandoned == (0, 0, 1)
    await broker.join()  # nothing unfinished: returns at once


@pytest.mark.asyncio
async def test_abandon_buffered_counts_what_is_left_and_join_waits_for_held_events() -> None:
    broker = Broker[Job](4)
    for name, priority in [("a", 0), ("b", 1), ("c", 2), ("d", 2)]:
        broker.put_nowait(Job(name, priority))
    held = broker.get_nowait()
    joiner = asyncio.create_task(broker.join())
    await run_ready()
    broker.close()
    assert broker.abandon_buffered() == 3
    assert broker.qsize() == 0
    await run_ready()
    assert not joiner.done()  # a consumer still holds "a"
    broker.task_done(held)
    await joiner
    stats = assert_settled(broker)
    assert stats.abandoned == (0, 1, 2)
    assert stats.processed == (1, 0, 0)


@pytest.mark.asyncio
async def test_abandon_buffered_releases_join_when_nothing_is_held() -> None:
    broker = Broker[Job](2)
    broker.put_nowait(Job("a", 0))
    broker.put_nowait(Job("b", 0))
    joiner = asyncio.create_task(broker.join())
    await run_ready()
    assert not joiner.done()
    broker.close()
    assert broker.abandon_buffered() == 2
    await joiner
    assert assert_settled(broker).abandoned == (2, 0, 0)


@pytest.mark.asyncio
async def test_abandon_buffered_on_an_open_broker_raises_and_changes_nothing() -> None:
    broker = Broker[Job](1, overflow="block")
    broker.put_nowait(Job("a", 0))
    producer = asyncio.create_task(broker.put(Job("b", 1)))
    await run_ready()
    with pytest.raises(RuntimeError, match=re.escape("call close() first")):
        broker.abandon_buffered()
    stats = broker.statistics()
    assert stats.size_by_priority == (1, 0, 0)
    assert stats.waiting_putters == 1
    assert stats.abandoned == (0, 0, 0)
    broker.close()  # the blocked producer is released, counted rejected
    with pytest.raises(BrokerClosed):
        await producer
    assert broker.abandon_buffered() == 1
    stats = assert_settled(broker)
    assert stats.abandoned == (1, 0, 0)
    assert stats.rejected_closed == (0, 1, 0)


@pytest.mark.asyncio
async def test_finishing_more_events_than_were_delivered_raises_and_counts_nothing() -> None:
    broker = Broker[Job](1)
    broker.put_nowait(Job("a", 1))
    job = broker.get_nowait()
    broker.task_done(job)
    for finish in (broker.task_done, broker.dead_letter, broker.abandon):
        message = f"{finish.__name__}() called more times than events of priority 1 were delivered"
        with pytest.raises(ValueError, match=re.escape(f"{message} (1 delivered, 1 already finished)")):
            finish(job)
    stats = assert_settled(broker)
    assert stats.processed == (0, 1, 0)
    assert stats.dead_lettered == stats.abandoned == (0, 0, 0)


@pytest.mark.asyncio
async def test_finishing_an_event_still_buffered_raises_and_join_keeps_waiting() -> None:
    broker = Broker[Job](2)
    broker.put_nowait(Job("a", 0))
    broker.put_nowait(Job("b", 0))
    job = broker.get_nowait()
    broker.task_done(job)
    message = (
        "task_done() called more times than events of priority 0 were delivered"
        " (1 delivered, 1 already finished)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        broker.task_done(job)
    joiner = asyncio.create_task(broker.join())
    await run_ready()
    assert not joiner.done()  # "b" is still buffered
    stats = broker.statistics()
    assert stats.processed == stats.delivered == (1, 0, 0)
    assert stats.unfinished == 1
    assert stats.unaccounted() == (1, 0, 0)
    assert take(broker) == "b"
    await joiner
    assert assert_settled(broker).processed == (2, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("finish", ["task_done", "dead_letter", "abandon"])
async def test_finishing_with_a_priority_no_consumer_holds_raises_and_changes_nothing(finish: str) -> None:
    broker = Broker[Job](1)
    broker.put_nowait(Job("a", 0))
    job = broker.get_nowait()
    message = (
        f"{finish}() called more times than events of priority 2 were delivered"
        " (0 delivered, 0 already finished)"
    )
    with pytest.raises(ValueError, match=re.escape(message)):
        getattr(broker, finish)(Job("a", 2))
    stats = broker.statistics()
    assert stats.unfinished == 1
    assert stats.unaccounted() == (1, 0, 0)
    broker.task_done(job)
    stats = assert_settled(broker)
    assert stats.processed == (1, 0, 0)
    assert stats.dead_lettered == stats.abandoned == (0, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("priority", "message"),
    [
        (-1, "priority must be in [0, 3), got -1"),
        (LEVELS, "priority must be in [0, 3), got 3"),
        (0.0, "priority must be an int, got 0.0"),
    ],
)
async def test_finishing_with_an_invalid_priority_raises_config_error_and_changes_nothing(
    priority: Any, message: str
) -> None:
    broker = Broker[Job](1)
    broker.put_nowait(Job("a", 0))
    job = broker.get_nowait()
    bad = Job("bad", 0)
    object.__setattr__(bad, "priority", priority)
    for finish in (broker.task_done, broker.dead_letter, broker.abandon):
        with pytest.raises(ConfigError, match=re.escape(message)):
            finish(bad)
    stats = broker.statistics()
    assert stats.unfinished == 1
    assert stats.processed == stats.dead_lettered == stats.abandoned == (0, 0, 0)
    broker.task_done(job)
    assert assert_settled(broker).processed == (1, 0, 0)


# ---------------------------------------------------------------------- deadlines


@pytest.mark.asyncio
async def test_event_past_its_deadline_at_dequeue_is_expired_not_delivered() -> None:
    clock = FakeClock()
    broker = Broker[Job](2, clock=clock)
    broker.put_nowait(Job("a", 1, deadline_ns=100))
    broker.put_nowait(Job("b", 1, deadline_ns=100))
    clock.now_ns = 100
    assert take(broker) == "a"  # at its deadline: still on time
    clock.now_ns = 101
    with pytest.raises(asyncio.QueueEmpty):
        broker.get_nowait()  # b is past it
    stats = assert_settled(broker)
    assert stats.delivered == stats.processed == (0, 1, 0)
    assert stats.expired == (0, 1, 0)


@pytest.mark.asyncio
async def test_event_expires_while_waiting_behind_more_urgent_ones() -> None:
    clock = FakeClock()
    broker = Broker[Job](4, clock=clock)
    broker.put_nowait(Job("u1", 0))
    broker.put_nowait(Job("u2", 0))
    broker.put_nowait(Job("l1", 2, deadline_ns=50))
    broker.put_nowait(Job("l2", 2))
    assert take(broker) == "u1"
    clock.now_ns = 51
    assert take_all(broker) == ["u2", "l2"]
    stats = assert_settled(broker)
    assert stats.expired == (0, 0, 1)
    assert stats.delivered == (2, 0, 1)


@pytest.mark.asyncio
async def test_waiting_consumer_skips_an_expired_event_and_keeps_waiting() -> None:
    clock = FakeClock()
    broker = Broker[Job](2, clock=clock)
    consumer = asyncio.create_task(broker.get())
    await run_ready()
    broker.put_nowait(Job("stale", 0, deadline_ns=10))
    clock.now_ns = 11  # expires before the woken consumer runs
    await run_ready()
    assert not consumer.done()
    assert broker.statistics().waiting_getters == 1
    fresh = Job("fresh", 1)
    broker.put_nowait(fresh)
    assert await consumer is fresh
    broker.task_done(fresh)
    stats = assert_settled(broker)
    assert stats.expired == (1, 0, 0)
    assert stats.processed == (0, 1, 0)


@pytest.mark.asyncio
async def test_on_take_reports_priority_and_queue_wait() -> None:
    clock = FakeClock()
    taken: list[tuple[int, int]] = []
    broker = Broker[Job](4, clock=clock, on_take=lambda p, wait_ns: taken.append((p, wait_ns)))
    clock.now_ns = 10
    broker.put_nowait(Job("a", 2))
    clock.now_ns = 15
    broker.put_nowait(Job("b", 0))
    broker.put_nowait(Job("gone", 1, deadline_ns=20))
    clock.now_ns = 40
    assert take_all(broker) == ["b", "a"]
    assert taken == [(0, 25), (2, 30)]  # the expired event is not reported as taken
    assert assert_settled(broker).expired == (0, 1, 0)


# ---------------------------------------------------------------------- cancellation


@pytest.mark.asyncio
@pytest.mark.parametrize("how", CANCEL_WAYS)
async def test_cancelled_blocked_put_is_counted_once_and_leaves_no_waiter(how: str) -> None:
    broker = Broker[Job](1, overflow="block")
    broker.put_nowait(Job("a", 1))
    canceller = Canceller[bool](how)
    producer = canceller.spawn(lambda: broker.put(Job("b", 1)))
    await run_ready()
    assert broker.statistics().waiting_putters == 1
    canceller.arm()
    await canceller.cancel(producer)
    assert broker.statistics().waiting_putters == 0
    assert take_all(broker) == ["a"]
    assert broker.put_nowait(Job("c", 1))  # the place was not lost either
    assert take_all(broker) == ["c"]
    stats = assert_settled(broker)
    assert stats.offered == (0, 3, 0)
    assert stats.rejected_cancelled == (0, 1, 0)
    assert stats.processed == (0, 2, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", CANCEL_WAYS)
async def test_place_of_a_woken_then_cancelled_producer_goes_to_the_next_waiter(how: str) -> None:
    broker = Broker[Job](1, overflow="block")
    broker.put_nowait(Job("a", 0))
    canceller = Canceller[bool](how)
    first = canceller.spawn(lambda: broker.put(Job("b", 1)))
    await run_ready()
    second = asyncio.create_task(broker.put(Job("c", 2)))
    await run_ready()
    assert broker.statistics().waiting_putters == 2
    canceller.arm()  # the cancellation arrives after the wake-up below
    assert take(broker) == "a"  # reserves the place for "b" and wakes it
    assert broker._reserved == 1
    await canceller.cancel(first)
    assert await second is True
    assert take_all(broker) == ["c"]
    stats = assert_settled(broker)
    assert stats.accepted == stats.processed == (1, 0, 1)
    assert stats.rejected_cancelled == (0, 1, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", CANCEL_WAYS)
async def test_cancelled_blocked_get_leaves_no_waiter_and_loses_nothing(how: str) -> None:
    broker = Broker[Job](1)
    canceller = Canceller[Job](how)
    consumer = canceller.spawn(broker.get)
    await run_ready()
    assert broker.statistics().waiting_getters == 1
    canceller.arm()
    await canceller.cancel(consumer)
    assert broker.statistics().waiting_getters == 0
    broker.put_nowait(Job("a", 0))
    assert take_all(broker) == ["a"]
    assert assert_settled(broker).delivered == (1, 0, 0)


@pytest.mark.asyncio
@pytest.mark.parametrize("how", CANCEL_WAYS)
async def test_woken_then_cancelled_get_passes_the_wake_up_on(how: str) -> None:
    broker = Broker[Job](1)
    canceller = Canceller[Job](how)
    first = canceller.spawn(broker.get)
    await run_ready()
    second = asyncio.create_task(broker.get())
    await run_ready()
    canceller.arm()  # the cancellation arrives after the wake-up below
    job = Job("a", 0)
    broker.put_nowait(job)  # wakes the first consumer
    await canceller.cancel(first)
    assert await second is job
    broker.task_done(job)
    stats = assert_settled(broker)
    assert stats.delivered == stats.processed == (1, 0, 0)


def test_wait_for_timing_out_on_a_blocked_put_counts_it_cancelled() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker[Job](1, overflow="block", clock=clock_for(loop))
        broker.put_nowait(Job("a", 0))
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(broker.put(Job("b", 2)), timeout=0.25)
        assert loop.time() == 0.25
        assert take(broker) == "a"
        assert await broker.put(Job("c", 2)) is True  # nothing stale holds the place
        assert take_all(broker) == ["c"]
        stats = assert_settled(broker)
        assert stats.rejected_cancelled == (0, 0, 1)
        assert stats.blocked_ns == (0, 0, 250_000_000)

    run_virtual(scenario)


@pytest.mark.asyncio
async def test_many_puts_cancelled_by_asyncio_timeout_leave_no_waiters() -> None:
    broker = Broker[Job](1, overflow="block")
    broker.put_nowait(Job("a", 0))
    job = Job("b", 1)
    rounds = 10_000
    timeouts = 0
    blocks_before = sys.getallocatedblocks()
    for _ in range(rounds):
        try:
            async with asyncio.timeout(0):  # expires on the next pass of the loop
                await broker.put(job)
        except TimeoutError:
            timeouts += 1
    assert timeouts == rounds
    assert sys.getallocatedblocks() - blocks_before < rounds // 10  # nothing kept per put
    assert take_all(broker) == ["a"]
    stats = assert_settled(broker)
    assert stats.rejected_cancelled == (0, rounds, 0)


def test_100k_timed_out_puts_leave_no_waiters_and_do_not_grow_memory() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        broker = Broker[Job](1, overflow="timeout", put_timeout=0.001, clock=clock_for(loop))
        broker.put_nowait(Job("a", 0))
        job = Job("b", 1)

        async def time_out(n: int) -> None:
            for _ in range(n):
                if await broker.put(job):
                    raise AssertionError("admitted into a full broker")

        await time_out(1_000)  # warm up caches and free lists
        blocks_before = sys.getallocatedblocks()
        await time_out(100_000)
        assert sys.getallocatedblocks() - blocks_before < 1_000
        assert broker.statistics().waiting_putters == 0
        assert not any(broker._putters)
        tracemalloc.start()
        try:
            traced_before = tracemalloc.get_traced_memory()[0]
            await time_out(5_000)  # traced: a leak of one small object per put is > 150 KiB
            growth = tracemalloc.get_traced_memory()[0] - traced_before
        finally:
            tracemalloc.stop()
        assert growth < 32 * 1024
        assert take_all(broker) == ["a"]
        stats = assert_settled(broker)
        assert stats.dropped_timeout == (0, 106_000, 0)
        assert stats.rejected_cancelled == (0, 0, 0)

    run_virtual(scenario)


# ---------------------------------------------------------------------- dequeue disciplines


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("mid_at_ns", "high_at_ns", "take_at_ns", "expected"),
    [
        (0, 0, 99, ["high", "mid", "low"]),  # nothing has waited a full step: strict priority
        (100, 199, 199, ["high", "low", "mid"]),  # low aged to level 1, ties mid, admitted first
        (100, 199, 200, ["low", "mid", "high"]),  # all three at effective level 0: oldest first
    ],
)
async def test_aging_improves_one_level_per_age_step_waited(
    mid_at_ns: int, high_at_ns: int, take_at_ns: int, expected: list[str]
) -> None:
    clock = FakeClock()
    broker = Broker[Job](4, discipline=make_discipline("aging", levels=LEVELS, age_step_ns=100), clock=clock)
    broker.put_nowait(Job("low", 2))
    clock.now_ns = mid_at_ns
    broker.put_nowait(Job("mid", 1))
    clock.now_ns = high_at_ns
    broker.put_nowait(Job("high", 0))
    clock.now_ns = take_at_ns
    assert take_all(broker) == expected
    assert_settled(broker)


@pytest.mark.asyncio
async def test_aging_lets_an_old_low_event_overtake_a_stream_of_urgent_ones() -> None:
    clock = FakeClock()
    broker = Broker[Job](8, discipline=Aging(age_step_ns=10), clock=clock)
    broker.put_nowait(Job("low", 2))
    delivered: list[str] = []
    for t in range(0, 40, 5):
        clock.now_ns = t
        broker.put_nowait(Job(f"u{t}", 0))
        delivered.append(take(broker))
    assert delivered == ["u0", "u5", "u10", "u15", "low", "u20", "u25", "u30"]
    assert take_all(broker) == ["u35"]
    assert_settled(broker)


def _fill(broker: Broker[Job], counts: dict[int, int]) -> None:
    for priority, count in counts.items():
        for i in range(count):
            broker.put_nowait(Job(f"p{priority}-{i}", priority))


@pytest.mark.asyncio
async def test_wrr_default_weights_serve_four_two_one_per_round() -> None:
    broker = Broker[Job](32, discipline=make_discipline("wrr", levels=LEVELS))
    _fill(broker, {0: 8, 1: 6, 2: 3})
    delivered = take_all(broker)
    assert [int(name[1]) for name in delivered] == [0, 0, 0, 0, 1, 1, 2] * 2 + [1, 1, 2]
    for level in range(LEVELS):  # FIFO within a level
        names = [name for name in delivered if name.startswith(f"p{level}-")]
        assert names == sorted(names, key=lambda name: int(name.split("-")[1]))
    assert assert_settled(broker).processed == (8, 6, 3)


@pytest.mark.asyncio
async def test_wrr_empty_level_loses_its_credit() -> None:
    broker = Broker[Job](8, discipline=WeightedRoundRobin([3, 1]), levels=2)
    broker.put_nowait(Job("a0", 0))
    for i in range(3):
        broker.put_nowait(Job(f"b{i}", 1))
    assert [take(broker), take(broker)] == ["a0", "b0"]  # level 0 ran dry with 2 credits left
    for i in range(1, 5):
        broker.put_nowait(Job(f"a{i}", 0))
    assert take_all(broker) == ["a1", "a2", "a3", "b1", "a4", "b2"]  # 3 per round, not 3 + 2
    assert_settled(broker)


@pytest.mark.asyncio
async def test_wrr_with_equal_weights_is_round_robin() -> None:
    broker = Broker[Job](16, discipline=make_discipline("wrr", levels=LEVELS, weights=[1, 1, 1]))
    _fill(broker, {2: 3, 0: 2, 1: 3})
    assert take_all(broker) == ["p0-0", "p1-0", "p2-0", "p0-1", "p1-1", "p2-1", "p1-2", "p2-2"]
    assert_settled(broker)


@pytest.mark.parametrize("weights", [[1, 1], [1, 1, 1, 1]])
def test_wrr_weights_not_one_per_level_raise_config_error(weights: list[int]) -> None:
    message = f"weights must have one entry per level (3), got {weights}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        Broker[Job](5, levels=3, discipline=WeightedRoundRobin(weights))


@pytest.mark.parametrize(
    ("weights", "shown"), [([1, 1.5], "[1, 1.5]"), ([1, math.nan], "[1, nan]"), ([True], "[True]")]
)
def test_wrr_weights_not_integers_raise_config_error(weights: list[Any], shown: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"weights must be integers >= 1, got {shown}")):
        WeightedRoundRobin(weights)


@pytest.mark.parametrize(("age_step_ns", "shown"), [(math.nan, "nan"), (1.5, "1.5"), (True, "True")])
def test_aging_step_not_an_int_raises_config_error(age_step_ns: Any, shown: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"age_step must be > 0, got {shown} ns (an int)")):
        Aging(age_step_ns)


def test_make_discipline_names_and_errors() -> None:
    assert make_discipline("strict", levels=LEVELS) is None
    with pytest.raises(ConfigError, match="discipline 'aging' needs age_step"):
        make_discipline("aging", levels=LEVELS)
    with pytest.raises(ConfigError, match=re.escape("weights must have one entry per level (3), got [1, 2]")):
        make_discipline("wrr", levels=LEVELS, weights=[1, 2])
    with pytest.raises(ConfigError, match="discipline must be one of strict, aging, wrr, got 'lifo'"):
        make_discipline("lifo", levels=LEVELS)
    with pytest.raises(ConfigError, match=re.escape("age_step must be > 0, got 0 ns (an int)")):
        Aging(0)
    with pytest.raises(ConfigError, match=re.escape("weights must be integers >= 1, got [2, 0]")):
        WeightedRoundRobin([2, 0])


# ---------------------------------------------------------------------- model-based check


class _Model:
    """The documented semantics, written as plainly as possible, for the non-waiting
    paths (``put_nowait``/``get_nowait``) of every policy."""

    def __init__(self, maxsize: int, levels: int, overflow: Overflow) -> None:
        self.maxsize = maxsize
        self.overflow = overflow
        self.buffer: list[tuple[int, int, str]] = []  # (priority, admission seq, name)
        self.seq = 0
        self.counts = {
            name: [0] * levels
            for name in ("offered", "accepted", "processed", "dropped_full", "rejected_full", "evicted")
        }

    def put(self, priority: int, name: str) -> bool | None:
        """True admitted, False dropped, None BrokerFull."""
        self.counts["offered"][priority] += 1
        if len(self.buffer) == self.maxsize:
            if self.overflow in (Overflow.BLOCK, Overflow.TIMEOUT, Overflow.REJECT):
                self.counts["rejected_full"][priority] += 1
                return None
            if self.overflow is Overflow.DROP_NEW:
                self.counts["dropped_full"][priority] += 1
                return False
            if self.overflow is Overflow.DROP_OLDEST:
                victim = min(self.buffer, key=lambda entry: entry[1])
            else:  # shed-lowest
                lowest = max(entry[0] for entry in self.buffer)
                if priority >= lowest:
                    self.counts["dropped_full"][priority] += 1
                    return False
                victim = max((e for e in self.buffer if e[0] == lowest), key=lambda entry: entry[1])
            self.buffer.remove(victim)
            self.counts["evicted"][victim[0]] += 1
        self.buffer.append((priority, self.seq, name))
        self.seq += 1
        self.counts["accepted"][priority] += 1
        return True

    def get(self) -> str | None:
        if not self.buffer:
            return None
        entry = min(self.buffer)
        self.buffer.remove(entry)
        self.counts["processed"][entry[0]] += 1
        return entry[2]


@settings(max_examples=100, deadline=None)
@given(
    overflow=st.sampled_from(list(Overflow)),
    maxsize=st.integers(1, 3),
    levels=st.integers(1, 3),
    ops=st.lists(st.one_of(st.none(), st.integers(0, 2)), max_size=40),  # None: get, int: put
)
def test_non_waiting_paths_match_the_documented_model(
    overflow: Overflow, maxsize: int, levels: int, ops: list[int | None]
) -> None:
    broker = Broker[Job](maxsize, levels=levels, overflow=overflow, put_timeout=1.0)
    model = _Model(maxsize, levels, overflow)
    for i, op in enumerate(ops):
        if op is None:
            try:
                got: str | None = take(broker)
            except asyncio.QueueEmpty:
                got = None
            assert got == model.get()
        else:
            priority = op % levels
            try:
                admitted: bool | None = broker.put_nowait(Job(f"e{i}", priority))
            except BrokerFull:
                admitted = None
            assert admitted == model.put(priority, f"e{i}")
        assert broker.qsize() == len(model.buffer) <= maxsize
    while model.buffer:
        assert take(broker) == model.get()
    stats = assert_settled(broker)
    for name, counts in model.counts.items():
        assert getattr(stats, name) == tuple(counts), name
