"""Oracles (DESIGN.md section 4): the formulas against textbook values, then virtual-clock
runs against the formulas.

A simulated mean passes when the theory lies inside its 99% batch-means interval (after
a warm-up) and within 3% of it. Run lengths are chosen so that both hold for any seed
with high probability (checked over several seeds), not just for the seed fixed here:
at utilisation 0.8 a queue-wait mean needs about a million events for a 1% standard
error, so those runs are marked slow. Drop probabilities use independent replications
instead of batches, since drops are counted, not recorded per event.
"""

from __future__ import annotations

import functools
import heapq
import math
from typing import TYPE_CHECKING, Any
from unittest import mock

import numpy as np
import pytest

from streamsim import Scenario, parse_scenario, run_scenario, runner
from streamsim.metrics import LatencyRecorder
from streamsim.theory import (
    BatchMeans,
    batch_means,
    conservation_wait,
    erlang_b,
    erlang_c,
    expected_drop_share,
    expected_mean_queue_wait,
    expected_queue_wait,
    mm1_wait,
    mm1k_blocking,
    mmc_wait,
    mmck_blocking,
    priority_waits,
    weighted_mean_wait,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from streamsim.runner import RunResult

NS = 1_000_000_000
TOLERANCE = 0.03  # relative error allowed between a simulated mean and theory
CONFIDENCE = 0.99  # of the batch-means interval the theory must lie in
BATCHES = 20
WARMUP = 0.05  # share of each class's waits (in take order) discarded as warm-up
MIX = [0.1, 0.3, 0.6]  # share of arrivals per class, most urgent first


def mm(**params: Any) -> Scenario:
    """A virtual-clock scenario with Poisson arrivals and exponential service of mean 1 s."""
    base: dict[str, Any] = dict(
        clock="virtual", arrival="poisson", service="exponential", service_mean=1.0,
        producers=1, maxsize="unbounded", levels=1,
    )  # fmt: skip
    return parse_scenario({**base, **params})


def run_keeping_samples(sc: Scenario) -> RunResult:
    """Run ``sc`` with a recorder that keeps every raw latency, in order."""
    recorder = functools.partial(LatencyRecorder, keep_samples=True)
    with mock.patch.object(runner, "LatencyRecorder", recorder):
        return run_scenario(sc)


@functools.cache
def _queue_waits(scenario_json: str) -> tuple[np.ndarray, ...]:
    sc = Scenario.model_validate_json(scenario_json)
    recorder = run_keeping_samples(sc).recorder
    return tuple(recorder.samples_ns("queue_wait", p) / NS for p in range(sc.levels))


def queue_waits(sc: Scenario) -> tuple[np.ndarray, ...]:
    """Queue waits per class in seconds, in take order (one run per scenario, cached:
    several oracles read the same run)."""
    return _queue_waits(sc.model_dump_json())


def estimates(waits: Sequence[np.ndarray]) -> tuple[list[BatchMeans], BatchMeans]:
    """Batch means per class, and of all events together (the λ-weighted mean), after
    the warm-up. Batch j of the pooled series pools batch j of every class: the classes
    are thinned from one Poisson stream, so those batches cover about the same time."""
    per_class = []
    sums, counts = np.zeros(BATCHES), np.zeros(BATCHES)
    for w in waits:
        kept = w[int(len(w) * WARMUP) :]
        per_class.append(batch_means(kept, BATCHES, CONFIDENCE))
        size = len(kept) // BATCHES
        sums += kept[len(kept) - size * BATCHES :].reshape(BATCHES, size).sum(axis=1)
        counts += size
    return per_class, batch_means(sums / counts, BATCHES, CONFIDENCE)


def assert_matches(est: BatchMeans, expected: float, what: str) -> None:
    error = abs(est.mean - expected)
    detail = f"{what}: simulated {est.mean:.5g} ± {est.half_width:.3g}, theory {expected:.5g}"
    assert error <= est.half_width, f"{detail}: theory outside the {CONFIDENCE:.0%} interval"
    assert error <= TOLERANCE * expected, f"{detail}: error {error / expected:.2%} > {TOLERANCE:.0%}"


# ---------------------------------------------------------------------- formulas


def test_mm1_wait_is_rho_over_mu_minus_lambda() -> None:
    assert mm1_wait(0.8, 1.0) == pytest.approx(4.0)
    assert mm1_wait(5.0, 10.0) == pytest.approx(0.1)


def test_erlang_c_textbook_value_for_two_servers() -> None:
    # a = 1.6, c = 2: [1.28 · 2/0.4] / [1 + 1.6 + 1.28 · 2/0.4] = 6.4 / 9 = 32/45.
    assert erlang_c(2, 1.6) == pytest.approx(32 / 45)
    assert mmc_wait(1.6, 1.0, 2) == pytest.approx(32 / 45 / 0.4)  # 16/9 s
    assert erlang_c(10, 8.0) == pytest.approx(0.409180, abs=1e-6)  # Erlang C tables
    assert erlang_b(10, 5.0) == pytest.approx(0.018385, abs=1e-6)  # Erlang B tables
    assert erlang_b(2, 1.6) == pytest.approx(1.28 / 3.88)


def test_mmc_with_one_server_is_mm1() -> None:
    for lam in (0.1, 0.5, 0.9, 0.99):
        assert mmc_wait(lam, 1.0, 1) == pytest.approx(mm1_wait(lam, 1.0))
        assert erlang_c(1, lam) == pytest.approx(lam)


@pytest.mark.parametrize("rho", [0.3, 0.8, 1.0, 1.5, 4.0])
@pytest.mark.parametrize("k", [1, 2, 5, 20])
def test_mm1k_closed_form_equals_mmck_with_one_server(rho: float, k: int) -> None:
    assert mmck_blocking(rho, 1.0, 1, k) == pytest.approx(mm1k_blocking(rho, 1.0, k), rel=1e-12)


def test_mmck_blocking_limits_and_textbook_values() -> None:
    assert mm1k_blocking(1.0, 1.0, 5) == pytest.approx(1 / 6)  # ρ = 1: uniform over 0..K
    assert mm1k_blocking(0.8, 1.0, 5) == pytest.approx(0.2 * 0.8**5 / (1 - 0.8**6))
    assert mmck_blocking(1.6, 1.0, 2, 2) == pytest.approx(erlang_b(2, 1.6))  # K = c: Erlang B
    assert mmck_blocking(1.6, 1.0, 3, 2) == pytest.approx(erlang_b(2, 1.6))  # K < c: K servers
    assert mmck_blocking(0.5, 1.0, 2, 500) == pytest.approx(0.0, abs=1e-12)
    assert mmck_blocking(4.0, 1.0, 2, 10_000) == pytest.approx(0.5)  # ρ = 2: half the arrivals dropped
    assert mm1k_blocking(2.0, 1.0, 10_000) == pytest.approx(0.5)
    assert mmck_blocking(0.0, 1.0, 2, 3) == 0.0


def test_cobham_waits_for_three_classes() -> None:
    # M/M/1, λ = (0.08, 0.24, 0.48), μ = 1: W0 = 0.8; σ = 0.08, 0.32, 0.8.
    assert priority_waits([0.08, 0.24, 0.48], 1.0) == pytest.approx(
        [0.8 / 0.92, 0.8 / (0.92 * 0.68), 0.8 / (0.68 * 0.2)]
    )
    # M/M/2, λ = (0.16, 0.48, 0.96): W0 = C(2, 1.6) / 2 = 16/45.
    w0 = 16 / 45
    assert priority_waits([0.16, 0.48, 0.96], 1.0, 2) == pytest.approx(
        [w0 / 0.92, w0 / (0.92 * 0.68), w0 / (0.68 * 0.2)]
    )
    assert priority_waits([0.7], 1.0, 3) == pytest.approx([mmc_wait(0.7, 1.0, 3)])


@pytest.mark.parametrize("c", [1, 2, 5])
def test_cobham_waits_obey_the_conservation_law(c: int) -> None:
    lams = [0.1 * c, 0.25 * c, 0.5 * c]
    waits = priority_waits(lams, 1.0, c)
    assert weighted_mean_wait(lams, waits) == pytest.approx(conservation_wait(lams, 1.0, c))
    assert conservation_wait(lams, 1.0, c) == pytest.approx(mmc_wait(0.85 * c, 1.0, c))


def test_formulas_refuse_unstable_and_bad_input() -> None:
    with pytest.raises(ValueError, match="unstable"):
        mm1_wait(1.0, 1.0)
    with pytest.raises(ValueError, match="unstable"):
        priority_waits([1.0, 1.0], 1.0, 2)
    with pytest.raises(ValueError, match="a must be in"):
        erlang_c(2, 2.0)
    with pytest.raises(ValueError, match="k must be >= 1"):
        mmck_blocking(1.0, 1.0, 1, 0)
    with pytest.raises(ValueError, match="mu must be"):
        mmc_wait(1.0, 0.0, 2)


def test_batch_means_interval_is_student_t_over_batch_means() -> None:
    est = batch_means([1.0, 2.0, 3.0, 4.0], 4)
    # s = sqrt(5/3), t(0.975, 3) = 3.182446
    assert est.mean == pytest.approx(2.5)
    assert est.half_width == pytest.approx(3.182446 * math.sqrt(5 / 3) / 2, rel=1e-6)
    # The leading remainder is dropped: batches of 2 over [9, 1, 1, 3, 3].
    assert batch_means([9.0, 1.0, 1.0, 3.0, 3.0], 2).mean == pytest.approx(2.0)
    assert batch_means([7.0] * 10, 5).half_width == 0.0
    with pytest.raises(ValueError, match="batches"):
        batch_means([1.0], 2)


def test_batch_means_covers_the_true_mean_of_iid_data() -> None:
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(400):
        est = batch_means(rng.normal(3.0, 1.0, 200), 10)
        covered += abs(est.mean - 3.0) <= est.half_width
    assert 0.92 <= covered / 400 <= 0.98


def test_expected_queue_wait_for_scenarios() -> None:
    strict = mm(rate=0.8, levels=3, priority_weights=MIX, events=10)
    assert expected_queue_wait(strict) == pytest.approx(priority_waits([0.08, 0.24, 0.48], 1.0))
    assert expected_mean_queue_wait(strict) == pytest.approx(4.0)
    fifo = mm(load=0.8, consumers=2, service_mean=0.005, producers=4, events=10)
    assert expected_queue_wait(fifo) == pytest.approx([mmc_wait(320.0, 200.0, 2)])
    aging = mm(rate=0.8, levels=3, discipline="aging", age_step=1.0, events=10)
    assert expected_queue_wait(aging) == [None, None, None]
    assert expected_mean_queue_wait(aging) == pytest.approx(4.0)
    for no_theory in (
        mm(rate=0.8, maxsize=10, events=10),
        mm(rate=0.8, service="lognormal", events=10),
        mm(rate=0.8, arrival="constant", events=10),
        mm(rate=1.0, events=10),  # unstable
        mm(rate=0.8, ttl=5.0, events=10),
        mm(rate=0.8, failure_rate=0.1, events=10),
    ):
        assert expected_queue_wait(no_theory) == [None]
        assert expected_mean_queue_wait(no_theory) is None


# ---------------------------------------------------------------------- sample paths


def fifo_reference(
    arrivals_ns: Sequence[int], services_ns: Sequence[int], c: int, k: int | None
) -> tuple[list[int], int]:
    """Queue waits of the admitted events (in arrival order) and the number dropped, for
    FIFO with ``c`` servers and room for ``k`` events in the system (None: unbounded),
    computed directly from the arrival and service times."""
    free = [0] * c  # when each server is next free
    departures: list[int] = []  # of the events in the system
    waits, dropped = [], 0
    for t, s in zip(arrivals_ns, services_ns, strict=True):
        while departures and departures[0] <= t:
            heapq.heappop(departures)
        if k is not None and len(departures) >= k:
            dropped += 1
            continue
        start = max(t, heapq.heappop(free))
        heapq.heappush(free, start + s)
        heapq.heappush(departures, start + s)
        waits.append(start - t)
    return waits, dropped


@pytest.mark.parametrize(
    ("consumers", "rate", "maxsize"),
    [(1, 0.8, "unbounded"), (2, 1.6, "unbounded"), (1, 0.9, 3), (2, 2.4, 4)],
)
def test_run_follows_the_fifo_sample_path_exactly(consumers: int, rate: float, maxsize: int | str) -> None:
    """The strongest oracle, and a cheap one: on the same arrival and service times
    (the producer's seeded schedule, recomputed here), every queue wait and every
    drop equals the textbook FIFO recursion's, so a broker holding ``maxsize +
    consumers`` events is M/M/c/K with ``K = maxsize + consumers``."""
    overflow = "block" if maxsize == "unbounded" else "drop-new"
    sc = mm(rate=rate, consumers=consumers, maxsize=maxsize, overflow=overflow, events=20_000, seed=11)
    result = run_keeping_samples(sc)
    # The runner's producer 0 draws its schedule from default_rng([seed, 0]).
    chunks = list(
        sc.workload(0).chunks(np.random.default_rng([sc.seed, 0]), events=sc.events, duration_s=None)
    )
    arrivals = np.concatenate([ch.intended_ns for ch in chunks if ch.intended_ns is not None]).tolist()
    services = np.concatenate([ch.service_ns for ch in chunks]).tolist()
    k = None if maxsize == "unbounded" else int(maxsize) + consumers
    waits, dropped = fifo_reference(arrivals, services, consumers, k)
    simulated = result.recorder.samples_ns("queue_wait", 0)
    assert result.stats.dropped_full[0] == dropped
    assert len(simulated) == len(waits)
    # Virtual time is a float of seconds: a few ns of rounding, never more.
    assert np.abs(simulated - np.asarray(waits)).max() <= 100


# ---------------------------------------------------------------------- drops


@pytest.mark.parametrize(
    ("consumers", "rho", "maxsize", "events", "replications"),
    [
        pytest.param(1, 0.9, 2, 15_000, 10, id="M/M/1/3-rho0.9"),
        pytest.param(1, 1.5, 4, 5_000, 10, id="M/M/1/5-rho1.5"),
        pytest.param(2, 0.9, 2, 15_000, 10, id="M/M/2/4-rho0.9"),
        pytest.param(2, 1.5, 4, 5_000, 10, id="M/M/2/6-rho1.5"),
    ],
)
def test_drop_new_share_matches_mmck_blocking(
    consumers: int, rho: float, maxsize: int, events: int, replications: int
) -> None:
    """Independent replications (a run starts empty, but K is small, so the transient
    lasts a few service times out of thousands)."""
    lam = rho * consumers
    sc = mm(rate=lam, consumers=consumers, maxsize=maxsize, overflow="drop-new", events=events)
    shares = []
    for i in range(replications):
        stats = run_scenario(sc, seed=100 + i).stats
        shares.append(stats.dropped_full[0] / stats.offered[0])
    expected = expected_drop_share(sc)
    assert expected == mmck_blocking(lam, 1.0, consumers, maxsize + consumers)
    assert_matches(batch_means(shares, replications, CONFIDENCE), expected, f"P_drop K={maxsize + consumers}")


def test_expected_drop_share_only_where_mmck_applies() -> None:
    assert expected_drop_share(mm(rate=0.9, maxsize=2, overflow="drop-new", events=10)) == pytest.approx(
        mm1k_blocking(0.9, 1.0, 3)
    )
    for other in (
        dict(overflow="block"),  # no drops
        dict(overflow="drop-new", maxsize="unbounded"),
        dict(overflow="drop-new", service="lognormal"),
        dict(overflow="drop-new", stall_at=1.0, stall=5.0),
        dict(overflow="drop-new", failure_rate=0.1),
    ):
        assert expected_drop_share(mm(**{"rate": 0.9, "maxsize": 2, "events": 10, **other})) is None, other


# ---------------------------------------------------------------------- queue waits


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mm1_queue_wait() -> None:
    sc = mm(rate=0.8, events=1_200_000, seed=1)
    (est,), _ = estimates(queue_waits(sc))
    assert_matches(est, 4.0, "M/M/1 W_q")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_mmc_queue_wait() -> None:
    sc = mm(rate=1.6, consumers=2, events=1_200_000, seed=1)
    (est,), _ = estimates(queue_waits(sc))
    assert_matches(est, mmc_wait(1.6, 1.0, 2), "M/M/2 W_q")


def priority_scenario(consumers: int, rho: float, events: int, **params: Any) -> Scenario:
    return mm(
        rate=rho * consumers, consumers=consumers, levels=3, priority_weights=MIX, events=events, **params
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "consumers",
    # c=1 shares its run (cached) with the strict conservation test: keep them on one worker.
    [pytest.param(1, marks=pytest.mark.xdist_group("cobham-c1")), 2],
)
def test_cobham_waits_per_class(consumers: int) -> None:
    sc = priority_scenario(consumers, 0.8, 1_200_000, seed=1)
    per_class, _ = estimates(queue_waits(sc))
    expected = expected_queue_wait(sc)
    lams = [0.8 * consumers * w for w in MIX]
    assert expected == pytest.approx(priority_waits(lams, 1.0, consumers))
    for k, (est, theory) in enumerate(zip(per_class, expected, strict=True)):
        assert theory is not None
        assert_matches(est, theory, f"Cobham c={consumers} class {k}")


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.xdist_group("cobham-c1")
def test_conservation_law_under_strict_priority() -> None:
    sc = priority_scenario(1, 0.8, 1_200_000, seed=1)  # the Cobham run, cached
    _, pooled = estimates(queue_waits(sc))
    assert_matches(pooled, mm1_wait(0.8, 1.0), "strict: λ-weighted W_q")


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(dict(discipline="aging", age_step=1.0), id="aging"),
        pytest.param(dict(discipline="wrr", weights=[4, 2, 1]), id="wrr"),
    ],
)
def test_conservation_law_under_aging_and_wrr(params: dict[str, Any]) -> None:
    sc = priority_scenario(1, 0.6, 400_000, seed=1, **params)
    per_class, pooled = estimates(queue_waits(sc))
    expected = expected_mean_queue_wait(sc)
    assert expected is not None
    assert expected == pytest.approx(mm1_wait(0.6, 1.0))
    assert_matches(pooled, expected, f"{params['discipline']}: λ-weighted W_q")
    # The discipline does act: the classes' waits differ from strict priority's.
    strict = priority_waits([0.6 * w for w in MIX], 1.0)
    assert abs(per_class[0].mean - strict[0]) > 3 * per_class[0].half_width
