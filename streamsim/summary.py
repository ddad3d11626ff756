"""The summary table of a report, as Markdown (summary.md) or plain text (terminal)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .report import Point, Report

__all__ = ("summary_markdown", "summary_rows")

HEADERS = (
    "point", "offered/s", "processed/s", "drop % by priority", "e2e p99 ms by priority",
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
        "dead-lettered or abandoned); e2e = intended send time to done.",
        "",
        "| " + " | ".join(HEADERS) + " |",
        "|" + "|".join("---" if i == 0 else "---:" for i in range(len(HEADERS))) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in summary_rows(report)]
    return "\n".join(lines) + "\n"


def summary_text(report: Report) -> str:
    rows = [list(HEADERS), *summary_rows(report)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADERS))]
    out = []
    for n, row in enumerate(rows):
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"
