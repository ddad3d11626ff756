"""Latency histograms (HdrHistogram, filled in bulk), per-priority recorders and
summaries.

Recording a value with the ``hdrhistogram`` package costs about 1.2 us, more than a
whole put+get, so the hot path appends raw nanoseconds to plain lists and
``LatencyRecorder.fold()`` moves them into the histograms with numpy, many at a time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ("LATENCY_KINDS", "PERCENTILES", "LatencyHistogram", "LatencyRecorder")

HIGHEST_NS = 24 * 3600 * 1_000_000_000  # longest latency tracked: one day
SIGNIFICANT_DIGITS = 3
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99_9": 99.9}

# Latency kinds, all per priority:
#   queue_wait      admitted into the buffer -> taken by a consumer
#   service         taken -> handler done
#   end_to_end      intended send time -> done (open loop; coordinated-omission free)
#   end_to_end_sent actual send time -> done (what a naive harness reports)
LATENCY_KINDS = ("queue_wait", "service", "end_to_end", "end_to_end_sent")


class LatencyHistogram:
    """An HDR histogram of nanosecond latencies (3 significant digits, constant
    memory), plus the exact count, sum and max of what went in."""

    def __init__(self) -> None:
        self.hdr = HdrHistogram(1, HIGHEST_NS, SIGNIFICANT_DIGITS)
        self._counts = np.ctypeslib.as_array(self.hdr.counts)  # a view: writes go to the histogram
        self.count = 0
        self.sum_ns = 0
        self.max_ns = 0

    def add(self, values_ns: list[int] | np.ndarray) -> None:
        """Record many values at once (clipped to [0, one day])."""
        if len(values_ns) == 0:
            return
        values = np.clip(np.asarray(values_ns, dtype=np.int64), 0, HIGHEST_NS)
        self._counts += np.bincount(self._index(values), minlength=len(self._counts)).astype(np.uint64)
        hdr = self.hdr
        n = len(values)
        hdr.total_count += n
        hdr.min_value = min(hdr.min_value, int(values.min()))
        hdr.max_value = max(hdr.max_value, int(values.max()))
        self.count += n
        self.sum_ns += int(values.sum())
        self.max_ns = max(self.max_ns, int(values.max()))

    def _index(self, values: np.ndarray) -> np.ndarray:
        """Vectorised HdrHistogram counts index (same arithmetic as record_value)."""
        hdr = self.hdr
        # bit_length via frexp is exact here: values stay below 2**53.
        pow2ceiling = np.frexp((values | hdr.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
        bucket = pow2ceiling - hdr.unit_magnitude - (hdr.sub_bucket_half_count_magnitude + 1)
        sub_bucket = values >> (bucket + hdr.unit_magnitude)
        index: np.ndarray = ((bucket + 1) << hdr.sub_bucket_half_count_magnitude) + (
            sub_bucket - hdr.sub_bucket_half_count
        )
        return index

    def merge(self, other: LatencyHistogram) -> None:
        self._counts += other._counts
        self.hdr.total_count += other.hdr.total_count
        self.hdr.min_value = min(self.hdr.min_value, other.hdr.min_value)
        self.hdr.max_value = max(self.hdr.max_value, other.hdr.max_value)
        self.count += other.count
        self.sum_ns += other.sum_ns
        self.max_ns = max(self.max_ns, other.max_ns)

    def percentile_ns(self, percentile: float) -> int | None:
        """The HDR value at ``percentile`` (highest equivalent value), None if empty."""
        if self.count == 0:
            return None
        # hdrh's own rank rule (round half up), so values match get_value_at_percentile;
        # ceil(percentile / 100 * count) overshoots by one rank on float noise (99.9 / 100 * 1000).
        target = self.hdr.get_target_count_at_percentile(percentile)
        index = int(np.searchsorted(np.cumsum(self._counts), target))
        return int(self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index)))

    def summary_ms(self) -> dict[str, float | int | None]:
        """count, mean, p50, p90, p99, p99.9 and max in milliseconds; nulls when empty."""
        out: dict[str, float | int | None] = {"count": self.count}
        if self.count == 0:
            out.update(dict.fromkeys(("mean_ms", *(f"{k}_ms" for k in PERCENTILES), "max_ms")))
            return out
        out["mean_ms"] = self.sum_ns / self.count / 1e6
        cumulative = np.cumsum(self._counts)
        for name, pct in PERCENTILES.items():
            target = self.hdr.get_target_count_at_percentile(pct)
            index = int(np.searchsorted(cumulative, target))
            value = self.hdr.get_highest_equivalent_value(self.hdr.get_value_from_index(index))
            out[f"{name}_ms"] = min(value, self.max_ns) / 1e6  # never above the exact max
        out["max_ms"] = self.max_ns / 1e6
        return out

    def encode(self) -> dict[str, Any]:
        """The HdrHistogram V2 encoding plus the exact sum and max, for the report."""
        return {"hdr": self.hdr.encode().decode("ascii"), "sum_ns": self.sum_ns, "max_ns": self.max_ns}

    @classmethod
    def decode(cls, data: dict[str, Any]) -> LatencyHistogram:
        hist = cls()
        decoded = HdrHistogram.decode(data["hdr"].encode("ascii"))
        hist.hdr.add(decoded)
        hist.count = int(decoded.get_total_count())
        hist.sum_ns = int(data["sum_ns"])
        hist.max_ns = int(data["max_ns"])
        return hist


class LatencyRecorder:
    """Raw per-priority latency buffers (the hot path appends to ``raw[kind][priority]``)
    and the histograms they are folded into.

    With ``keep_samples`` every raw value is also kept, in recording order, for
    analyses that need the series itself (batch means in the theory oracles); it costs
    8 bytes per value and kind, so it is off by default. The hot path is the same
    either way: only ``fold`` looks at the flag.
    """

    def __init__(self, levels: int, *, keep_samples: bool = False) -> None:
        self.levels = levels
        self.keep_samples = keep_samples
        self.raw: dict[str, list[list[int]]] = {kind: [[] for _ in range(levels)] for kind in LATENCY_KINDS}
        self.histograms = {kind: [LatencyHistogram() for _ in range(levels)] for kind in LATENCY_KINDS}
        self._kept: dict[str, list[list[np.ndarray]]] = {
            kind: [[] for _ in range(levels)] for kind in LATENCY_KINDS
        }

    def pending(self) -> int:
        return sum(len(buf) for bufs in self.raw.values() for buf in bufs)

    def fold(self) -> None:
        """Move every raw value into its histogram (and, with ``keep_samples``, into
        the kept series)."""
        for kind, buffers in self.raw.items():
            for priority, buf in enumerate(buffers):
                if buf:
                    self.histograms[kind][priority].add(buf)
                    if self.keep_samples:
                        self._kept[kind][priority].append(np.asarray(buf, dtype=np.int64))
                    buf.clear()

    def samples_ns(self, kind: str, priority: int) -> np.ndarray:
        """Every value of ``kind`` recorded for ``priority`` so far, in recording order
        (for ``queue_wait``: the order consumers took the events), as int64 ns.

        Raises:
            ValueError: the recorder was made without ``keep_samples``.
        """
        if not self.keep_samples:
            raise ValueError("samples are kept only by LatencyRecorder(levels, keep_samples=True)")
        parts = [*self._kept[kind][priority], np.asarray(self.raw[kind][priority], dtype=np.int64)]
        return np.concatenate(parts)
