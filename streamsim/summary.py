"""The summary table of a report, as Markdown (summary.md) or plain text (terminal)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .report import Point, Report

__all__ = ("summary_markdown", "summary_rows")

HEADERS = (
    "point", "offered/s", "unsent %", "processed/s", "drop % by priority", "e2e p99 ms by priority",
    "drain ms", "peak depth",
)  # fmt: skip


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _metric(point: Point, name: str) -> float | None:
    est = point.metrics.get(name)
    return None if est is None else est.median


def unsent_share(point: Point) -> float | None:
    """Share of the open-loop schedule never offered (producers held back); None when
    nothing was scheduled."""
    unsent = sum(p.unsent for p in point.priorities)
    scheduled = unsent + sum(p.offered for p in point.priorities)
    return unsent / scheduled if scheduled else None


def summary_rows(report: Report) -> list[list[str]]:
    rows = []
    for point in report.points:
        if point.status == "skipped":
            rows.append([point.id, *(["skipped: " + point.note] + [""] * (len(HEADERS) - 2))])
            continue
        levels = len(point.priorities)
        drops = " / ".join(_fmt(None if (d := _metric(point, f"drop_rate.p{p}")) is None else 100 * d)
                           for p in range(levels))  # fmt: skip
        p99 = " / ".join(_fmt(_metric(point, f"end_to_end_p99_ms.p{p}"), 2) for p in range(levels))
        label = point.id + (" (interrupted)" if point.status == "interrupted" else "")
        rows.append([
            label,
            _fmt(_metric(point, "offered_hz"), 0),
            _fmt(None if (u := unsent_share(point)) is None else 100 * u, 1),
            _fmt(_metric(point, "throughput_hz"), 0),
            drops,
            p99,
            _fmt(_metric(point, "drain_ms"), 1),
            _fmt(_metric(point, "peak_depth"), 0),
        ])  # fmt: skip
    return rows


def summary_markdown(report: Report) -> str:
    env = report.environment
    lines = [
        f"# {report.sweep.get('name', 'run')}",
        "",
        f"{len(report.points)} points, medians over {report.sweep.get('repeats', 1)} repeat(s); "
        f"Python {env.python}, {env.cpu_count} CPUs, commit {(env.git_commit or 'unknown')[:10]}, "
        f"{report.created}.",
        "drop % = share of offered events not processed (dropped, rejected, evicted, expired, "
        "dead-lettered or abandoned); unsent % = share of the open-loop schedule producers never "
        "got to offer (held back by block or timeout); e2e = intended send time to done.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
    ranking = strategy_ranking(report.points)
    if ranking:
        lines += [
            "",
            "## Strategies ranked by how well they protect priority 0",
            "",
            "Lowest p0 loss first, then lowest p0 end-to-end p99; at the sweep's highest load "
            "(each strategy's worst point there). Strategy = overflow policy / dequeue discipline.",
            # block and timeout hold producers back: what they never sent is in no drop rate.
            "p0 lost % = share of p0's schedule not processed: dropped, rejected, evicted, expired, "
            "dead-lettered, abandoned, or never sent because block or timeout held the producer "
            "back (unsent %); the lateness of what was sent late is in the end-to-end latency.",
            "",
            "| rank | strategy | p0 lost % | p0 e2e p99 ms | all drop % | unsent % | offered/s "
            "| processed/s |",
            "|---:|---|---:|---:|---:|---:|---:|---:|",
        ]
        for rank, (name, point) in enumerate(ranking, start=1):
            drop0 = lost_share(point, 0)
            drop = _metric(point, "drop_rate")
            lines.append(
                f"| {rank} | {name} | {_fmt(None if drop0 is None else 100 * drop0, 2)} "
                f"| {_fmt(_metric(point, 'end_to_end_p99_ms.p0'), 2)} "
                f"| {_fmt(None if drop is None else 100 * drop, 1)} "
                f"| {_fmt(None if (u := unsent_share(point)) is None else 100 * u, 1)} "
                f"| {_fmt(_metric(point, 'offered_hz'), 0)} | {_fmt(_metric(point, 'throughput_hz'), 0)} |"
            )
    return "\n".join(lines) + "\n"


def strategy_name(scenario: dict[str, Any]) -> str:
    """The strategy a scenario runs, as "overflow / discipline", each with the parameter
    that tells its variants apart: "timeout 0.01s / aging 0.05s", "shed-lowest / wrr 4:2:1"."""
    overflow = str(scenario.get("overflow") or "block")
    if overflow == "timeout" and isinstance(scenario.get("put_timeout"), int | float):
        overflow += f" {scenario['put_timeout']:g}s"
    discipline = str(scenario.get("discipline") or "strict")
    if discipline == "aging" and isinstance(scenario.get("age_step"), int | float):
        discipline += f" {scenario['age_step']:g}s"
    elif discipline == "wrr" and isinstance(scenario.get("weights"), list):
        discipline += " " + ":".join(str(w) for w in scenario["weights"])
    return f"{overflow} / {discipline}"


def strategy_ranking(points: Sequence[Point]) -> list[tuple[str, Point]]:
    """Strategies (overflow policy x discipline) at the highest offered load, best
    protection of priority 0 first. Empty unless at least two strategies ran there."""
    points = [p for p in points if p.status == "ok" and p.metrics]
    loads = [p.scenario.get("load") or p.scenario.get("rate") for p in points]
    top = max((x for x in loads if x is not None), default=None)
    if top is None:
        return []
    loaded = [p for p, x in zip(points, loads, strict=True) if x == top]
    # One row per strategy: its worst-protected point at that load.
    worst: dict[str, Point] = {}
    for p in loaded:
        name = strategy_name(p.scenario)
        if name not in worst or _key(p) > _key(worst[name]):
            worst[name] = p
    if len(worst) < 2:
        return []
    return sorted(worst.items(), key=lambda item: _key(item[1]))


def lost_share(point: Point, level: int) -> float | None:
    """Share of ``level``'s schedule not processed, for any reason, unsent included (the
    drop rate when the report has no per-priority counts)."""
    if level >= len(point.priorities):
        return _metric(point, f"drop_rate.p{level}")
    counts = point.priorities[level]
    scheduled = counts.offered + counts.unsent
    return (scheduled - counts.processed) / scheduled if scheduled else None


def _key(point: Point) -> tuple[float, float]:
    drop0 = lost_share(point, 0)
    p99 = _metric(point, "end_to_end_p99_ms.p0")
    return (1.0 if drop0 is None else drop0, float("inf") if p99 is None else p99)


def summary_text(report: Report) -> str:
    rows = [list(HEADERS), *summary_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    out = []
    for n, row in enumerate(rows):
        out.append(
            "  ".join(
                c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"
