"""Tests for ``streamsim.runner``: one scenario end to end.

* The accounting invariant over hypothesis-generated scenarios on the virtual clock
  (every overflow policy and discipline, deadlines, failure injection, drain deadlines,
  producers cut off by ``duration``, Ctrl-C at a random delivery), with each delivery's
  order checked against its discipline as it happens.
* Determinism: the same virtual-clock scenario and seed give identical metrics.
* Coordinated omission: a 500 ms consumer stall shows in the intended-time end-to-end
  p99, not in the service time, and a blocked producer hides it from the send-time one.
* Failures and shutdown: exact dead-letter and abandoned counts.
* Ctrl-C and SIGTERM through the real CLI in a subprocess, then ``--resume``.

Everything but the CLI tests runs on the virtual clock: exact values, no wall time.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import streamsim
from streamsim import runner
from streamsim.broker import Broker
from streamsim.config import Scenario, parse_scenario
from streamsim.errors import ConfigError
from streamsim.interrupt import INTERRUPTS
from streamsim.policies import Aging, Overflow, WeightedRoundRobin
from streamsim.report import Point, build_point, read_report, scalar_metrics
from streamsim.runner import RunResult, run_scenario

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np

    from streamsim.workload import Trace

NS = 1_000_000_000
# Outcomes only an overflow policy produces, and the policies that may produce each.
OVERFLOW_OUTCOMES: dict[str, tuple[Overflow, ...]] = {
    "dropped_full": (Overflow.DROP_NEW, Overflow.SHED_LOWEST),
    "dropped_timeout": (Overflow.TIMEOUT,),
    "rejected_full": (Overflow.REJECT,),
    "evicted": (Overflow.DROP_OLDEST, Overflow.SHED_LOWEST),
}
INJECTED = "RuntimeError: injected failure"


def virtual(**fields: Any) -> Scenario:
    """A virtual-clock scenario: the defaults, updated with ``fields``."""
    return parse_scenario({"clock": "virtual", **fields})


# ---------------------------------------------------------------------- delivery checks


@dataclasses.dataclass
class Observer:
    """Watches every delivery of one run's broker (through its ``on_take`` hook) and
    records each one that breaks the discipline; optionally sends a Ctrl-C (``level``
    1) or two (``level`` 2) to the run at delivery number ``interrupt_after`` (0: before
    the run starts)."""

    levels: int
    check_wrr: bool = True  # off with deadlines: an expired head spends its level's turn
    interrupt_after: int | None = None
    interrupt_level: int = 1
    takes: int = 0
    interrupted: bool = False
    violations: list[str] = dataclasses.field(default_factory=list)
    last_admitted_ns: list[int] = dataclasses.field(default_factory=list)
    streak_level: int = -1
    streak: int = 0

    def __post_init__(self) -> None:
        self.last_admitted_ns = [-1] * self.levels

    def delivered(self, broker: Broker[Any], priority: int, admitted_ns: int, now_ns: int) -> None:
        """Called as ``broker`` hands out an event of ``priority``, after popping it."""
        self.takes += 1
        buffered = broker.qsize_by_priority()
        where = f"delivery {self.takes} (priority {priority}, buffered {buffered})"
        if admitted_ns < self.last_admitted_ns[priority]:
            self.violations.append(f"{where}: not FIFO within its priority")
        self.last_admitted_ns[priority] = admitted_ns
        discipline = broker._discipline
        if discipline is None and any(buffered[:priority]):
            self.violations.append(f"{where}: strict, but a more urgent event was buffered")
        elif isinstance(discipline, Aging):
            # Effective level: one better per age_step waited; the delivered event's is the best.
            def effective(level: int, since_ns: int) -> int:
                return level - (now_ns - since_ns) // discipline.age_step_ns

            mine = effective(priority, admitted_ns)
            for level, entries in enumerate(broker._buffer):
                if level != priority and entries and effective(level, entries[0][0]) < mine:
                    self.violations.append(f"{where}: aging, but level {level}'s head had aged further")
        elif isinstance(discipline, WeightedRoundRobin) and self.check_wrr:
            # While another level waits, a level is served at most its weight in a row.
            others_waiting = any(n for level, n in enumerate(buffered) if level != priority)
            if priority != self.streak_level:
                self.streak_level, self.streak = priority, 0
            self.streak = self.streak + 1 if others_waiting else 0
            if self.streak > discipline.weights[priority]:
                self.violations.append(f"{where}: wrr, served {self.streak} in a row past its weight")
        if self.takes == self.interrupt_after:
            self.interrupt()

    def interrupt(self) -> None:
        self.interrupted = True
        for _ in range(self.interrupt_level):
            INTERRUPTS.request(signal.SIGINT)


@contextlib.contextmanager
def observed(observer: Observer) -> Iterator[None]:
    """Run scenarios inside with each run's broker reporting its deliveries to ``observer``
    (through the broker's ``on_take`` hook, however the runner built the broker)."""
    build = runner._Run.__init__

    def init(run: runner._Run, sc: Scenario, trace: Trace | None, kind: type[Broker[Any]] = Broker) -> None:
        build(run, sc, trace, kind)
        broker, clock = run.broker, run.clock
        on_take = broker._on_take
        assert on_take is not None

        def take(priority: int, wait_ns: int) -> None:
            now_ns = clock()
            observer.delivered(broker, priority, now_ns - wait_ns, now_ns)
            on_take(priority, wait_ns)

        broker._on_take = take

    try:
        with mock.patch.object(runner._Run, "__init__", init):
            yield
    finally:
        INTERRUPTS.reset()


# ---------------------------------------------------------------------- the invariant


def assert_accounted(
    sc: Scenario, result: RunResult, *, interrupted: int = 0, failure: str = INJECTED
) -> None:
    """Every offered event has exactly one outcome, nothing is in flight, and each
    counter is one the scenario can produce. ``interrupted``: the Ctrl-C level sent;
    ``failure``: how every dead letter's reason begins."""
    s = result.stats
    assert s.unaccounted() == (0,) * sc.levels
    for p in range(sc.levels):
        assert s.offered[p] == (
            s.processed[p] + s.dropped_full[p] + s.dropped_timeout[p] + s.rejected_full[p]
            + s.rejected_closed[p] + s.rejected_cancelled[p] + s.evicted[p] + s.expired[p]
            + s.dead_lettered[p] + s.abandoned[p]
        )  # fmt: skip
        # Admitted events end in the buffer's outcomes; the rest were refused at the door.
        assert (
            s.accepted[p]
            == s.processed[p] + s.dead_lettered[p] + s.abandoned[p] + s.evicted[p] + s.expired[p]
        )
        # Delivered events are done, dead or abandoned in a consumer's hands.
        held_abandoned = s.delivered[p] - s.processed[p] - s.dead_lettered[p]
        assert 0 <= held_abandoned <= s.abandoned[p]
        histograms = result.recorder.histograms
        assert histograms["queue_wait"][p].count == s.delivered[p]
        for kind in ("service", "end_to_end", "end_to_end_sent"):
            assert histograms[kind][p].count == s.processed[p]
    # Nothing in flight.
    assert (s.size, s.unfinished, s.waiting_putters, s.waiting_getters) == (0, 0, 0, 0)
    assert s.size_by_priority == (0,) * sc.levels
    assert s.closed
    # Only the outcomes this scenario can produce.
    bounded = sc.maxsize != "unbounded"
    for name, policies in OVERFLOW_OUTCOMES.items():
        if not (bounded and sc.overflow in policies):
            assert getattr(s, name) == (0,) * sc.levels, name
    if sc.overflow is Overflow.SHED_LOWEST:
        assert s.evicted[0] == 0  # never evicted to make room: nothing is more urgent
    if isinstance(sc.maxsize, int):
        assert s.peak_size <= sc.maxsize
    cut_short = sc.duration is not None or interrupted > 0
    if not cut_short:
        assert sum(s.offered) == sc.events
        assert s.rejected_closed == s.rejected_cancelled == (0,) * sc.levels
    if sc.drain_timeout is None and interrupted < 2:
        assert s.abandoned == (0,) * sc.levels
    if sc.drain_timeout is not None:
        assert result.drain_ns <= round(sc.drain_timeout * NS) + 1_000  # the deadline holds
    if sc.ttl is None:
        assert s.expired == (0,) * sc.levels
    if sc.failure_rate == 0 and sc.fail_first == 0:
        assert s.dead_lettered == (0,) * sc.levels
    if sc.failure_rate == 1:
        assert s.processed == (0,) * sc.levels
    assert len(result.dead_letters) == sum(s.dead_lettered)
    assert [sum(1 for _, p, _ in result.dead_letters if p == level) for level in range(sc.levels)] == list(
        s.dead_lettered
    )
    assert all(reason.startswith(failure) for _, _, reason in result.dead_letters)
    assert result.interrupted == (interrupted > 0)


@dataclasses.dataclass(frozen=True)
class Case:
    """A generated scenario, and when (which delivery) to press Ctrl-C how many times."""

    data: dict[str, Any]
    interrupt_after: int | None
    interrupt_level: int


@st.composite
def cases(draw: st.DrawFn) -> Case:
    levels = draw(st.integers(1, 4))
    overflow = draw(st.sampled_from(list(Overflow)))
    discipline = draw(st.sampled_from(["strict", "aging", "wrr"]))
    arrival = draw(st.sampled_from(["poisson", "constant", "bursty", "closed"]))
    service_mean = draw(st.sampled_from([0.0, 0.0002, 0.001, 0.005, 0.005]))
    mix = draw(st.lists(st.integers(0, 4), min_size=levels, max_size=levels))
    data: dict[str, Any] = {
        "clock": "virtual",
        "levels": levels,
        "priority_weights": [float(w) for w in mix] if sum(mix) else [1.0] * levels,
        "maxsize": draw(st.one_of(st.integers(1, 5), st.integers(1, 50), st.just("unbounded"))),
        "overflow": overflow.value,
        "discipline": discipline,
        "producers": draw(st.integers(1, 8)),
        "consumers": draw(st.integers(1, 6)),
        "arrival": arrival,
        "service": draw(st.sampled_from(["constant", "exponential", "lognormal"])),
        "service_mean": service_mean,
        "events": draw(st.one_of(st.integers(60, 300), st.integers(60, 300), st.integers(1, 5))),
        "duration": draw(st.sampled_from([None, None, None, None, 0.002, 0.02, 0.1])),
        "ttl": draw(st.sampled_from([None, None, 0.0005, 0.003, 0.05])),
        "failure_rate": draw(st.sampled_from([0.0, 0.0, 0.0, 0.2, 1.0])),
        "fail_first": draw(st.sampled_from([0, 0, 1, 3])),
        "max_retries": draw(st.integers(0, 3)),
        "drain_timeout": draw(st.sampled_from([None, None, 0.0005, 0.005, 0.05])),
        "seed": draw(st.integers(0, 10_000)),
    }
    if overflow is Overflow.TIMEOUT:
        data["put_timeout"] = draw(st.sampled_from([0.0002, 0.002, 0.02]))
    if discipline == "aging":
        data["age_step"] = draw(st.sampled_from([0.0005, 0.002, 0.01]))
    if discipline == "wrr":
        data["weights"] = draw(
            st.one_of(st.none(), st.lists(st.integers(1, 5), min_size=levels, max_size=levels))
        )
    if arrival != "closed":
        if service_mean > 0 and draw(st.booleans()):
            data["load"] = draw(st.sampled_from([0.5, 1.5, 3.0, 10.0]))
        else:
            data["rate"] = draw(st.sampled_from([2_000.0, 20_000.0, 200_000.0]))
    if arrival == "bursty":
        data["on"] = draw(st.sampled_from([0.002, 0.01]))
        data["off"] = draw(st.sampled_from([0.0, 0.005, 0.02]))
    if data["duration"] is not None and draw(st.booleans()) and duration_only_events(data) <= 1_500:
        data["events"] = None  # producers stop at `duration` alone
    interrupt = draw(st.sampled_from([0, 0, 0, 1, 2]))
    return Case(data, draw(st.integers(0, 60)) if interrupt else None, interrupt)


def duration_only_events(data: dict[str, Any]) -> float:
    """About how many events a scenario offers on ``duration`` alone (inf: without end)."""
    duration: float = data["duration"]
    mean: float = data["service_mean"]
    consumers: int = data["consumers"]
    if data["arrival"] != "closed":
        return float(data.get("rate") or data["load"] * consumers / mean) * duration
    if data["maxsize"] == "unbounded" or not Overflow(data["overflow"]).waits or mean == 0:
        return float("inf")  # refused without events: see the regression test below
    retries = data["producers"] * duration / data["put_timeout"] if "put_timeout" in data else 0.0
    return float(consumers * duration / mean + retries)


def run_case(case: Case) -> tuple[Scenario, RunResult, Observer]:
    sc = parse_scenario(case.data)
    observer = Observer(
        sc.levels,
        check_wrr=sc.ttl is None,
        interrupt_after=case.interrupt_after,
        interrupt_level=case.interrupt_level,
    )
    with observed(observer):
        if case.interrupt_after == 0:  # before the run starts
            observer.interrupt()
        result = run_scenario(sc)
    return sc, result, observer


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(cases())
def test_every_event_is_accounted_for_in_generated_scenarios(case: Case) -> None:
    sc, result, observer = run_case(case)
    assert observer.violations == []
    assert_accounted(sc, result, interrupted=case.interrupt_level if observer.interrupted else 0)


# ---------------------------------------------------------------------- regressions


@pytest.mark.parametrize(
    ("fields", "policy"),
    [
        ({"overflow": "drop-new"}, "overflow 'drop-new' and maxsize 100"),
        ({"overflow": "reject"}, "overflow 'reject' and maxsize 100"),
        ({"overflow": "drop-oldest"}, "overflow 'drop-oldest' and maxsize 100"),
        ({"overflow": "shed-lowest"}, "overflow 'shed-lowest' and maxsize 100"),
        ({"maxsize": "unbounded"}, "overflow 'block' and maxsize 'unbounded'"),
    ],
)
def test_closed_loop_on_virtual_time_that_never_waits_needs_events(
    fields: dict[str, Any], policy: str
) -> None:
    # Found while writing the generated scenarios: these ran forever (the producer kept the loop
    # busy at one virtual instant, so `duration` never came). Now refused up front.
    with pytest.raises(ConfigError) as info:
        virtual(arrival="closed", duration=0.01, **fields)
    assert str(info.value) == (
        f"closed loop on the virtual clock with {policy} needs events: "
        "its producers never wait, so time stands still"
    )
    sc = virtual(arrival="closed", duration=0.01, events=50, **fields)  # with events, it ends
    assert sum(run_scenario(sc).stats.offered) == 50


def test_closed_loop_on_virtual_time_stops_at_duration_when_producers_wait() -> None:
    sc = virtual(
        arrival="closed",
        duration=0.1,
        maxsize=5,
        consumers=2,
        levels=1,
        service="constant",
        service_mean=0.001,
    )
    result = run_scenario(sc)
    s = result.stats
    # Two consumers at 1 ms each for 100 ms, plus the buffer and one producer blocked at close.
    assert (s.offered, s.processed, s.rejected_closed) == ((206,), (205,), (1,))
    assert (result.offered_window_ns, result.drain_ns, result.elapsed_ns) == (
        100_000_000,
        3_000_000,
        103_000_000,
    )
    assert_accounted(sc, result)


@pytest.mark.parametrize(
    ("signals", "processed", "abandoned", "drain_ns"),
    [(1, 51, 0, 510_000_000), (2, 0, 51, 0)],
    ids=["one-drains", "two-abandon"],
)
def test_signals_before_the_run_starts_keep_their_meaning(
    signals: int, processed: int, abandoned: int, drain_ns: int
) -> None:
    # Ctrl-C pressed twice before a run subscribes (between a sweep's points) used to
    # mean "drain": the run spent 510 ms draining instead of stopping at once.
    sc = virtual(arrival="closed", events=1000, maxsize=50, levels=1, service="constant", service_mean=0.01)
    try:
        for _ in range(signals):
            INTERRUPTS.request(signal.SIGINT)
        result = run_scenario(sc)
    finally:
        INTERRUPTS.reset()
    s = result.stats
    # The producer filled the buffer (50), handed one to the consumer and was blocked
    # on the 52nd when intake closed.
    assert (s.offered, s.rejected_closed) == ((52,), (1,))
    assert (s.processed, s.abandoned, result.drain_ns) == ((processed,), (abandoned,), drain_ns)
    assert result.interrupted
    assert_accounted(sc, result, interrupted=signals)


# ---------------------------------------------------------------------- determinism


def fingerprint(result: RunResult) -> dict[str, Any]:
    """Everything a run measured except the wall time it took."""
    return {
        "stats": dataclasses.asdict(result.stats),
        "histograms": {
            kind: [h.encode() for h in per_priority]
            for kind, per_priority in result.recorder.histograms.items()
        },
        "scalar_metrics": scalar_metrics(result),
        "times_ns": (result.elapsed_ns, result.offered_window_ns, result.drain_ns, result.depth_interval_ns),
        "late": (result.late_events, result.max_send_lag_ns),
        "depth": result.depth,
        "dead_letters": result.dead_letters,
        "interrupted": result.interrupted,
    }


DETERMINISTIC = {
    "arrival": "poisson",
    "load": 1.3,
    "events": 3000,
    "producers": 3,
    "consumers": 2,
    "maxsize": 20,
    "overflow": "shed-lowest",
    "discipline": "aging",
    "age_step": 0.01,
    "ttl": 0.05,
    "failure_rate": 0.05,
    "max_retries": 1,
    "drain_timeout": 0.02,
}


@pytest.mark.parametrize(
    "fields",
    [
        DETERMINISTIC,
        {
            **DETERMINISTIC,
            "overflow": "block",
            "discipline": "wrr",
            "arrival": "bursty",
            "on": 0.05,
            "off": 0.05,
        },
    ],
    ids=["shed-lowest-aging", "block-wrr-bursty"],
)
def test_same_scenario_and_seed_give_identical_metrics(fields: dict[str, Any]) -> None:
    sc = virtual(**fields)
    first, second = run_scenario(sc, seed=7), run_scenario(sc, seed=7)
    assert fingerprint(first) == fingerprint(second)
    # And the report's point, byte for byte (its wall time aside).
    points = [build_point("p", {}, sc.model_dump(mode="json"), [r], wall_s=0.0) for r in (first, second)]
    assert points[0].model_dump_json() == points[1].model_dump_json()
    # The seed matters: another one gives another run.
    assert fingerprint(run_scenario(sc, seed=8))["histograms"] != fingerprint(first)["histograms"]


# ---------------------------------------------------------------------- coordinated omission


STALL = {
    "arrival": "constant",
    "rate": 100.0,  # one event every 10 ms ...
    "events": 1000,
    "levels": 1,
    "consumers": 1,
    "service": "constant",
    "service_mean": 0.002,  # ... each taking 2 ms: the consumer is busy 20% of the time
    "maxsize": "unbounded",
}


def p99_ns(result: RunResult, kind: str) -> int | None:
    return result.recorder.histograms[kind][0].percentile_ns(99)


def test_without_a_stall_every_latency_is_the_service_time() -> None:
    result = run_scenario(virtual(**STALL))
    for kind in ("service", "end_to_end", "end_to_end_sent"):
        assert p99_ns(result, kind) == 2_000_895  # 2 ms, as the HDR histogram holds it
    assert p99_ns(result, "queue_wait") == 0
    assert result.late_events == 0


def test_consumer_stall_shows_in_intended_time_p99_not_in_service_time() -> None:
    sc = virtual(**STALL, stall_at=2.0, stall=0.5)
    result = run_scenario(sc)
    histograms = result.recorder.histograms
    # ~50 events arrive during the 500 ms stall and wait: the first for 492 ms
    # (the stall begins after the 2 ms event in hand), the rest less and less.
    assert p99_ns(result, "end_to_end") == 414_187_519
    assert histograms["end_to_end"][0].max_ns == 494_000_000
    assert p99_ns(result, "service") == 2_000_895
    assert histograms["service"][0].max_ns == 2_000_000
    # The producer never waits on an unbounded buffer: sent == intended, the same latency.
    assert p99_ns(result, "end_to_end_sent") == 414_187_519
    assert (result.late_events, result.stats.blocked_ns) == (0, (0,))
    assert_accounted(sc, result)


def test_blocked_producer_hides_the_stall_from_send_time_latency_only() -> None:
    sc = virtual(**{**STALL, "maxsize": 2, "overflow": "block"}, stall_at=2.0, stall=0.5)
    result = run_scenario(sc)
    # Intended-time latency is the same as with an unbounded buffer: the events waited
    # just as long, in the producer instead of the broker (coordinated omission avoided).
    assert p99_ns(result, "end_to_end") == 414_187_519
    # Send-time latency starts the clock when the blocked producer finally sends: it
    # reports 8 ms where users saw 414 ms. Only the 3 events caught in the stall show it.
    assert p99_ns(result, "end_to_end_sent") == 8_003_583
    assert result.recorder.histograms["end_to_end_sent"][0].max_ns == 494_000_000
    assert p99_ns(result, "service") == 2_000_895
    # The producer fell behind its schedule: counted, with by how much.
    assert (result.late_events, result.max_send_lag_ns, result.stats.blocked_ns) == (
        58,
        462_000_000,
        (588_000_000,),
    )
    assert_accounted(sc, result)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"stall": 0.5}, "stall and stall_at go together: give both or neither"),
        ({"stall_at": 1.0}, "stall and stall_at go together: give both or neither"),
        ({"stall_at": 1.0, "stall": 0}, "stall: Input should be greater than 0, got 0"),
        ({"stall_at": -1.0, "stall": 0.5}, "stall_at: Input should be greater than or equal to 0, got -1.0"),
    ],
)
def test_bad_stall_is_one_line_naming_the_field(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        virtual(**STALL, **fields)
    assert str(info.value) == message


# ---------------------------------------------------------------------- failures and shutdown


def closed(**fields: Any) -> Scenario:
    """10 events of 1 ms through one consumer, one level: failures happen in order."""
    defaults = {"arrival": "closed", "events": 10, "levels": 1, "consumers": 1, "maxsize": 10}
    return virtual(**defaults, service="constant", service_mean=0.001, **fields)


@pytest.mark.parametrize(
    ("fail_first", "max_retries", "dead_lettered"),
    [
        (5, 0, 5),  # each failure is final
        (5, 1, 2),  # events 1 and 2 fail twice; event 3 fails once, then succeeds
        (5, 4, 1),  # event 1 uses all five failures
        (3, 3, 0),  # event 1 fails three times, succeeds on its fourth attempt
        (30, 2, 10),  # more failures than attempts
    ],
)
def test_fail_first_with_retries_dead_letters_exactly(
    fail_first: int, max_retries: int, dead_lettered: int
) -> None:
    sc = closed(fail_first=fail_first, max_retries=max_retries)
    result = run_scenario(sc)
    s = result.stats
    assert (s.dead_lettered, s.processed, s.delivered) == ((dead_lettered,), (10 - dead_lettered,), (10,))
    assert result.dead_letters == [
        (i, 0, "RuntimeError: injected failure (fail_first)") for i in range(1, dead_lettered + 1)
    ]
    assert result.recorder.histograms["service"][0].count == 10 - dead_lettered
    assert_accounted(sc, result)


def test_failure_rate_one_dead_letters_everything_after_retries() -> None:
    sc = closed(failure_rate=1.0, max_retries=2)
    result = run_scenario(sc)
    assert (result.stats.dead_lettered, result.stats.processed) == ((10,), (0,))
    assert result.dead_letters == [
        (i, 0, "RuntimeError: injected failure (failure_rate)") for i in range(1, 11)
    ]
    assert result.elapsed_ns == 30 * 1_000_000  # three 1 ms attempts each, one after the other
    assert_accounted(sc, result)


BACKLOG = {
    "arrival": "constant",
    "rate": 1000.0,  # 100 events over 100 ms ...
    "events": 100,
    "levels": 1,
    "consumers": 1,
    "service": "constant",
    "service_mean": 0.01,  # ... handled at 10 ms each: 90 are still waiting at close
    "maxsize": "unbounded",
}


def test_drain_deadline_abandons_the_rest_and_counts_it() -> None:
    sc = virtual(**BACKLOG, drain_timeout=0.2)
    result = run_scenario(sc)
    s = result.stats
    # 9 done before close, 20 in the 200 ms drain; the 30th is in hand when the deadline
    # comes (abandoned by its consumer), 70 never left the buffer.
    assert (s.processed, s.abandoned, s.delivered) == ((29,), (71,), (30,))
    assert result.drain_ns == 200_000_000
    assert_accounted(sc, result)


def test_drain_without_deadline_loses_nothing() -> None:
    sc = virtual(**BACKLOG, drain_timeout=5.0)
    result = run_scenario(sc)
    assert (result.stats.processed, result.stats.abandoned) == ((100,), (0,))
    assert result.drain_ns == 901_000_000
    assert_accounted(sc, result)


def test_drain_deadline_during_retries_abandons_not_dead_letters() -> None:
    # The deadline cancels the consumer inside a handler attempt: that is a shutdown
    # (the event is abandoned), not a handler failure to retry or dead-letter.
    sc = virtual(**BACKLOG, drain_timeout=0.2, failure_rate=0.5, max_retries=3)
    result = run_scenario(sc)
    s = result.stats
    assert (s.processed, s.dead_lettered, s.abandoned, s.delivered) == ((10,), (1,), (89,), (12,))
    assert result.dead_letters == [(10, 0, "RuntimeError: injected failure (failure_rate)")]
    assert_accounted(sc, result)


async def handler_with_own_timeout(run: runner._Run, job: runner.Job, rng: np.random.Generator) -> None:
    """A handler whose call to a slow dependency is cancelled by the handler's own
    timer on odd events: the CancelledError is the handler failing, nothing else."""
    if job.id % 2:
        call = asyncio.ensure_future(asyncio.sleep(1.0))
        asyncio.get_running_loop().call_later(0.001, call.cancel, "handler timeout")
        await call
    else:
        await asyncio.sleep(job.service_ns / NS)


def test_cancelled_error_from_the_handlers_own_timeout_is_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner._Run, "_handler", handler_with_own_timeout)
    # Failure injection on (at a rate that never fires) routes handling through retries.
    sc = closed(failure_rate=1e-9, max_retries=2)
    result = run_scenario(sc)
    s = result.stats
    # Odd events fail all three attempts and are dead-lettered; the consumer carries on.
    assert (s.processed, s.dead_lettered, s.abandoned) == ((5,), (5,), (0,))
    assert result.dead_letters == [(i, 0, "CancelledError: handler timeout") for i in (1, 3, 5, 7, 9)]
    assert not result.interrupted
    assert result.elapsed_ns == (5 * 3 + 5) * 1_000_000
    assert_accounted(sc, result, failure="CancelledError")


# ---------------------------------------------------------------------- Ctrl-C through the CLI


SWEEP = """\
name = "signals"
repeats = 1
warmup = 0

[base]
clock = "wall"
arrival = "poisson"
duration = 0.3
service = "constant"
service_mean = 0.005
levels = 3
consumers = 1
maxsize = 1000
drain_timeout = 10.0

[[grid]]
"load,seed" = {points}
"""
PACKAGE_ROOT = Path(streamsim.__file__).resolve().parent.parent


def start_sweep(tmp_path: Path, points: str, *args: str) -> subprocess.Popen[str]:
    """``python -m streamsim sweep`` on a sweep with the given points, in the background."""
    sweep = tmp_path / "signals.toml"
    sweep.write_text(SWEEP.format(points=points))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen(
        [sys.executable, "-m", "streamsim", "sweep", str(sweep), "--no-plots", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_points(proc: subprocess.Popen[str], report: Path, n: int) -> None:
    """Poll the report (written atomically: never half a file) until it has ``n`` points."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited early with {proc.returncode}: {proc.communicate()}"
        if report.exists() and len(read_report(report).points) >= n:
            return
        time.sleep(0.01)
    raise AssertionError(f"no {n} points in {report} after 30 s")


def assert_points_accounted(points: list[Point]) -> None:
    for point in points:
        assert point.priorities, point.id
        for p in point.priorities:
            outcomes = (
                p.processed + p.dropped_full + p.dropped_timeout + p.rejected_full + p.rejected_closed
                + p.rejected_cancelled + p.evicted + p.expired + p.dead_lettered + p.abandoned
            )  # fmt: skip
            assert p.offered == outcomes, (point.id, p.priority)


@pytest.mark.parametrize(
    ("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"]
)
def test_signal_writes_partial_report_and_resume_finishes_it(
    tmp_path: Path, signum: signal.Signals, status: int
) -> None:
    out = tmp_path / "out"
    points = "[[0.5, 1], [2.0, 2], [0.5, 3]]"
    with start_sweep(tmp_path, points, "--out", str(out)) as proc:
        wait_for_points(proc, out / "report.json", 1)
        time.sleep(0.1)  # well inside the second point's 0.3 s of offered load
        proc.send_signal(signum)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == status, stderr
    assert f"interrupted by {signum.name}" in stderr
    partial = read_report(out)
    assert [(p.id, p.status) for p in partial.points] == [
        ("load=0.5 seed=1", "ok"),
        ("load=2.0 seed=2", "interrupted"),
    ]
    assert_points_accounted(partial.points)
    assert (out / "summary.md").exists()

    with start_sweep(tmp_path, points, "--resume", str(out)) as proc:
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    final = read_report(out)
    assert [(p.id, p.status) for p in final.points] == [
        ("load=0.5 seed=1", "ok"), ("load=2.0 seed=2", "ok"), ("load=0.5 seed=3", "ok")
    ]  # fmt: skip
    assert final.points[0] == partial.points[0]  # kept as it was, not rerun
    assert_points_accounted(final.points)


def test_second_sigint_abandons_at_once_and_still_accounts(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # The second point offers 20x what the consumer takes and fills its 1,000 places in
    # 0.25 s: from then on a drain takes 5 s, so the two signals need not be timed finely
    # (on a loaded machine the point may start late; the first signal must not come
    # before it has begun).
    with start_sweep(tmp_path, "[[0.5, 1], [20.0, 2]]", "--out", str(out)) as proc:
        wait_for_points(proc, out / "report.json", 1)
        time.sleep(0.4)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)  # the drain has begun, with hundreds of events buffered
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    report = read_report(out)
    assert [(p.id, p.status) for p in report.points] == [
        ("load=0.5 seed=1", "ok"),
        ("load=20.0 seed=2", "interrupted"),
    ]
    assert_points_accounted(report.points)
    assert sum(p.abandoned for p in report.points[1].priorities) > 0


# ---------------------------------------------------------------------- unsent load


def scheduled_before(sc: Scenario, horizon_s: float) -> list[int]:
    """Per priority, the events the producers' seeded schedules put before ``horizon_s``."""
    import numpy as np

    counts = [0] * sc.levels
    for index in range(sc.producers):
        rng = np.random.default_rng([sc.seed, index])
        for chunk in sc.workload(index).chunks(rng, events=None, duration_s=sc.duration):
            assert chunk.intended_ns is not None
            due = chunk.priority[chunk.intended_ns < horizon_s * 1e9]
            for p, n in enumerate(np.bincount(due, minlength=sc.levels).tolist()):
                counts[p] += n
    return counts


@pytest.mark.parametrize("overflow", ["block", "timeout"])
def test_scheduled_events_a_blocked_producer_never_sent_are_counted_unsent(overflow: str) -> None:
    sc = virtual(
        overflow=overflow, put_timeout=0.05, load=1.5, duration=5.0, consumers=2, producers=2, maxsize=10,
        service_mean=0.01,
    )  # fmt: skip
    result = run_scenario(sc)
    scheduled = scheduled_before(sc, 5.0)
    offered_plus_unsent = [o + u for o, u in zip(result.stats.offered, result.unsent, strict=True)]
    assert offered_plus_unsent == scheduled
    assert sum(result.unsent) > 0.1 * sum(scheduled)  # a third of the load cannot even be sent


@pytest.mark.parametrize("overflow", ["drop-new", "shed-lowest"])
def test_a_producer_that_never_waits_sends_its_whole_schedule(overflow: str) -> None:
    sc = virtual(
        overflow=overflow, load=1.5, duration=5.0, consumers=2, producers=2, maxsize=10, service_mean=0.01
    )
    result = run_scenario(sc)
    assert result.unsent == [0, 0, 0]
    assert list(result.stats.offered) == scheduled_before(sc, 5.0)


def test_closed_loop_has_no_schedule_so_nothing_is_unsent() -> None:
    result = run_scenario(virtual(arrival="closed", duration=1.0, service_mean=0.01, maxsize=5))
    assert result.unsent == [0, 0, 0]


# ---------------------------------------------------------------------- robustness


def test_a_long_stall_keeps_the_depth_series_bounded() -> None:
    sc = virtual(events=50, stall_at=0.0, stall=1000.0, rate=100.0)
    result = run_scenario(sc)
    assert all(len(series) < runner.MAX_DEPTH_SAMPLES for series in result.depth)
    # The series still spans the whole run: samples x interval covers start -> drained.
    assert len(result.depth[0]) * result.depth_interval_ns >= result.elapsed_ns - result.depth_interval_ns
    assert sum(result.stats.processed) == 50


@pytest.mark.timeout(20)
def test_a_consumer_that_dies_of_a_bug_fails_the_run_instead_of_hanging() -> None:
    def broken(self: Broker[Any], event: Any) -> None:
        raise RuntimeError("bug in the consumer")

    with (
        mock.patch.object(Broker, "task_done", broken),
        pytest.raises(RuntimeError, match="bug in the consumer"),
    ):
        run_scenario(virtual(events=20, rate=100.0))
