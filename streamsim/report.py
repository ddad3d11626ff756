"""The report: one versioned, self-describing JSON document per run or sweep.

Strict JSON (no NaN or Infinity), environment captured automatically, written
atomically (temp file, then rename) so a crash never leaves half a report.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError
from .metrics import LATENCY_KINDS, LatencyHistogram, LatencyRecorder

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .reference import Reference
    from .runner import RunResult

__all__ = ("SCHEMA_VERSION", "Estimate", "Point", "Report", "read_report", "write_report")

SCHEMA_VERSION = 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Environment(_Strict):
    """Where a report was measured."""

    python: str
    implementation: str
    platform: str
    machine: str
    cpu_count: int
    cpu_model: str
    hostname: str
    packages: dict[str, str]  # name -> version (None-free: "missing" when not installed)
    git_commit: str | None


class LatencyStats(_Strict):
    """count, then milliseconds; all null when nothing was recorded."""

    count: int
    mean_ms: float | None
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    p99_9_ms: float | None
    max_ms: float | None


class PriorityMetrics(_Strict):
    """One priority level, summed over a point's measured repeats."""

    priority: int
    offered: int
    accepted: int
    processed: int
    dropped_full: int
    dropped_timeout: int
    rejected_full: int
    rejected_closed: int
    rejected_cancelled: int
    evicted: int
    expired: int
    dead_lettered: int
    abandoned: int
    drop_rate: float | None  # share of offered events not processed (any reason); null if none offered
    unsent: int = 0  # open loop: scheduled before intake closed, never offered (producer held back)
    blocked_ms: float  # producer time spent waiting in put(), summed
    queue_wait: LatencyStats
    service: LatencyStats
    end_to_end: LatencyStats  # from the intended send time (coordinated-omission free)
    end_to_end_sent: LatencyStats  # from the actual send time


class Estimate(_Strict):
    """A metric over a point's repeats: median and a distribution-free interval."""

    median: float | None
    ci_low: float | None
    ci_high: float | None
    ci_level: float | None  # the interval's actual coverage (0.95, or less with few repeats)
    values: list[float | None]  # one per repeat, in run order


class Depth(_Strict):
    interval_ms: float
    by_priority: list[list[int]]  # sampled buffered events per level (first measured repeat)


class Point(_Strict):
    """One sweep point: its parameters and everything measured."""

    id: str  # "key=value ..." of the parameters the sweep varies
    params: dict[str, Any]
    scenario: dict[str, Any]  # the full, normalised scenario
    status: Literal["ok", "skipped", "interrupted"] = "ok"
    note: str = ""
    repeats: int = 0
    wall_s: float = 0.0  # real time spent on this point, warm-up included
    metrics: dict[str, Estimate] = Field(default_factory=dict)
    priorities: list[PriorityMetrics] = Field(default_factory=list)
    histograms: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)  # kind -> per priority
    depth: Depth | None = None
    late_events: int = 0
    max_send_lag_ms: float = 0.0
    dead_letters: list[tuple[int, int, str]] = Field(default_factory=list)  # first 100: id, priority, reason


class Report(_Strict):
    schema_version: int
    streamsim_version: str
    created: str
    command: str
    environment: Environment
    sweep: dict[str, Any]  # the sweep definition as run
    points: list[Point]


# ---------------------------------------------------------------------- building


def scalar_metrics(
    result: RunResult, reference: Reference | None = None, reference_hz: float | None = None
) -> dict[str, float | None]:
    """The per-repeat figures a comparison or a gate looks at; units in the names.
    With a ``reference`` (wall clock), also ``reference_hz`` and ``throughput_rel``, the
    latter relative to ``reference_hz`` if given (the point's), else to this repeat's."""
    stats = result.stats
    elapsed_s = result.elapsed_ns / 1e9
    offered, processed = sum(stats.offered), sum(stats.processed)
    out: dict[str, float | None] = {
        "throughput_hz": processed / elapsed_s if elapsed_s else None,
        "offered_hz": offered / (result.offered_window_ns / 1e9) if result.offered_window_ns else None,
        "drop_rate": 1 - processed / offered if offered else None,
        "drain_ms": result.drain_ns / 1e6,
        "peak_depth": float(stats.peak_size),
        "blocked_ms": sum(stats.blocked_ns) / 1e6,
    }
    if reference is not None:
        # Events per CPU-second of the run over the reference pipeline's: machine-speed drift cancels.
        cpu_s = reference.run_cpu_ns / 1e9
        out["reference_hz"] = reference.reference_hz
        scale = reference_hz or reference.reference_hz
        out["throughput_rel"] = processed / cpu_s / scale if cpu_s > 0 else None
    merged = _merged_by_kind(result.recorder)
    for kind in ("queue_wait", "end_to_end"):
        summary = merged[kind].summary_ms()
        out[f"{kind}_p99_ms"] = summary["p99_ms"]
        out[f"{kind}_mean_ms"] = summary["mean_ms"]
    for p in range(len(stats.offered)):
        out[f"drop_rate.p{p}"] = 1 - stats.processed[p] / stats.offered[p] if stats.offered[p] else None
        e2e = result.recorder.histograms["end_to_end"][p].summary_ms()
        out[f"end_to_end_p99_ms.p{p}"] = e2e["p99_ms"]
        out[f"end_to_end_p99_9_ms.p{p}"] = e2e["p99_9_ms"]
        out[f"queue_wait_max_ms.p{p}"] = result.recorder.histograms["queue_wait"][p].summary_ms()["max_ms"]
    return out


def _merged_by_kind(recorder: LatencyRecorder) -> dict[str, LatencyHistogram]:
    merged = {}
    for kind in LATENCY_KINDS:
        total = LatencyHistogram()
        for hist in recorder.histograms[kind]:
            total.merge(hist)
        merged[kind] = total
    return merged


def estimate(values: Sequence[float | None]) -> Estimate:
    """Median of the repeats with the order-statistic interval around it: the
    narrowest [x(j), x(n-1-j)] whose coverage is at least 95%, or [min, max] (with
    its smaller coverage stated) when there are too few repeats for 95%."""
    present = sorted(v for v in values if v is not None)
    n = len(present)
    if n == 0:
        return Estimate(median=None, ci_low=None, ci_high=None, ci_level=None, values=list(values))
    median = statistics.median(present)
    j, level = 0, 1 - 2 * 0.5**n
    for k in range(n // 2):
        coverage = 1 - 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2**n
        if coverage < 0.95:
            break
        j, level = k + 1, coverage
    return Estimate(
        median=median,
        ci_low=present[j],
        ci_high=present[n - 1 - j],
        ci_level=round(level, 4) if n > 1 else None,
        values=list(values),
    )


def build_point(
    point_id: str,
    params: dict[str, Any],
    scenario: dict[str, Any],
    results: Sequence[RunResult],
    wall_s: float,
    references: Sequence[Reference | None] = (),
) -> Point:
    """Fold a point's measured repeats (and their references, if measured) into one ``Point``."""
    first = results[0]
    levels = len(first.stats.offered)
    refs = list(references) or [None] * len(results)
    # One reference speed per point, the median of its repeats': a 50 ms reference window
    # jitters more than a whole repeat does, and the machine's speed is what it must cancel.
    speeds = [ref.reference_hz for ref in refs if ref is not None]
    point_hz = statistics.median(speeds) if speeds else None
    per_repeat = [scalar_metrics(r, ref, point_hz) for r, ref in zip(results, refs, strict=True)]
    metrics = {name: estimate([m.get(name) for m in per_repeat]) for name in per_repeat[0]}
    merged = {kind: [LatencyHistogram() for _ in range(levels)] for kind in LATENCY_KINDS}
    for r in results:
        for kind in LATENCY_KINDS:
            for p in range(levels):
                merged[kind][p].merge(r.recorder.histograms[kind][p])
    priorities = []
    for p in range(levels):
        counts = {
            name: sum(getattr(r.stats, name)[p] for r in results)
            for name in (
                "offered", "accepted", "processed", "dropped_full", "dropped_timeout", "rejected_full",
                "rejected_closed", "rejected_cancelled", "evicted", "expired", "dead_lettered", "abandoned",
            )
        }  # fmt: skip
        offered = counts["offered"]
        priorities.append(
            PriorityMetrics.model_validate(
                {
                    "priority": p,
                    **counts,
                    "drop_rate": 1 - counts["processed"] / offered if offered else None,
                    "unsent": sum(r.unsent[p] for r in results),
                    "blocked_ms": sum(r.stats.blocked_ns[p] for r in results) / 1e6,
                    **{kind: merged[kind][p].summary_ms() for kind in LATENCY_KINDS},
                }
            )
        )
    dead_letters = [d for r in results for d in r.dead_letters][:100]
    return Point(
        id=point_id,
        params=params,
        scenario=scenario,
        repeats=len(results),
        wall_s=wall_s,
        metrics=metrics,
        priorities=priorities,
        histograms={kind: [h.encode() for h in merged[kind]] for kind in LATENCY_KINDS},
        depth=Depth(interval_ms=first.depth_interval_ns / 1e6, by_priority=first.depth),
        late_events=sum(r.late_events for r in results),
        max_send_lag_ms=max(r.max_send_lag_ns for r in results) / 1e6,
        dead_letters=dead_letters,
    )


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5, check=True,
            cwd=Path(__file__).resolve().parent,
        )  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment() -> Environment:
    return Environment(
        python=platform.python_version(),
        implementation=platform.python_implementation(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_count=os.cpu_count() or 0,
        cpu_model=_cpu_model(),
        hostname=platform.node(),
        packages={
            p: _version(p) for p in ("streamsim", "uvloop", "pydantic", "numpy", "hdrhistogram", "scipy")
        },
        git_commit=_git_commit(),
    )


def new_report(sweep: dict[str, Any], points: list[Point]) -> Report:
    return Report(
        schema_version=SCHEMA_VERSION,
        streamsim_version=_version("streamsim"),
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        command=" ".join(["streamsim", *sys.argv[1:]]),
        environment=environment(),
        sweep=sweep,
        points=points,
    )


# ---------------------------------------------------------------------- files


def write_report(report: Report, path: Path) -> None:
    """Write strict JSON atomically: a reader sees the old report or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.model_dump(mode="json"), indent=1, allow_nan=False)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".report-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_report_json(path: str | Path) -> tuple[Path, Any]:
    """A report file's path and its JSON, unvalidated; a directory means its ``report.json``."""
    path = Path(path)
    if path.is_dir():
        path = path / "report.json"
    try:
        return path, json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"report {str(path)!r}: {exc.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"report {path}: not valid JSON: {exc}") from None


def read_report(path: str | Path) -> Report:
    """Read and validate a report; a directory means its ``report.json``."""
    path, data = read_report_json(path)
    if not isinstance(data, dict) or data.get("schema_version") != SCHEMA_VERSION:
        found = data.get("schema_version") if isinstance(data, dict) else None
        raise ConfigError(f"report {path}: schema_version must be {SCHEMA_VERSION}, got {found!r}")
    try:
        return Report.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ConfigError(f"report {path}: {where}: {err['msg']}") from None
