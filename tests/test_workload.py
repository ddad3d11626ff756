"""Seeded workload models: arrival schedules, priority mixes, service times, traces.

Statistical checks use a tolerance of five standard deviations of the quantity under
test, derived in each test from the distribution itself (never tuned to the seed): a
correct generator fails such a check with probability below 1e-6 for any seed, while
a wrong rate, weight or mean of a few percent is far outside it.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from streamsim.errors import ConfigError
from streamsim.workload import CHUNK, NS, ServiceTime, Trace, Workload, load_trace

if TYPE_CHECKING:
    import numpy.typing as npt

    Ints = npt.NDArray[np.int64]

# The real traces ship with the project (bench/traces/, gzipped), so these tests always run.
TRACES = Path(__file__).resolve().parents[1] / "bench" / "traces"
NASA = TRACES / "nasa-1995-07-01.csv.gz"
TWITTER = TRACES / "twitter-2021-08-01-6h.csv.gz"

WEIGHTS = (0.1, 0.3, 0.6)
BASE = Workload(arrival="poisson", priority_weights=WEIGHTS, service=ServiceTime("exponential", 0.002))


@dataclasses.dataclass
class Schedule:
    """A whole schedule, concatenated from its chunks."""

    intended_ns: Ints | None  # None in closed loop
    priority: Ints
    service_ns: Ints
    chunks: int

    def times(self) -> Ints:
        assert self.intended_ns is not None
        return self.intended_ns


def schedule(
    workload: Workload,
    seed: int | list[int] = 1,
    *,
    events: int | None = None,
    duration_s: float | None = None,
) -> Schedule:
    chunks = list(workload.chunks(np.random.default_rng(seed), events=events, duration_s=duration_s))
    times = [c.intended_ns for c in chunks if c.intended_ns is not None]
    if chunks:
        assert len(times) in (0, len(chunks)), "closed loop chunks have no times, open loop chunks all do"
    empty = np.zeros(0, dtype=np.int64)
    return Schedule(
        intended_ns=np.concatenate(times) if times else (empty if not chunks else None),
        priority=np.concatenate([c.priority for c in chunks]) if chunks else empty,
        service_ns=np.concatenate([c.service_ns for c in chunks]) if chunks else empty,
        chunks=len(chunks),
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.fixture
def small_trace(tmp_path: Path) -> Trace:
    """A per-second trace, 1000 s at 20..180 events/s, in a sine shape."""
    counts = (100 + 80 * np.sin(np.arange(1000) / 50)).astype(np.int64)
    rows = "".join(f"{s},{c}\n" for s, c in enumerate(counts))
    return load_trace(write(tmp_path / "small.csv", "second,events\n" + rows))


def workloads(trace: Trace) -> dict[str, Workload]:
    """One workload per arrival kind, offering about 1000 events/s (the trace 100/s)."""
    return {
        "constant": dataclasses.replace(BASE, arrival="constant", rate_hz=1000.0),
        "poisson": dataclasses.replace(BASE, arrival="poisson", rate_hz=1000.0),
        "bursty": dataclasses.replace(BASE, arrival="bursty", rate_hz=2500.0, on_s=0.2, off_s=0.3),
        "trace": dataclasses.replace(BASE, arrival="trace", trace=trace),
        "closed": dataclasses.replace(BASE, arrival="closed"),
    }


KINDS = ("constant", "poisson", "bursty", "trace", "closed")
OPEN_KINDS = ("constant", "poisson", "bursty", "trace")


# ------------------------------------------------------------------ reproducibility


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_gives_identical_schedule(kind: str, small_trace: Trace) -> None:
    workload = workloads(small_trace)[kind]
    a = schedule(workload, [7, 0], events=40_000)
    b = schedule(workload, [7, 0], events=40_000)
    if kind == "closed":
        assert a.intended_ns is None
        assert b.intended_ns is None
    else:
        np.testing.assert_array_equal(a.times(), b.times())
    np.testing.assert_array_equal(a.priority, b.priority)
    np.testing.assert_array_equal(a.service_ns, b.service_ns)


@pytest.mark.parametrize("kind", KINDS)
def test_different_seed_gives_different_schedule(kind: str, small_trace: Trace) -> None:
    workload = workloads(small_trace)[kind]
    a = schedule(workload, [7, 0], events=1000)
    b = schedule(workload, [8, 0], events=1000)
    assert not np.array_equal(a.priority, b.priority)
    assert not np.array_equal(a.service_ns, b.service_ns)
    if kind != "closed":
        assert not np.array_equal(a.times(), b.times())


@pytest.mark.parametrize("kind", OPEN_KINDS)
def test_open_loop_times_are_sorted_and_non_negative(kind: str, small_trace: Trace) -> None:
    times = schedule(workloads(small_trace)[kind], events=50_000).times()
    assert times.dtype == np.int64
    assert times[0] >= 0
    assert (np.diff(times) >= 0).all()


# ------------------------------------------------------------------ arrival processes


def test_constant_rate_gaps_are_exact_when_the_period_is_whole_nanoseconds() -> None:
    times = schedule(dataclasses.replace(BASE, arrival="constant", rate_hz=1000.0), events=50_000).times()
    assert 0 <= times[0] < 1_000_000  # a random phase within one period
    assert set(np.diff(times).tolist()) == {1_000_000}  # across the 16384-event chunk boundaries too


def test_constant_rate_with_fractional_period_never_drifts() -> None:
    period = NS / 3
    times = schedule(dataclasses.replace(BASE, arrival="constant", rate_hz=3.0), events=40_000).times()
    assert set(np.diff(times).tolist()) <= {333_333_333, 333_333_334}
    drift = (times - times[0]) - np.arange(len(times)) * period
    assert np.abs(drift).max() <= 1.0


def test_constant_rate_over_a_duration_emits_exactly_rate_times_duration() -> None:
    s = schedule(dataclasses.replace(BASE, arrival="constant", rate_hz=1000.0), duration_s=10.0)
    assert len(s.times()) == 10_000


def test_poisson_mean_rate_matches_within_five_sigma() -> None:
    rate_hz, duration_s = 2000.0, 100.0
    n = len(schedule(dataclasses.replace(BASE, rate_hz=rate_hz), duration_s=duration_s).times())
    # The count of a Poisson process over T is Poisson(rate*T): sd = sqrt(rate*T) = 447 here,
    # so five sigma is 1.1% of the expected 200_000.
    expected = rate_hz * duration_s
    assert abs(n - expected) <= 5 * math.sqrt(expected)


def test_poisson_counts_per_bin_have_dispersion_one() -> None:
    times = schedule(dataclasses.replace(BASE, rate_hz=2000.0), duration_s=100.0).times()
    counts = np.bincount(times // (NS // 100), minlength=10_000)[:10_000]  # 10 ms bins, mean 20
    # Poisson counts have variance == mean. For k bins the variance/mean ratio has
    # sd ~ sqrt(2/(k-1)) = 0.014 with k=10_000; five sigma is 0.071. A constant rate gives 0.
    assert abs(counts.var(ddof=1) / counts.mean() - 1) <= 5 * math.sqrt(2 / (len(counts) - 1))


def test_bursty_has_no_arrivals_during_off_periods() -> None:
    on_s, off_s, rate_hz, duration_s = 0.2, 0.3, 1000.0, 20.0
    workload = dataclasses.replace(BASE, arrival="bursty", rate_hz=rate_hz, on_s=on_s, off_s=off_s)
    times = schedule(workload, duration_s=duration_s).times()
    period_ns, on_ns = round((on_s + off_s) * NS), round(on_s * NS)
    assert (times % period_ns < on_ns).all()
    assert len(np.unique(times // period_ns)) == 40  # and every on period has some
    # Poisson at rate_hz during the on time only: 40 periods x 0.2 s = 8 s, 8000 expected.
    expected = rate_hz * on_s * duration_s / (on_s + off_s)
    assert abs(len(times) - expected) <= 5 * math.sqrt(expected)


def test_bursty_with_zero_off_is_poisson() -> None:
    workload = dataclasses.replace(BASE, arrival="bursty", rate_hz=1000.0, on_s=0.1, off_s=0.0)
    n = len(schedule(workload, duration_s=50.0).times())
    assert abs(n - 50_000) <= 5 * math.sqrt(50_000)


# ------------------------------------------------------------------ priorities and service times


def test_priority_mix_matches_weights_within_five_sigma() -> None:
    n = 200_000
    priority = schedule(dataclasses.replace(BASE, arrival="closed"), events=n).priority
    shares = np.bincount(priority, minlength=3) / n
    for share, weight in zip(shares, WEIGHTS, strict=True):
        # Each level's share is binomial(n, w)/n: sd = sqrt(w(1-w)/n), 0.0011 at w=0.6.
        assert abs(share - weight) <= 5 * math.sqrt(weight * (1 - weight) / n)


def test_priority_weights_are_normalised_and_zero_weight_levels_never_appear() -> None:
    n = 100_000
    workload = dataclasses.replace(BASE, arrival="closed", priority_weights=[3.0, 0.0, 1.0])
    counts = np.bincount(schedule(workload, events=n).priority, minlength=3)
    assert counts[1] == 0
    assert abs(counts[0] / n - 0.75) <= 5 * math.sqrt(0.75 * 0.25 / n)


def test_constant_service_time_is_exact() -> None:
    service = ServiceTime("constant", 0.0025).draw_ns(np.random.default_rng(1), 1000)
    assert service.dtype == np.int64
    assert set(service.tolist()) == {2_500_000}


def test_exponential_service_mean_within_five_sigma() -> None:
    n, mean_s = 200_000, 0.004
    service = ServiceTime("exponential", mean_s).draw_ns(np.random.default_rng(1), n)
    # An exponential's sd equals its mean: the sample mean has relative sd 1/sqrt(n) = 0.22%.
    assert abs(service.mean() / (mean_s * NS) - 1) <= 5 / math.sqrt(n)
    # Its coefficient of variation is 1; the sample's has sd ~ sqrt(2/n) = 0.32%, 0.02 is 6 sigma.
    assert abs(service.std() / service.mean() - 1) < 0.02


@pytest.mark.parametrize("sigma", [0.5, 1.0])
def test_lognormal_service_mean_within_five_sigma(sigma: float) -> None:
    n, mean_s = 200_000, 0.004
    service = ServiceTime("lognormal", mean_s, sigma).draw_ns(np.random.default_rng(1), n)
    # A lognormal's coefficient of variation is sqrt(exp(sigma^2) - 1) (1.31 at sigma=1),
    # so the sample mean has relative sd cv/sqrt(n), 0.29% at sigma=1.
    cv = math.sqrt(math.exp(sigma**2) - 1)
    assert abs(service.mean() / (mean_s * NS) - 1) <= 5 * cv / math.sqrt(n)
    # The median is mean * exp(-sigma^2 / 2), well below the mean, so the shape is right too;
    # the sample median's relative sd is sqrt(pi/2) * sigma / sqrt(n) <= 0.28%, 0.02 is 7 sigma.
    assert abs(np.median(service) / (mean_s * NS * math.exp(-(sigma**2) / 2)) - 1) < 0.02


@pytest.mark.parametrize("kind", ["constant", "exponential", "lognormal"])
def test_zero_mean_service_is_always_zero(kind: str) -> None:
    service = ServiceTime(kind, 0.0).draw_ns(np.random.default_rng(1), 100)
    assert service.tolist() == [0] * 100


def test_unknown_service_kind_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"^service must be constant, exponential or lognormal, got 'pareto'$"
    ):
        ServiceTime("pareto", 0.001).draw_ns(np.random.default_rng(1), 1)


# ------------------------------------------------------------------ limits


@pytest.mark.parametrize("kind", KINDS)
def test_events_limit_is_exact_across_chunks(kind: str, small_trace: Trace) -> None:
    events = 2 * CHUNK + 123
    s = schedule(workloads(small_trace)[kind], events=events)
    assert len(s.priority) == len(s.service_ns) == events
    if kind != "closed":
        assert len(s.times()) == events


@pytest.mark.parametrize("kind", OPEN_KINDS)
def test_duration_limit_cuts_the_schedule_at_the_horizon_exactly(kind: str, small_trace: Trace) -> None:
    workload = workloads(small_trace)[kind]
    cut = schedule(workload, duration_s=30.0).times()
    longer = schedule(workload, events=50_000).times()  # the same seed, reaching past 30 s
    assert longer[-1] >= 30 * NS
    np.testing.assert_array_equal(cut, longer[longer < 30 * NS])


@pytest.mark.parametrize(("events", "duration_s", "expected"), [(500, 10.0, 500), (50_000, 10.0, 10_000)])
def test_events_and_duration_together_stop_at_whichever_comes_first(
    events: int, duration_s: float, expected: int
) -> None:
    workload = dataclasses.replace(BASE, arrival="constant", rate_hz=1000.0)
    assert len(schedule(workload, events=events, duration_s=duration_s).times()) == expected


def test_closed_loop_with_only_a_duration_keeps_producing() -> None:
    chunks = dataclasses.replace(BASE, arrival="closed").chunks(
        np.random.default_rng(1), events=None, duration_s=1.0
    )
    for _ in range(3):  # the producer, not the schedule, stops a closed loop at the duration
        chunk = next(chunks)
        assert chunk.intended_ns is None
        assert len(chunk.priority) == CHUNK


def test_a_workload_without_events_or_duration_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"^a workload needs events or duration$"):
        schedule(BASE)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"arrival": "poisson", "rate_hz": 0.0}, r"^rate must be > 0 for arrival 'poisson', got 0.0$"),
        ({"arrival": "constant", "rate_hz": -1.0}, r"^rate must be > 0 for arrival 'constant', got -1.0$"),
        (
            {"arrival": "bursty", "rate_hz": 10.0, "on_s": 0.0, "off_s": 1.0},
            r"^bursty arrival needs on > 0 and off >= 0, got on=0.0, off=1.0$",
        ),
        ({"arrival": "trace"}, r"^arrival 'trace' needs a trace file$"),
        (
            {"arrival": "uniform"},
            r"^arrival must be closed, constant, poisson, bursty or trace, got 'uniform'$",
        ),
    ],
)
def test_bad_workload_parameters_are_config_errors(changes: dict[str, object], message: str) -> None:
    workload = dataclasses.replace(BASE, **changes)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=message):
        schedule(workload, events=10)


def test_trace_replay_with_non_positive_speed_is_a_config_error(small_trace: Trace) -> None:
    workload = dataclasses.replace(BASE, arrival="trace", trace=small_trace, speed=0.0)
    with pytest.raises(ConfigError, match=r"^speed must be > 0, got 0.0$"):
        schedule(workload, events=10)


# ------------------------------------------------------------------ several producers


def test_poisson_load_split_over_producers_sums_to_the_whole_rate() -> None:
    rate_hz, duration_s, producers = 4000.0, 50.0, 4
    workload = dataclasses.replace(BASE, rate_hz=rate_hz, producers=producers)
    counts = [
        len(schedule(dataclasses.replace(workload, index=i), [3, i], duration_s=duration_s).times())
        for i in range(producers)
    ]
    each = rate_hz / producers * duration_s  # independent Poisson counts: sd sqrt(mean)
    for n in counts:
        assert abs(n - each) <= 5 * math.sqrt(each)
    assert abs(sum(counts) - rate_hz * duration_s) <= 5 * math.sqrt(rate_hz * duration_s)


def test_constant_load_split_over_producers_sums_to_the_whole_rate_exactly() -> None:
    workload = dataclasses.replace(BASE, arrival="constant", rate_hz=4000.0, producers=4)
    schedules = [
        schedule(dataclasses.replace(workload, index=i), [3, i], duration_s=10.0).times() for i in range(4)
    ]
    assert [len(times) for times in schedules] == [10_000] * 4
    for times in schedules:
        assert set(np.diff(times).tolist()) == {1_000_000}  # each producer at a quarter of the rate
    assert len({int(times[0]) for times in schedules}) == 4  # with different phases


def test_trace_load_split_over_producers_sums_to_the_whole_trace(small_trace: Trace) -> None:
    producers, scale = 4, 2.0
    workload = dataclasses.replace(
        BASE, arrival="trace", trace=small_trace, rate_scale=scale, producers=producers
    )
    per_producer = [
        np.bincount(
            schedule(dataclasses.replace(workload, index=i), [5, i], duration_s=1000.0).times() // NS,
            minlength=1000,
        )
        for i in range(producers)
    ]
    per_second = np.sum(per_producer, axis=0)
    assert small_trace.counts is not None
    expected = scale * small_trace.counts
    # Each producer rounds count*scale/P up or down at random (variance <= 1/4 per second),
    # so the sum over P producers and W seconds has sd <= sqrt(P*W)/2 = 31.6 ...
    assert abs(per_second.sum() - expected.sum()) <= 5 * math.sqrt(producers * 1000) / 2
    # ... and no second is off by P or more: each producer is off by less than one.
    assert np.abs(per_second - expected).max() < producers


# ------------------------------------------------------------------ real traces


@pytest.mark.parametrize(
    ("path", "seconds", "mean_hz", "max_events"),
    [(NASA, 86_400, "0.75", 9), (TWITTER, 21_600, "59.8", 274)],
)
def test_real_traces_load_with_their_documented_span_mean_and_max(
    path: Path, seconds: int, mean_hz: str, max_events: int
) -> None:
    trace = real_trace(path)
    assert trace.counts is not None
    assert trace.span_s == seconds
    decimals = len(mean_hz.partition(".")[2])  # as rounded in the traces' README
    assert f"{trace.mean_rate_hz:.{decimals}f}" == mean_hz
    assert int(trace.counts.max()) == max_events


@functools.cache
def real_trace(path: Path) -> Trace:
    """Each real trace is parsed once per session (NASA's 86_400 rows take a while)."""
    return load_trace(path)


def replayed_per_second(trace: Trace, *, speed: float, rate_scale: float, seed: int = 11) -> Ints:
    """Replay ``trace`` whole and count the events in each (sped-up) trace second."""
    assert trace.counts is not None
    workload = dataclasses.replace(BASE, arrival="trace", trace=trace, speed=speed, rate_scale=rate_scale)
    times = schedule(workload, seed, duration_s=trace.span_s / speed).times()
    # back to trace seconds: t * speed / NS, in integers (speed is whole here)
    assert speed == int(speed)
    return np.bincount(times * int(speed) // NS, minlength=len(trace.counts))


def test_twitter_replay_matches_hourly_counts_and_per_second_shape() -> None:
    trace = real_trace(TWITTER)
    assert trace.counts is not None
    speed, scale = 60.0, 1.5  # six hours in six minutes, 1.5 x the load
    replayed = replayed_per_second(trace, speed=speed, rate_scale=scale)
    assert len(replayed) == 21_600
    expected = scale * trace.counts
    for hour in range(6):
        window = slice(hour * 3600, (hour + 1) * 3600)
        # Thinning rounds each second's scaled count up or down at random: variance <= 1/4
        # per second, so a 3600 s window's count has sd <= 30; five sigma is 150 (0.05%).
        assert abs(replayed[window].sum() - expected[window].sum()) <= 5 * math.sqrt(3600) / 2
    assert np.corrcoef(replayed, trace.counts)[0, 1] > 0.99


def test_twitter_replay_thinned_keeps_the_shape() -> None:
    trace = real_trace(TWITTER)
    assert trace.counts is not None
    replayed = replayed_per_second(trace, speed=3600.0, rate_scale=0.25)
    assert abs(replayed.sum() - 0.25 * trace.counts.sum()) <= 5 * math.sqrt(21_600) / 2
    assert np.corrcoef(replayed, trace.counts)[0, 1] > 0.9


def test_nasa_replay_at_scale_one_reproduces_every_second_exactly() -> None:
    trace = real_trace(NASA)
    assert trace.counts is not None
    replayed = replayed_per_second(trace, speed=1.0, rate_scale=1.0)
    np.testing.assert_array_equal(replayed, trace.counts)


def test_nasa_replay_scaled_and_sped_up_matches_windows_and_shape() -> None:
    trace = real_trace(NASA)
    assert trace.counts is not None
    scale = 2.5
    replayed = replayed_per_second(trace, speed=60.0, rate_scale=scale)
    expected = scale * trace.counts
    for window in np.split(np.arange(86_400), 24):  # hourly windows
        assert abs(replayed[window].sum() - expected[window].sum()) <= 5 * math.sqrt(len(window)) / 2
    assert np.corrcoef(replayed, trace.counts)[0, 1] > 0.9


def test_real_trace_replay_with_a_duration_stops_inside_the_window() -> None:
    trace = real_trace(TWITTER)
    assert trace.counts is not None
    workload = dataclasses.replace(BASE, arrival="trace", trace=trace, speed=60.0)
    times = schedule(workload, duration_s=60.0).times()  # the first trace hour
    assert times[-1] < 60 * NS
    assert len(times) == trace.counts[:3600].sum()  # scale 1: no thinning, every event is kept


# ------------------------------------------------------------------ explicit-event traces


EVENT_TRACE = "time_s,priority,service_ms\n0,0,1.5\n0.001,2,0.25\n1.001,1,0.009\n2.5,0,3\n"


def test_explicit_event_trace_replays_exactly(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "events.csv", EVENT_TRACE))
    s = schedule(dataclasses.replace(BASE, arrival="trace", trace=trace), events=100)
    # 1.001 * 1e9 and 0.009 / 1e3 * 1e9 fall just short of whole numbers in floating point
    assert s.times().tolist() == [0, 1_000_000, 1_001_000_000, 2_500_000_000]
    assert s.priority.tolist() == [0, 2, 1, 0]
    assert s.service_ns.tolist() == [1_500_000, 250_000, 9_000, 3_000_000]


def test_explicit_event_trace_speed_divides_times(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "events.csv", EVENT_TRACE))
    s = schedule(dataclasses.replace(BASE, arrival="trace", trace=trace, speed=2.0), events=100)
    assert s.times().tolist() == [0, 500_000, 500_500_000, 1_250_000_000]
    assert s.service_ns.tolist() == [1_500_000, 250_000, 9_000, 3_000_000]  # service is not sped up


def test_explicit_event_trace_respects_events_and_duration(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "events.csv", EVENT_TRACE))
    workload = dataclasses.replace(BASE, arrival="trace", trace=trace)
    assert schedule(workload, events=2).times().tolist() == [0, 1_000_000]
    assert schedule(workload, duration_s=1.001).times().tolist() == [0, 1_000_000]  # the horizon is excluded
    assert schedule(workload, duration_s=1.0011).times().tolist() == [0, 1_000_000, 1_001_000_000]


def test_explicit_event_trace_is_split_row_by_row_over_producers(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "events.csv", EVENT_TRACE))
    workload = dataclasses.replace(BASE, arrival="trace", trace=trace, producers=2)
    first = schedule(dataclasses.replace(workload, index=0), events=100)
    second = schedule(dataclasses.replace(workload, index=1), events=100)
    assert first.times().tolist() == [0, 1_001_000_000]
    assert second.times().tolist() == [1_000_000, 2_500_000_000]
    assert sorted([*first.priority.tolist(), *second.priority.tolist()]) == [0, 0, 1, 2]


def test_explicit_event_trace_without_service_draws_it_from_the_seeded_rng(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "events.csv", "time_s,priority\n0.5,1\n0.75,0\n"))
    constant = dataclasses.replace(BASE, arrival="trace", trace=trace, service=ServiceTime("constant", 0.002))
    s = schedule(constant, events=100)
    assert s.times().tolist() == [500_000_000, 750_000_000]
    assert s.service_ns.tolist() == [2_000_000, 2_000_000]
    drawn = dataclasses.replace(BASE, arrival="trace", trace=trace)
    assert (
        schedule(drawn, 1, events=100).service_ns.tolist()
        == schedule(drawn, 1, events=100).service_ns.tolist()
    )
    assert (
        schedule(drawn, 1, events=100).service_ns.tolist()
        != schedule(drawn, 2, events=100).service_ns.tolist()
    )


def test_explicit_event_trace_span_and_mean_rate(tmp_path: Path) -> None:
    trace = load_trace(write(tmp_path / "events.csv", EVENT_TRACE))
    assert trace.span_s == 2.5
    assert trace.mean_rate_hz == 4 / 2.5


# ------------------------------------------------------------------ bad trace files


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"is empty$"),
        (
            "sec,events\n0,1\n",
            r"header must be 'second,events' or 'time_s,priority\[,service_ms\]', got 'sec,events'$",
        ),
        ("second,events\n", r"has no rows$"),
        ("second,events\n0,1\n1,abc\n", r"line 3: not a number: '1,abc'$"),
        ("second,events\n0,1\n1,1.5\n", r"line 3: not a number: '1,1.5'$"),
        ("second,events\n0,1,2\n", r"line 2: expected 2 fields, got 3$"),
        ("second,events\n0,1\n1,2\n2,-2\n", r"line 4: events must be >= 0$"),
        ("second,events\n0,1\n5,1\n3,1\n", r"line 4: seconds must increase$"),
        ("second,events\n0,1\n0,1\n", r"line 3: seconds must increase$"),
        ("time_s,priority\n0.5,0\n-1,1\n", r"line 3: time_s must be >= 0 and non-decreasing$"),
        ("time_s,priority\n0.5,0\n0.4,1\n", r"line 3: time_s must be >= 0 and non-decreasing$"),
        ("time_s,priority\nnan,0\n", r"line 2: not a number: 'nan,0'$"),
        ("time_s,priority\n0,0\ninf,0\n", r"line 3: not a number: 'inf,0'$"),
        ("time_s,priority\n0.5,1.5\n", r"line 2: priority must be an integer >= 0$"),
        ("time_s,priority\n0.5,0\n0.6,-1\n", r"line 3: priority must be an integer >= 0$"),
        ("time_s,priority,service_ms\n0.5,0,1\n0.6,0,0\n", r"line 3: service_ms must be > 0$"),
        ("time_s,priority,service_ms\n0.5,0\n", r"line 2: expected 3 fields, got 2$"),
    ],
)
def test_bad_trace_file_is_a_one_line_config_error_naming_the_line(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path / "bad.csv", text)
    with pytest.raises(ConfigError, match=message) as info:
        load_trace(path)
    assert str(info.value).startswith(f"trace: {path}")
    assert "\n" not in str(info.value)


def test_missing_trace_file_is_a_one_line_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    with pytest.raises(ConfigError) as info:
        load_trace(path)
    assert str(info.value) == f"trace: cannot read {str(path)!r}: No such file or directory"


def test_gzipped_trace_reads_like_the_plain_csv(tmp_path: Path) -> None:
    plain = tmp_path / "t.csv"
    plain.write_text("second,events\n0,3\n1,0\n2,5\n")
    packed = tmp_path / "t.csv.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = load_trace(plain), load_trace(packed)
    assert a.counts is not None
    assert b.counts is not None
    assert a.counts.tolist() == b.counts.tolist() == [3, 0, 5]


def test_corrupt_gzipped_trace_is_a_one_line_config_error(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(b"second,events\n0,1\n")  # not gzip at all
    with pytest.raises(ConfigError, match=r"^trace: cannot read .*t\.csv\.gz") as info:
        load_trace(path)
    assert "\n" not in str(info.value)


def test_trace_second_beyond_the_replay_limit_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    path.write_text("second,events\n0,3\n1,2000000\n")
    workload = dataclasses.replace(BASE, arrival="trace", trace=load_trace(path))
    with pytest.raises(
        ConfigError, match=r"^trace: 2,000,000 events in one trace second .* at most 1,000,000$"
    ):
        schedule(workload, duration_s=1.0)
