"""Latency histograms: bulk folding must equal hdrh recording value by value."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
from hypothesis import given, settings
from hypothesis import strategies as st

from streamsim.metrics import (
    HIGHEST_NS,
    LATENCY_KINDS,
    PERCENTILES,
    SIGNIFICANT_DIGITS,
    LatencyHistogram,
    LatencyRecorder,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy.typing as npt

HOUR_NS = 3600 * 1_000_000_000
SUMMARY_KEYS = ("count", "mean_ms", "p50_ms", "p90_ms", "p99_ms", "p99_9_ms", "max_ms")

# Latencies from 1 ns to 1 hour: every bucket magnitude the histogram uses in practice.
wide_values = st.lists(st.integers(min_value=1, max_value=HOUR_NS), min_size=1, max_size=300)


def log_uniform(n: int, seed: int = 1) -> npt.NDArray[np.int64]:
    """``n`` values spread evenly over the orders of magnitude from 1 ns to 1 hour."""
    rng = np.random.default_rng(seed)
    return np.exp(rng.uniform(0, np.log(HOUR_NS), n)).astype(np.int64)


def reference(values: Sequence[int]) -> HdrHistogram:
    """What hdrh itself records, one value at a time."""
    hdr = HdrHistogram(1, HIGHEST_NS, SIGNIFICANT_DIGITS)
    for value in values:
        assert hdr.record_value(int(value))
    return hdr


def counts(hdr: HdrHistogram) -> npt.NDArray[np.uint64]:
    return np.ctypeslib.as_array(hdr.counts).copy()


def assert_same_histogram(hist: LatencyHistogram, values: Sequence[int]) -> None:
    ref = reference(values)
    np.testing.assert_array_equal(counts(hist.hdr), counts(ref))
    assert hist.hdr.total_count == ref.total_count == len(values)
    assert hist.hdr.min_value == ref.min_value
    assert hist.hdr.max_value == ref.max_value
    assert hist.count == len(values)
    assert hist.sum_ns == sum(int(v) for v in values)
    assert hist.max_ns == max(int(v) for v in values)


# ------------------------------------------------------------------ bulk add == record_value


def test_bulk_add_equals_recording_one_by_one_over_a_wide_range() -> None:
    values = log_uniform(20_000)
    hist = LatencyHistogram()
    hist.add(values)
    assert_same_histogram(hist, values.tolist())


def test_bulk_add_at_bucket_boundaries_equals_recording_one_by_one() -> None:
    # Powers of two and their neighbours are where the bucket arithmetic can be off by one.
    powers = [1 << k for k in range(47)]  # up to 2**46 ns, 19.5 hours
    values = sorted({max(0, p + d) for p in powers for d in (-1, 0, 1)} | {0, 1, 2047, 2048, 2049})
    hist = LatencyHistogram()
    hist.add(values)
    assert_same_histogram(hist, values)


@settings(max_examples=200, deadline=None)
@given(values=wide_values, split=st.integers(min_value=0, max_value=300))
def test_bulk_add_in_pieces_equals_recording_one_by_one(values: list[int], split: int) -> None:
    hist = LatencyHistogram()
    hist.add(values[:split])  # two folds, as the recorder does between samples; one may be empty
    hist.add(np.array(values[split:], dtype=np.int64))
    assert_same_histogram(hist, values)


def test_values_outside_the_range_are_clipped_not_lost() -> None:
    hist = LatencyHistogram()
    hist.add([-5, 2 * HIGHEST_NS])
    assert_same_histogram(hist, [0, HIGHEST_NS])


def test_adding_nothing_changes_nothing() -> None:
    hist = LatencyHistogram()
    hist.add([])
    hist.add(np.zeros(0, dtype=np.int64))
    assert hist.count == 0
    assert hist.hdr.total_count == 0
    assert not counts(hist.hdr).any()


# ------------------------------------------------------------------ summaries


def hdrh_summary_ms(values: Sequence[int]) -> dict[str, float | int | None]:
    """The summary computed with hdrh's own percentile, capped at the exact max."""
    ref = reference(values)
    top = max(values)
    out: dict[str, float | int | None] = {"count": len(values), "mean_ms": sum(values) / len(values) / 1e6}
    for name, pct in PERCENTILES.items():
        out[f"{name}_ms"] = min(ref.get_value_at_percentile(pct), top) / 1e6
    out["max_ms"] = top / 1e6
    return out


@pytest.mark.parametrize("n", [1, 2, 3, 10, 16, 999, 1000, 5000, 20_000])
def test_summary_percentiles_equal_hdrh_get_value_at_percentile(n: int) -> None:
    # n=16 (p90 rank 14.4), 1000 and 5000 (99.9 / 100 * n lands just above a whole rank in
    # floating point) are where a ceil-based rank used to disagree with hdrh by one rank.
    values = log_uniform(n, seed=n).tolist()
    hist = LatencyHistogram()
    hist.add(values)
    assert hist.summary_ms() == hdrh_summary_ms(values)


@settings(max_examples=100, deadline=None)
@given(values=wide_values)
def test_summary_equals_hdrh_for_any_values(values: list[int]) -> None:
    hist = LatencyHistogram()
    hist.add(values)
    assert hist.summary_ms() == hdrh_summary_ms(values)


@settings(max_examples=50, deadline=None)
@given(values=wide_values, percentile=st.floats(min_value=0.01, max_value=100.0))
def test_percentile_ns_equals_hdrh_get_value_at_percentile(values: list[int], percentile: float) -> None:
    hist = LatencyHistogram()
    hist.add(values)
    assert hist.percentile_ns(percentile) == reference(values).get_value_at_percentile(percentile)


def test_summary_of_one_value_is_that_value_everywhere() -> None:
    hist = LatencyHistogram()
    hist.add([2_500_000])
    assert hist.summary_ms() == {
        "count": 1,
        "mean_ms": 2.5,
        "p50_ms": 2.5,  # capped at the exact max, not the bucket's highest equivalent value
        "p90_ms": 2.5,
        "p99_ms": 2.5,
        "p99_9_ms": 2.5,
        "max_ms": 2.5,
    }


def test_empty_histogram_summary_is_null_with_count_zero() -> None:
    summary = LatencyHistogram().summary_ms()
    assert summary == {"count": 0, **dict.fromkeys(SUMMARY_KEYS[1:])}
    assert tuple(summary) == SUMMARY_KEYS
    assert LatencyHistogram().percentile_ns(50.0) is None
    assert json.dumps(summary) == (
        '{"count": 0, "mean_ms": null, "p50_ms": null, "p90_ms": null, '
        '"p99_ms": null, "p99_9_ms": null, "max_ms": null}'
    )


# ------------------------------------------------------------------ encode / decode / merge


def test_encode_decode_round_trips_counts_sum_and_max() -> None:
    values = log_uniform(10_000)
    hist = LatencyHistogram()
    hist.add(values)
    data = json.loads(json.dumps(hist.encode()))  # as stored in a report
    back = LatencyHistogram.decode(data)
    np.testing.assert_array_equal(counts(back.hdr), counts(hist.hdr))
    assert back.count == hist.count == 10_000
    assert back.sum_ns == hist.sum_ns
    assert back.max_ns == hist.max_ns
    assert back.summary_ms() == hist.summary_ms()


def test_encode_decode_round_trips_an_empty_histogram() -> None:
    back = LatencyHistogram.decode(LatencyHistogram().encode())
    assert back.count == 0
    assert not counts(back.hdr).any()
    assert back.summary_ms() == LatencyHistogram().summary_ms()


def test_decoded_histogram_keeps_folding_values() -> None:
    values = log_uniform(2000)
    back = LatencyHistogram.decode(_filled(values[:1000]).encode())
    back.add(values[1000:])
    np.testing.assert_array_equal(counts(back.hdr), counts(reference(values.tolist())))
    assert back.count == 2000
    assert back.sum_ns == int(values.sum())


def _filled(values: npt.NDArray[np.int64] | list[int]) -> LatencyHistogram:
    hist = LatencyHistogram()
    hist.add(values)
    return hist


@settings(max_examples=50, deadline=None)
@given(first=st.lists(st.integers(min_value=1, max_value=HOUR_NS), max_size=200), second=wide_values)
def test_merge_equals_adding_both_value_sets(first: list[int], second: list[int]) -> None:
    merged = _filled(first)
    merged.merge(_filled(second))
    assert_same_histogram(merged, first + second)
    assert merged.summary_ms() == _filled(first + second).summary_ms()


def test_merging_an_empty_histogram_changes_nothing() -> None:
    values = log_uniform(100).tolist()
    hist = _filled(values)
    hist.merge(LatencyHistogram())
    assert_same_histogram(hist, values)


# ------------------------------------------------------------------ recorder


def test_recorder_fold_moves_raw_values_into_their_histograms() -> None:
    recorder = LatencyRecorder(levels=2)
    recorder.raw["queue_wait"][1].extend([5, 7])
    recorder.raw["service"][0].append(1_000)
    assert recorder.pending() == 3
    recorder.fold()
    assert recorder.pending() == 0
    assert recorder.histograms["queue_wait"][1].sum_ns == 12
    assert recorder.histograms["service"][0].max_ns == 1_000
    assert {kind: [h.count for h in hists] for kind, hists in recorder.histograms.items()} == {
        kind: {"queue_wait": [0, 2], "service": [1, 0]}.get(kind, [0, 0]) for kind in LATENCY_KINDS
    }
