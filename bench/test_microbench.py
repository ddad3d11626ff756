"""Microbenchmarks of the broker's hot operations (pytest-benchmark; ``nox -s microbench``).

pytest-benchmark times plain calls, so every benchmarked call runs one batch of
``BATCH`` events as ``runner.run(coro)`` on an event loop made once per test. The
times reported are per batch: divide by ``extra_info["events_per_batch"]`` for ns per
event, or multiply ops/s by it for events/s. ``test_runner_overhead`` times an empty
batch, the fixed cost of one ``runner.run`` on each loop, to subtract when it matters.

Matrix: loop (asyncio, uvloop; uvloop skipped where missing) x overflow policy, for

* ``put_nowait`` + ``get_nowait`` pairs and ``await put`` + ``await get`` pairs on a
  buffer that never fills or waits (each put is followed by a get): the path no policy sees;
* ``await put`` on a full buffer, so every put takes the overflow path: ``drop-new``,
  ``reject``, ``drop-oldest`` and ``shed-lowest`` decide at once; ``block`` and
  ``timeout`` hand each event over to a consumer task through a buffer of one;
* ``asyncio.Queue`` doing the same pairs and handoff, for scale.

Each test also checks, outside the timing, that its batches took the intended path.
Rounds are fixed (``pedantic``) so the file takes well under a minute; nothing asserts a time.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from streamsim import Broker, BrokerFull, ConfigError, Overflow
from streamsim.clock import LOOPS, loop_factory

if TYPE_CHECKING:
    from collections.abc import Callable, Coroutine, Iterator, Sequence

LEVELS = 3
BATCH = 5_000  # events per batch: one runner.run costs 40-90 µs, 1-2% of a batch (test_runner_overhead)
PAIR_MAXSIZE = 1_000  # fast-path buffer: never full, since each put is followed by a get
PUT_TIMEOUT_S = 60.0  # long enough never to fire during a batch
# Fixed rounds per kind of batch: the file took 28-45 s on a busy 2-core VM.
PAIR_ROUNDS, FULL_ROUNDS, HANDOFF_ROUNDS, WARMUP_ROUNDS = 40, 40, 10, 2

POLICIES = tuple(Overflow)
POLICY_IDS = tuple(p.value for p in POLICIES)
WAITING = tuple(p for p in POLICIES if p.waits)
NOT_WAITING = tuple(p for p in POLICIES if not p.waits)


class _Item:
    """A light event, as in bench/perf.py: a pydantic ``Event`` costs more to build
    than the broker spends on it (the items are built once, outside the timing)."""

    __slots__ = ("deadline_ns", "priority")

    def __init__(self, priority: int) -> None:
        self.priority = priority
        self.deadline_ns: int | None = None


class _Benchmark(Protocol):
    """The part of pytest-benchmark's fixture used here (its own methods are untyped)."""

    extra_info: dict[str, Any]

    def pedantic(
        self,
        target: Callable[..., object],
        *,
        setup: Callable[[], tuple[tuple[Any, ...], dict[str, Any]]] | None = None,
        rounds: int = 1,
        warmup_rounds: int = 0,
        iterations: int = 1,
    ) -> object: ...


# Priorities cycle over every level, so get() scans 0, 1 or 2 levels like a real mix.
MIXED = tuple(_Item(i % LEVELS) for i in range(BATCH))
LOWEST = tuple(_Item(LEVELS - 1) for _ in range(BATCH))
URGENT = tuple(_Item(i % (LEVELS - 1)) for i in range(BATCH))  # never the lowest level


@pytest.fixture(params=LOOPS)
def loop_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def runner(loop_name: str) -> Iterator[asyncio.Runner]:
    """One open loop for the whole test; skips with the install hint if it is missing."""
    try:
        factory = loop_factory(loop_name)
    except ConfigError as exc:
        pytest.skip(str(exc))
    with asyncio.Runner(loop_factory=factory) as runner:
        yield runner


def _broker(overflow: Overflow, maxsize: int) -> Broker[_Item]:
    return Broker(maxsize, levels=LEVELS, overflow=overflow, put_timeout=PUT_TIMEOUT_S)


def _run_batches(
    benchmark: _Benchmark,
    runner: asyncio.Runner,
    batch: Callable[[], Coroutine[Any, Any, None]],
    *,
    rounds: int,
    info: dict[str, Any],
) -> None:
    benchmark.extra_info.update(info, events_per_batch=BATCH)
    benchmark.pedantic(lambda: runner.run(batch()), rounds=rounds, warmup_rounds=WARMUP_ROUNDS)


# ---------------------------------------------------------------------- batches


async def _empty() -> None:
    pass


async def _pairs_nowait(broker: Broker[_Item]) -> None:
    put, get = broker.put_nowait, broker.get_nowait
    for item in MIXED:
        put(item)
        get()


async def _pairs_await(broker: Broker[_Item]) -> None:
    put, get = broker.put, broker.get
    for item in MIXED:
        await put(item)
        await get()


async def _puts_on_full(broker: Broker[_Item], items: Sequence[_Item]) -> None:
    put = broker.put
    for item in items:
        try:  # zero-cost on 3.11+ unless raised (reject)
            await put(item)
        except BrokerFull:
            pass


async def _handoff(broker: Broker[_Item]) -> None:
    """One producer (this task) and one consumer task through a full buffer of one:
    every put finds it full and waits, every get then empties it and waits."""

    async def consume() -> None:
        get = broker.get
        for _ in range(BATCH):
            await get()

    consumer = asyncio.create_task(consume())
    put = broker.put
    for item in MIXED:
        await put(item)
    await consumer


async def _queue_pairs_nowait(queue: asyncio.Queue[_Item]) -> None:
    put, get = queue.put_nowait, queue.get_nowait
    for item in MIXED:
        put(item)
        get()


async def _queue_pairs_await(queue: asyncio.Queue[_Item]) -> None:
    put, get = queue.put, queue.get
    for item in MIXED:
        await put(item)
        await get()


async def _queue_handoff(queue: asyncio.Queue[_Item]) -> None:
    async def consume() -> None:
        get = queue.get
        for _ in range(BATCH):
            await get()

    consumer = asyncio.create_task(consume())
    put = queue.put
    for item in MIXED:
        await put(item)
    await consumer


# ---------------------------------------------------------------------- broker


@pytest.mark.benchmark(group="runner.run overhead (empty batch)")
def test_runner_overhead(benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str) -> None:
    _run_batches(benchmark, runner, _empty, rounds=PAIR_ROUNDS, info={"loop": loop_name, "events": "none"})


@pytest.mark.benchmark(group="put_nowait + get_nowait, not full")
@pytest.mark.parametrize("overflow", POLICIES, ids=POLICY_IDS)
def test_pairs_nowait(
    benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str, overflow: Overflow
) -> None:
    broker = _broker(overflow, PAIR_MAXSIZE)
    info = {"loop": loop_name, "overflow": overflow.value, "events": "put_nowait+get_nowait pairs"}
    _run_batches(benchmark, runner, lambda: _pairs_nowait(broker), rounds=PAIR_ROUNDS, info=info)
    _check_pairs(broker)


@pytest.mark.benchmark(group="await put + await get, not full")
@pytest.mark.parametrize("overflow", POLICIES, ids=POLICY_IDS)
def test_pairs_await(
    benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str, overflow: Overflow
) -> None:
    broker = _broker(overflow, PAIR_MAXSIZE)
    info = {"loop": loop_name, "overflow": overflow.value, "events": "await put+get pairs"}
    _run_batches(benchmark, runner, lambda: _pairs_await(broker), rounds=PAIR_ROUNDS, info=info)
    _check_pairs(broker)


def _check_pairs(broker: Broker[_Item]) -> None:
    stats = broker.statistics()
    assert stats.peak_size == 1
    assert sum(stats.offered) == sum(stats.accepted) == sum(stats.delivered)


@pytest.mark.benchmark(group="await put, full buffer")
@pytest.mark.parametrize("overflow", NOT_WAITING, ids=[p.value for p in NOT_WAITING])
def test_put_full(benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str, overflow: Overflow) -> None:
    """``BATCH`` puts into a buffer of ``BATCH`` events, refilled before each round
    (untimed) so that shed-lowest always has a less urgent event to evict."""
    shed = overflow is Overflow.SHED_LOWEST
    fill, items = (LOWEST, URGENT) if shed else (MIXED, MIXED)
    last: list[Broker[_Item]] = []

    def full_broker() -> tuple[tuple[Broker[_Item], Sequence[_Item]], dict[str, Any]]:
        broker = _broker(overflow, BATCH)
        for item in fill:
            broker.put_nowait(item)
        last[:] = [broker]
        return (broker, items), {}

    benchmark.extra_info.update(
        loop=loop_name, overflow=overflow.value, events="await put on a full buffer", events_per_batch=BATCH
    )
    benchmark.pedantic(
        lambda broker, items: runner.run(_puts_on_full(broker, items)),
        setup=full_broker,
        rounds=FULL_ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
    )

    stats = last[0].statistics()
    outcome = {
        Overflow.DROP_NEW: stats.dropped_full,
        Overflow.REJECT: stats.rejected_full,
        Overflow.DROP_OLDEST: stats.evicted,
        Overflow.SHED_LOWEST: stats.evicted,
    }[overflow]
    assert sum(outcome) == BATCH
    assert stats.size == BATCH


@pytest.mark.benchmark(group="await put, full buffer")
@pytest.mark.parametrize("overflow", WAITING, ids=[p.value for p in WAITING])
def test_put_full_handoff(
    benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str, overflow: Overflow
) -> None:
    last: list[Broker[_Item]] = []

    def full_broker() -> tuple[tuple[Broker[_Item]], dict[str, Any]]:
        broker = _broker(overflow, 1)
        broker.put_nowait(MIXED[-1])
        last[:] = [broker]
        return (broker,), {}

    benchmark.extra_info.update(
        loop=loop_name,
        overflow=overflow.value,
        events="await put on a full buffer of 1, handed to a consumer task",
        events_per_batch=BATCH,
    )
    benchmark.pedantic(
        lambda broker: runner.run(_handoff(broker)),
        setup=full_broker,
        rounds=HANDOFF_ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
    )

    stats = last[0].statistics()
    assert sum(stats.delivered) == BATCH
    assert sum(stats.accepted) == BATCH + 1
    assert sum(stats.dropped_timeout) == 0
    assert all(ns > 0 for ns in stats.blocked_ns)  # every level's puts waited
    assert stats.waiting_putters == 0


# ---------------------------------------------------------------------- asyncio.Queue


@pytest.mark.benchmark(group="put_nowait + get_nowait, not full")
def test_queue_pairs_nowait(benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str) -> None:
    queue: asyncio.Queue[_Item] = asyncio.Queue(PAIR_MAXSIZE)
    info = {"loop": loop_name, "overflow": "asyncio.Queue", "events": "put_nowait+get_nowait pairs"}
    _run_batches(benchmark, runner, lambda: _queue_pairs_nowait(queue), rounds=PAIR_ROUNDS, info=info)
    assert queue.empty()


@pytest.mark.benchmark(group="await put + await get, not full")
def test_queue_pairs_await(benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str) -> None:
    queue: asyncio.Queue[_Item] = asyncio.Queue(PAIR_MAXSIZE)
    info = {"loop": loop_name, "overflow": "asyncio.Queue", "events": "await put+get pairs"}
    _run_batches(benchmark, runner, lambda: _queue_pairs_await(queue), rounds=PAIR_ROUNDS, info=info)
    assert queue.empty()


@pytest.mark.benchmark(group="await put, full buffer")
def test_queue_put_full_handoff(benchmark: _Benchmark, runner: asyncio.Runner, loop_name: str) -> None:
    last: list[asyncio.Queue[_Item]] = []

    def full_queue() -> tuple[tuple[asyncio.Queue[_Item]], dict[str, Any]]:
        queue: asyncio.Queue[_Item] = asyncio.Queue(1)
        queue.put_nowait(MIXED[-1])
        last[:] = [queue]
        return (queue,), {}

    benchmark.extra_info.update(
        loop=loop_name,
        overflow="asyncio.Queue",
        events="await put on a full buffer of 1, handed to a consumer task",
        events_per_batch=BATCH,
    )
    benchmark.pedantic(
        lambda queue: runner.run(_queue_handoff(queue)),
        setup=full_queue,
        rounds=HANDOFF_ROUNDS,
        warmup_rounds=WARMUP_ROUNDS,
    )
    assert last[0].full()
