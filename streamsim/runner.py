"""Run one scenario: producers -> broker -> consumers, then the zero-loss shutdown
(stop producers, close intake, drain, join, stop consumers), and measure it."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import time
from typing import TYPE_CHECKING

import numpy as np

from .broker import Broker, BrokerStatistics
from .clock import clock_for, loop_factory
from .errors import BrokerClosed, BrokerFull, InvariantViolation
from .interrupt import INTERRUPTS
from .metrics import LatencyRecorder
from .policies import make_discipline
from .slowdown import broker_class

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator

    from .config import Scenario
    from .workload import Chunk, Trace

__all__ = ("RunResult", "run_scenario")

NS = 1_000_000_000
MAX_DEPTH_SAMPLES = 2_000  # per level; about 500 are planned, a long drain adds more
LATE_NS = 1_000_000  # a send more than 1 ms behind its schedule counts as late
SEND_EARLY_NS = 50_000  # on the wall clock, don't sleep for gaps shorter than this


class Job:
    """The runner's in-flight event (a slotted object, not the pydantic ``Event``:
    it is built once per event on the hot path)."""

    __slots__ = ("deadline_ns", "id", "intended_ns", "priority", "sent_ns", "service_ns")

    def __init__(
        self, id: int, priority: int, intended_ns: int, sent_ns: int, service_ns: int, deadline_ns: int | None
    ) -> None:
        self.id = id
        self.priority = priority
        self.intended_ns = intended_ns  # scheduled send time (== sent_ns in closed loop)
        self.sent_ns = sent_ns  # when put() was called
        self.service_ns = service_ns
        self.deadline_ns = deadline_ns


@dataclasses.dataclass
class RunResult:
    """Everything one run of one scenario measured."""

    stats: BrokerStatistics
    recorder: LatencyRecorder
    elapsed_ns: int  # start -> drain done, on the run's clock
    offered_window_ns: int  # start -> intake closed
    drain_ns: int  # close -> join returned (or the drain deadline)
    wall_ns: int  # real time the run took
    late_events: int  # sends more than 1 ms behind schedule (open loop)
    max_send_lag_ns: int
    # Per priority: open-loop events due before intake closed that no producer got to
    # offer (it was blocked, or behind its schedule): load the broker pushed back, k6's
    # "dropped iterations". Never offered, so outside the accounting invariant.
    unsent: list[int]
    depth_interval_ns: int
    depth: list[list[int]]  # sampled queue depth per priority
    dead_letters: list[tuple[int, int, str]]  # (event id, priority, reason)
    interrupted: bool = False


class _Run:
    """State shared by the tasks of one run."""

    def __init__(self, sc: Scenario, trace: Trace | None, broker: type[Broker[Job]] = Broker) -> None:
        self.sc = sc
        self.trace = trace
        loop = asyncio.get_running_loop()
        self.clock = clock_for(loop)
        self.virtual = sc.clock == "virtual"
        self.recorder = LatencyRecorder(sc.levels)
        queue_wait = self.recorder.raw["queue_wait"]
        discipline = make_discipline(
            sc.discipline,
            levels=sc.levels,
            age_step_ns=None if sc.age_step is None else round(sc.age_step * NS),
            weights=sc.weights,
        )
        # Broker itself, or a slowed subclass under the test-only STREAMSIM_SLOWDOWN knob.
        self.broker: Broker[Job] = broker(
            None if sc.maxsize == "unbounded" else sc.maxsize,
            levels=sc.levels,
            overflow=sc.overflow,
            put_timeout=sc.put_timeout,
            discipline=discipline,
            clock=self.clock,
            on_take=lambda priority, wait_ns: queue_wait[priority].append(wait_ns),
        )
        self.ttl_ns = None if sc.ttl is None else round(sc.ttl * NS)
        self.start_ns = 0
        self.stop_ns: int | None = None  # closed loop on duration: producers stop here
        self.next_id = 0
        self.late_events = 0
        self.max_send_lag_ns = 0
        self.unsent = [0] * sc.levels
        self.close_ns: int | None = None  # when intake closed
        self.failures_left = [sc.fail_first] * sc.levels
        self.dead_letters: list[tuple[int, int, str]] = []
        self.depth: list[list[int]] = [[] for _ in range(sc.levels)]
        self.interval_ns = 0  # queue-depth sampling interval, set by run()

    # ---------------------------------------------------------------- producers

    async def produce(self, index: int) -> None:
        sc = self.sc
        rng = np.random.default_rng([sc.seed, index])
        events = None
        if sc.events is not None:
            events = sc.events // sc.producers + (1 if index < sc.events % sc.producers else 0)
        workload = sc.workload(index, self.trace)
        clock, broker, put, ttl_ns = self.clock, self.broker, self.broker.put, self.ttl_ns
        closed_loop = sc.arrival == "closed"
        early_ns = 0 if self.virtual else SEND_EARLY_NS
        chunks = workload.chunks(rng, events=events, duration_s=sc.duration)
        chunk: Chunk | None = None
        offered = 0  # events of `chunk` offered so far
        try:
            for chunk in chunks:
                offered = 0
                priorities = chunk.priority.tolist()
                services = chunk.service_ns.tolist()
                intended = None if chunk.intended_ns is None else (chunk.intended_ns + self.start_ns).tolist()
                for i, priority in enumerate(priorities):
                    now = clock()
                    if intended is None:
                        if self.stop_ns is not None and now >= self.stop_ns:
                            return
                        due = now
                    else:
                        due = intended[i]
                        if due - now > early_ns:
                            await asyncio.sleep((due - now) / NS)
                            now = clock()
                        elif now - due > LATE_NS:
                            self.late_events += 1
                            self.max_send_lag_ns = max(self.max_send_lag_ns, now - due)
                    self.next_id += 1
                    deadline = None if ttl_ns is None else now + ttl_ns
                    job = Job(self.next_id, priority, due, now, services[i], deadline)
                    offered = i + 1  # the broker counts this put whatever it returns
                    try:
                        admitted = await put(job)
                    except BrokerFull:
                        admitted = False
                    except BrokerClosed:
                        return
                    if closed_loop and (not admitted or broker._size == broker._capacity):
                        await asyncio.sleep(0)  # pushed back: let the consumers run
        finally:
            if not closed_loop:
                self._count_unsent(chunk, offered, chunks)

    def _count_unsent(self, chunk: Chunk | None, offered: int, rest: Iterator[Chunk]) -> None:
        """Count the scheduled events from ``chunk[offered:]`` on, and in the chunks still
        to come, that were due before intake closed."""
        if chunk is None or self.close_ns is None:
            return  # nothing scheduled, or the schedule ran out before intake closed
        for part in itertools.chain([chunk], rest):
            assert part.intended_ns is not None
            skip = offered if part is chunk else 0
            due = part.intended_ns[skip:] + self.start_ns
            missed = part.priority[skip:][due < self.close_ns]
            if len(missed) == 0 and len(due):
                break  # schedules are sorted: nothing after this was due either
            for p, n in enumerate(np.bincount(missed, minlength=len(self.unsent)).tolist()):
                self.unsent[p] += n

    # ---------------------------------------------------------------- consumers

    async def consume(self, index: int) -> None:
        sc = self.sc
        rng = np.random.default_rng([sc.seed, 1_000_003, index])
        broker, clock = self.broker, self.clock
        raw = self.recorder.raw
        service_raw, e2e_raw, sent_raw = raw["service"], raw["end_to_end"], raw["end_to_end_sent"]
        may_fail = sc.failure_rate > 0 or sc.fail_first > 0
        # One-off stall (a GC pause, a slow dependency): consumer 0 stops taking events
        # for `stall` seconds the first time it goes for one at or after `stall_at`.
        # It holds no event meanwhile: queued events wait, service times stay clean.
        stall_at_ns, stall_s = None, 0.0
        if index == 0 and sc.stall_at is not None and sc.stall is not None:
            stall_at_ns, stall_s = self.start_ns + round(sc.stall_at * NS), sc.stall
        while True:
            if stall_at_ns is not None and clock() >= stall_at_ns:
                stall_at_ns = None
                await asyncio.sleep(stall_s)
            try:
                job = await broker.get()
            except BrokerClosed:
                return
            taken = clock()
            try:
                if may_fail:
                    failure = await self._handle_with_retries(job, rng)
                elif job.service_ns:
                    await asyncio.sleep(job.service_ns / NS)
                    failure = None
                else:
                    failure = None
            except asyncio.CancelledError:
                broker.abandon(job)  # the drain deadline ran out while we held it
                raise
            done = clock()
            priority = job.priority
            if failure is not None:
                self.dead_letters.append((job.id, priority, failure))
                broker.dead_letter(job)
                continue
            service_raw[priority].append(done - taken)
            e2e_raw[priority].append(done - job.intended_ns)
            sent_raw[priority].append(done - job.sent_ns)
            broker.task_done(job)

    async def _handle_with_retries(self, job: Job, rng: np.random.Generator) -> str | None:
        """Run the handler up to 1 + max_retries times; return the last failure
        reason if every attempt failed, None on success."""
        reason = None
        for _ in range(1 + self.sc.max_retries):
            try:
                await self._handler(job, rng)
                return None
            except asyncio.CancelledError as exc:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise  # a real cancellation of this consumer, not the handler's own
                reason = f"CancelledError: {exc}"
            except Exception as exc:
                reason = f"{type(exc).__name__}: {exc}"
        return reason

    async def _handler(self, job: Job, rng: np.random.Generator) -> None:
        """The simulated handler: takes the event's service time, then fails as the
        failure injection says."""
        if job.service_ns:
            await asyncio.sleep(job.service_ns / NS)
        if self.failures_left[job.priority] > 0:
            self.failures_left[job.priority] -= 1
            raise RuntimeError("injected failure (fail_first)")
        if self.sc.failure_rate and rng.random() < self.sc.failure_rate:
            raise RuntimeError("injected failure (failure_rate)")

    # ---------------------------------------------------------------- sampling

    def _record_depth(self) -> None:
        depth = self.depth
        for level, n in enumerate(self.broker.qsize_by_priority()):
            depth[level].append(n)
        if len(depth[0]) >= MAX_DEPTH_SAMPLES:
            # A drain or a stall far longer than planned: keep every other sample and
            # sample half as often, so the series (and the report) stays bounded.
            for level, series in enumerate(depth):
                depth[level] = series[::2]
            self.interval_ns *= 2

    async def sample(self) -> None:
        recorder, clock = self.recorder, self.clock
        next_ns = clock()
        while True:
            self._record_depth()
            if recorder.pending() > 200_000:
                recorder.fold()  # bounded memory however long the run
            # A fixed schedule, not a fixed pause, so sleep overshoot does not stretch
            # the time axis; a tick missed entirely records the depth seen now.
            next_ns += self.interval_ns
            while next_ns < clock():
                self._record_depth()
                next_ns += self.interval_ns
            await asyncio.sleep((next_ns - clock()) / NS)

    # ---------------------------------------------------------------- the run

    async def run(self) -> RunResult:
        sc = self.sc
        wall_start = time.perf_counter_ns()
        self.start_ns = self.clock()
        if sc.arrival == "closed" and sc.duration is not None:
            self.stop_ns = self.start_ns + round(sc.duration * NS)
        self.interval_ns = self._sample_interval_ns()
        sampler = asyncio.create_task(self.sample())
        consumers = [asyncio.create_task(self.consume(i)) for i in range(sc.consumers)]
        producers = [asyncio.create_task(self.produce(i)) for i in range(sc.producers)]
        # Stop producers: at the end of their schedule, at `duration` whatever they
        # are doing, or on Ctrl-C/SIGTERM. close() releases producers blocked in put().
        stop = asyncio.Event()
        abort = asyncio.Event()
        loop = asyncio.get_running_loop()

        def on_signal(level: int) -> None:
            loop.call_soon_threadsafe((stop if level == 1 else abort).set)

        unsubscribe = INTERRUPTS.subscribe(on_signal)
        try:
            if INTERRUPTS.level:  # signalled before we subscribed: the same two levels
                (stop if INTERRUPTS.level == 1 else abort).set()
            await _first(asyncio.wait(producers), stop.wait(), abort.wait(), timeout=sc.duration)
            close_ns = self.close_ns = self.clock()
            self.broker.close()
            for task in producers:
                task.cancel()  # those still sleeping until their next event: none is in flight
            _raise_first_error(await asyncio.gather(*producers, return_exceptions=True))
            # Drain: consumers empty the buffer; join() returns when every event is done.
            # A drain deadline or a second signal abandons what is left, counted.
            # A consumer that died of a bug fails the run here instead of leaving join() waiting.
            drained = not abort.is_set() and await _first(
                self.broker.join(), abort.wait(), _failure(consumers), timeout=sc.drain_timeout, want=0
            )
            if not drained:
                self.broker.abandon_buffered()
                for task in consumers:
                    task.cancel()
            drain_done_ns = self.clock()
            _raise_first_error(await asyncio.gather(*consumers, return_exceptions=True))
        finally:
            unsubscribe()
        sampler.cancel()
        await asyncio.gather(sampler, return_exceptions=True)
        self.recorder.fold()
        stats = self.broker.statistics()
        check_invariant(stats)
        return RunResult(
            stats=stats,
            recorder=self.recorder,
            elapsed_ns=drain_done_ns - self.start_ns,
            offered_window_ns=close_ns - self.start_ns,
            drain_ns=drain_done_ns - close_ns,
            wall_ns=time.perf_counter_ns() - wall_start,
            late_events=self.late_events,
            max_send_lag_ns=self.max_send_lag_ns,
            unsent=self.unsent,
            depth_interval_ns=self.interval_ns,
            depth=self.depth,
            dead_letters=self.dead_letters,
            interrupted=stop.is_set() or abort.is_set(),
        )

    def _sample_interval_ns(self) -> int:
        sc = self.sc
        if sc.sample_interval is not None:
            return round(sc.sample_interval * NS)
        span_s = sc.duration
        if span_s is None and sc.events is not None and sc.rate_hz:
            span_s = sc.events / sc.rate_hz
        # About 500 samples per run, never finer than 1 ms.
        return max(NS // 1000, round((span_s or 1.0) * NS / 500))


async def _failure(tasks: list[asyncio.Task[None]]) -> None:
    """Raise the first exception any of ``tasks`` ends with; never return otherwise."""
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
    await asyncio.Event().wait()  # every task ended cleanly: leave the race to the others


async def _first(
    *aws: Awaitable[object],
    timeout: float | None,  # noqa: ASYNC109 - asyncio.wait's timeout, over a race of awaitables
    want: int | None = None,
) -> bool:
    """Wait until the first of ``aws`` finishes or ``timeout`` passes; cancel the rest.
    Returns True if awaitable number ``want`` finished first (any, when None)."""
    tasks = [asyncio.ensure_future(aw) for aw in aws]
    try:
        done, _ = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            if not task.done():
                task.cancel()
    for task in done:
        if task.exception() is not None and not isinstance(task.exception(), asyncio.CancelledError):
            raise task.exception()  # type: ignore[misc]
    return bool(done) if want is None else tasks[want] in done


def _raise_first_error(outcomes: list[object]) -> None:
    """A producer or consumer that crashed is a bug in streamsim: surface it."""
    for outcome in outcomes:
        if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
            raise outcome


def check_invariant(stats: BrokerStatistics) -> None:
    """Raise ``InvariantViolation`` unless every offered event has exactly one outcome."""
    missing = stats.unaccounted()
    if any(missing) or stats.unfinished or stats.size:
        raise InvariantViolation(
            f"accounting broken: per priority offered minus outcomes = {list(missing)}, "
            f"unfinished={stats.unfinished}, buffered={stats.size}"
        )


def run_scenario(sc: Scenario, *, seed: int | None = None, trace: Trace | None = None) -> RunResult:
    """Run ``sc`` once on a fresh event loop of its kind and return what it measured."""
    if seed is not None:
        sc = sc.model_copy(update={"seed": seed})
    if trace is None:
        trace = sc.load_trace()
    factory: Callable[[], asyncio.AbstractEventLoop] = loop_factory(
        "virtual" if sc.clock == "virtual" else sc.loop
    )

    broker = broker_class()  # here, not in the loop: the slowdown knob calibrates on a loop of its own

    async def main() -> RunResult:
        return await _Run(sc, trace, broker).run()

    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())
