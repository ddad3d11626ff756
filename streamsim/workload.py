"""Seeded, pure workload models: arrival schedules, priority mixes and service times.

Nothing here knows about event loops: a schedule is a stream of numpy chunks, so it
tests synchronously and a 10M-event run never holds 10M timestamps at once.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = ("Chunk", "ServiceTime", "Trace", "Workload", "load_trace")

NS = 1_000_000_000
CHUNK = 16_384  # events generated per numpy call: amortises numpy overhead, bounds memory
MAX_EVENTS_PER_SECOND = 1_000_000  # of a replayed trace, after rate_scale: bounds a block's memory


@dataclasses.dataclass(frozen=True, slots=True)
class Chunk:
    """The next events of one producer's schedule, as parallel arrays."""

    intended_ns: np.ndarray | None  # int64 send times from the start, ns; None in closed loop
    priority: np.ndarray  # int64 levels
    service_ns: np.ndarray  # int64 service time of each event, ns


@dataclasses.dataclass(frozen=True)
class ServiceTime:
    """Service-time distribution: ``constant``, ``exponential`` or ``lognormal``.

    ``mean_s`` is the mean in seconds; ``sigma`` is the lognormal shape (the standard
    deviation of the underlying normal).
    """

    kind: str
    mean_s: float
    sigma: float = 1.0

    def draw_ns(self, rng: np.random.Generator, n: int) -> np.ndarray:
        mean_ns = self.mean_s * NS
        if self.kind == "constant":
            return np.full(n, round(mean_ns), dtype=np.int64)
        if self.kind == "exponential":
            return rng.exponential(mean_ns, n).astype(np.int64)
        if self.kind == "lognormal":
            if mean_ns == 0:  # degenerate, like constant and exponential with mean 0 (log(0) fails)
                return np.zeros(n, dtype=np.int64)
            mu = math.log(mean_ns) - self.sigma**2 / 2  # so that the mean is mean_ns
            return rng.lognormal(mu, self.sigma, n).astype(np.int64)
        raise ConfigError(f"service must be constant, exponential or lognormal, got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class Trace:
    """A traffic trace. Either per-second arrival counts (``second,events``; events are
    placed uniformly at random within their second) or explicit events
    (``time_s,priority[,service_ms]``)."""

    path: str
    seconds: np.ndarray | None = None  # per-second counts: the second index
    counts: np.ndarray | None = None  # per-second counts: events in that second
    times_s: np.ndarray | None = None  # explicit events: offsets in seconds, sorted
    priorities: np.ndarray | None = None  # explicit events: levels
    service_s: np.ndarray | None = None  # explicit events: service times, seconds (NaN: draw)

    @property
    def span_s(self) -> float:
        if self.seconds is not None:
            return float(self.seconds[-1] + 1) if len(self.seconds) else 0.0
        assert self.times_s is not None
        return float(self.times_s[-1]) if len(self.times_s) else 0.0

    @property
    def mean_rate_hz(self) -> float:
        if self.counts is not None:
            total = int(self.counts.sum())
        else:  # `len(times_s or ())` raised: an array's truth value is ambiguous
            total = len(self.times_s) if self.times_s is not None else 0
        return total / self.span_s if self.span_s else 0.0


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace CSV; bad rows raise ``ConfigError`` naming the line."""
    path = Path(path)
    try:
        # A ".gz" trace is read as is: the shipped real traces are kept compressed.
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt", newline="") as f:
            rows = list(csv.reader(f))
    except OSError as exc:
        raise ConfigError(f"trace: cannot read {str(path)!r}: {exc.strerror or exc}") from None
    except (EOFError, UnicodeDecodeError) as exc:
        raise ConfigError(f"trace: {path} is not a readable CSV: {exc}") from None
    if not rows:
        raise ConfigError(f"trace: {path} is empty")
    header = [h.strip() for h in rows[0]]
    if header == ["second", "events"]:
        return _per_second_trace(path, rows[1:])
    if header[:2] == ["time_s", "priority"] and len(header) <= 3:
        return _event_trace(path, rows[1:], with_service=header[2:] == ["service_ms"])
    raise ConfigError(
        f"trace: {path} header must be 'second,events' or 'time_s,priority[,service_ms]', "
        f"got {','.join(header)!r}"
    )


def _numbers(path: Path, rows: list[list[str]], columns: int, kind: type) -> np.ndarray:
    values = []
    for line, row in enumerate(rows, start=2):
        if len(row) != columns:
            raise ConfigError(f"trace: {path} line {line}: expected {columns} fields, got {len(row)}")
        try:
            values.append([kind(v) for v in row])
            if not all(math.isfinite(v) for v in values[-1]):  # float() accepts "nan" and "inf"
                raise ValueError
        except ValueError:
            raise ConfigError(f"trace: {path} line {line}: not a number: {','.join(row)!r}") from None
    return np.array(values, dtype=np.float64).reshape(-1, columns)


def _per_second_trace(path: Path, rows: list[list[str]]) -> Trace:
    data = _numbers(path, rows, 2, int)
    seconds, counts = data[:, 0].astype(np.int64), data[:, 1].astype(np.int64)
    if len(seconds) == 0:
        raise ConfigError(f"trace: {path} has no rows")
    if (counts < 0).any():
        line = int(np.argmax(counts < 0)) + 2
        raise ConfigError(f"trace: {path} line {line}: events must be >= 0")
    if (np.diff(seconds) <= 0).any():
        line = int(np.argmax(np.diff(seconds) <= 0)) + 3
        raise ConfigError(f"trace: {path} line {line}: seconds must increase")
    return Trace(path=str(path), seconds=seconds, counts=counts)


def _event_trace(path: Path, rows: list[list[str]], *, with_service: bool) -> Trace:
    data = _numbers(path, rows, 3 if with_service else 2, float)
    if len(data) == 0:
        raise ConfigError(f"trace: {path} has no rows")
    times, priorities = data[:, 0], data[:, 1]
    if (times < 0).any() or (np.diff(times) < 0).any():
        bad = np.flatnonzero((times < 0) | np.r_[False, np.diff(times) < 0])[0]
        raise ConfigError(f"trace: {path} line {bad + 2}: time_s must be >= 0 and non-decreasing")
    if (priorities != np.floor(priorities)).any() or (priorities < 0).any():
        bad = np.flatnonzero((priorities != np.floor(priorities)) | (priorities < 0))[0]
        raise ConfigError(f"trace: {path} line {bad + 2}: priority must be an integer >= 0")
    service = data[:, 2] / 1e3 if with_service else None
    if service is not None and (service <= 0).any():
        bad = np.flatnonzero(service <= 0)[0]
        raise ConfigError(f"trace: {path} line {bad + 2}: service_ms must be > 0")
    return Trace(path=str(path), times_s=times, priorities=priorities.astype(np.int64), service_s=service)


@dataclasses.dataclass(frozen=True)
class Workload:
    """What one producer emits: when (arrival process), how urgent (priority mix) and
    how long each event takes to handle (service time).

    Arrival kinds: ``closed`` (as fast as the broker admits), ``constant``, ``poisson``,
    ``bursty`` (Poisson at ``rate_hz`` during ``on_s``, silent during ``off_s``) and
    ``trace`` (replayed ``speed`` times faster, counts scaled by ``rate_scale``).
    """

    arrival: str
    priority_weights: Sequence[float]
    service: ServiceTime
    rate_hz: float = 0.0
    on_s: float = 0.0
    off_s: float = 0.0
    trace: Trace | None = None
    speed: float = 1.0
    rate_scale: float = 1.0
    producers: int = 1  # the offered load is split evenly over this many producers
    index: int = 0  # which of them this is

    def chunks(
        self, rng: np.random.Generator, *, events: int | None, duration_s: float | None
    ) -> Iterator[Chunk]:
        """Yield this producer's schedule until ``events`` are emitted or the
        schedule passes ``duration_s`` (both given: whichever comes first; in closed
        loop the producer itself stops at ``duration_s``)."""
        if events is None and duration_s is None:
            raise ConfigError("a workload needs events or duration")
        if self.arrival == "trace" and self.trace is not None and self.trace.times_s is not None:
            yield from self._event_trace_chunk(rng, events, duration_s)
            return
        weights = np.asarray(self.priority_weights, dtype=np.float64)
        p = weights / weights.sum()
        horizon_ns = None if duration_s is None else round(duration_s * NS)
        emitted = 0
        for times in self._times(rng):
            past_horizon = False
            if times is None:
                n = CHUNK
            else:
                if horizon_ns is not None:
                    cut = int(np.searchsorted(times, horizon_ns))
                    past_horizon = cut < len(times)
                    times = times[:cut]
                n = len(times)
            if events is not None and n > events - emitted:
                n = events - emitted
                times = None if times is None else times[:n]
            if n > 0:
                priority = rng.choice(len(p), size=n, p=p).astype(np.int64)
                yield Chunk(times, priority, self.service.draw_ns(rng, n))
            emitted += n
            if past_horizon or (events is not None and emitted >= events):
                return

    def _event_trace_chunk(
        self, rng: np.random.Generator, events: int | None, duration_s: float | None
    ) -> Iterator[Chunk]:
        """Explicit-event traces: producer ``index`` replays rows index, index+P, ..."""
        trace = self.trace
        assert trace is not None
        assert trace.times_s is not None
        assert trace.priorities is not None
        if self.speed <= 0:
            raise ConfigError(f"speed must be > 0, got {self.speed}")
        rows = slice(self.index, None, self.producers)
        # Rounded, not truncated: 1.001 * 1e9 is 1000999999.9999999 in floating point.
        times = np.rint(trace.times_s[rows] * (NS / self.speed)).astype(np.int64)
        priority = trace.priorities[rows]
        if trace.service_s is not None:
            service = np.rint(trace.service_s[rows] * NS).astype(np.int64)
        else:
            service = self.service.draw_ns(rng, len(times))  # the run's seeded rng, not one per index
        n = len(times)
        if duration_s is not None:
            n = int(np.searchsorted(times, round(duration_s * NS)))
        if events is not None:
            n = min(n, events)
        if n:
            yield Chunk(times[:n], priority[:n], service[:n])

    def _times(self, rng: np.random.Generator) -> Iterator[np.ndarray | None]:
        """Absolute intended send times (ns from start), chunk by chunk; ``None``
        chunks in closed loop."""
        kind = self.arrival
        if kind == "closed":
            while True:
                yield None
        rate = self.rate_hz / self.producers
        if kind in ("constant", "poisson", "bursty") and rate <= 0:
            raise ConfigError(f"rate must be > 0 for arrival {kind!r}, got {self.rate_hz}")
        if kind == "constant":
            # Producers are phase-shifted by a random offset so they do not fire in lockstep.
            start = rng.uniform(0, NS / rate)
            k = 0
            while True:
                yield (start + (np.arange(k, k + CHUNK) * (NS / rate))).astype(np.int64)
                k += CHUNK
        elif kind == "poisson":
            t = 0.0
            while True:
                gaps = rng.exponential(NS / rate, CHUNK)
                times = t + np.cumsum(gaps)
                t = float(times[-1])
                yield times.astype(np.int64)
        elif kind == "bursty":
            yield from self._bursty(rng, rate)
        elif kind == "trace":
            yield from self._replay(rng)
        else:
            raise ConfigError(f"arrival must be closed, constant, poisson, bursty or trace, got {kind!r}")

    def _bursty(self, rng: np.random.Generator, rate: float) -> Iterator[np.ndarray]:
        if self.on_s <= 0 or self.off_s < 0:
            raise ConfigError(
                f"bursty arrival needs on > 0 and off >= 0, got on={self.on_s}, off={self.off_s}"
            )
        on_ns, period_ns = self.on_s * NS, (self.on_s + self.off_s) * NS
        busy = 0.0  # time spent "on" so far: arrivals are Poisson in on-time, mapped to wall
        while True:
            busy_times = busy + np.cumsum(rng.exponential(NS / rate, CHUNK))
            busy = float(busy_times[-1])
            cycles = np.floor(busy_times / on_ns)
            yield (cycles * period_ns + (busy_times - cycles * on_ns)).astype(np.int64)

    def _replay(self, rng: np.random.Generator) -> Iterator[np.ndarray]:
        trace = self.trace
        if trace is None:
            raise ConfigError("arrival 'trace' needs a trace file")
        if self.speed <= 0:
            raise ConfigError(f"speed must be > 0, got {self.speed}")
        scale = self.rate_scale / self.producers
        assert trace.counts is not None
        assert trace.seconds is not None
        peak = float(trace.counts.max(initial=0)) * scale
        if peak > MAX_EVENTS_PER_SECOND:
            raise ConfigError(
                f"trace: {peak:,.0f} events in one trace second (rate_scale {self.rate_scale:g}, "
                f"per producer); at most {MAX_EVENTS_PER_SECOND:,}"
            )
        # Thin or multiply each second's count by `scale`, randomly rounded so the
        # mean is exact; place events uniformly within their (sped-up) second. Blocks
        # of seconds hold about CHUNK events each, so memory stays bounded.
        per_second = max(float(trace.counts.mean()) * scale, 1.0) if len(trace.counts) else 1.0
        block = int(min(4096, max(1, CHUNK // per_second)))
        for lo in range(0, len(trace.counts), block):
            counts = trace.counts[lo : lo + block] * scale
            whole = np.floor(counts)
            n = (whole + (rng.random(len(counts)) < counts - whole)).astype(np.int64)
            starts = np.repeat(trace.seconds[lo : lo + block], n).astype(np.float64)
            offsets = rng.random(len(starts))
            times = (starts + offsets) * (NS / self.speed)
            times.sort()
            yield times.astype(np.int64)
