"""Figures of a report, as PNGs (matplotlib, Agg backend: no display needed).

Each figure is drawn only when the report has data for it; a report whose points
were all skipped writes nothing. Null metrics and missing keys are left out of a
figure, never drawn as zero.
"""

from __future__ import annotations

import io
import itertools
import json
import math
import textwrap
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # before pyplot: files only, never a window

import matplotlib.pyplot as plt
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter

from .config import parse_scenario
from .errors import ConfigError
from .summary import lost_share, strategy_ranking, unsent_share
from .theory import expected_drop_share, expected_queue_wait

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .report import Estimate, Point, Report

__all__ = ("write_plots",)

DPI = 100
MAX_DEPTH_PANELS = 6
PERCENTILES = (("p50_ms", "p50"), ("p90_ms", "p90"), ("p99_ms", "p99"), ("p99_9_ms", "p99.9"))
LOAD_STYLES = ("-", "--", ":")  # highest load first
# Parameters that name the broker policy or the load, not "other" differences between points.
_POLICY_KEYS = frozenset({"overflow", "put_timeout"})
_LOAD_KEYS = frozenset({"load", "rate"})
_KEY_ORDER = ("overflow", "put_timeout", "maxsize", "load", "rate", "loop")


def write_plots(report: Report, out_dir: Path) -> list[Path]:
    """Write every figure the report has data for into ``out_dir``.

    Returns:
        The PNGs written, in a fixed order; empty when no point has data.
    """
    points = [p for p in report.points if p.status != "skipped" and (p.priorities or p.metrics)]
    figures: list[tuple[str, Callable[[Sequence[Point]], Figure | None]]] = [
        ("latency_percentiles.png", _latency_percentiles),
        ("drop_rate_vs_maxsize.png", _drop_rate_vs_maxsize),
        ("drain_time.png", _drain_time),
        ("loops.png", _loops),
        ("queue_depth.png", _queue_depth),
        ("strategies.png", _strategies),
        ("theory.png", _theory),
    ]
    written: list[Path] = []
    if not points:
        return written
    for name, draw in figures:
        fig = draw(points)
        if fig is None:
            continue
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / name
        try:
            _save(fig, path)
        finally:
            plt.close(fig)
        written.append(path)
    return written


def _save(fig: Figure, path: Path) -> None:
    """Save as a palette PNG: a plot has few colours, and 8-bit indices make the
    file about three times smaller than matplotlib's RGBA output."""
    from PIL import Image  # matplotlib's own dependency

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    buf.seek(0)
    with Image.open(buf) as image:
        image.convert("RGB").quantize(colors=256).save(path, format="PNG", optimize=True)


# ---------------------------------------------------------------------- helpers


def _priority_label(level: int) -> str:
    return "p0 (most urgent)" if level == 0 else f"p{level}"


def _priority_color(level: int, levels: int) -> Any:
    if levels <= 10:
        return f"C{level}"
    return plt.get_cmap("viridis")(level / max(levels - 1, 1))


def _levels(points: Sequence[Point]) -> int:
    return max((len(p.priorities) for p in points), default=0)


def _estimate(point: Point, name: str) -> Estimate | None:
    est = point.metrics.get(name)
    return est if est is not None and est.median is not None else None


def _median(point: Point, name: str) -> float | None:
    est = _estimate(point, name)
    return None if est is None else est.median


def _errors(est: Estimate) -> tuple[float, float]:
    """Distances from the median down to ci_low and up to ci_high (zero when unknown)."""
    med = est.median if est.median is not None else 0.0
    low = med - est.ci_low if est.ci_low is not None else 0.0
    high = est.ci_high - med if est.ci_high is not None else 0.0
    return max(low, 0.0), max(high, 0.0)


def _param(point: Point, key: str) -> Any:
    """A parameter as the point ran it: its sweep parameter, else the scenario's value."""
    if key in point.params:
        return point.params[key]
    return point.scenario.get(key)


def _policy(point: Point) -> str:
    """The overflow policy as a label; ``timeout`` carries its put_timeout."""
    policy = str(_param(point, "overflow") or "?")
    if policy == "timeout":
        timeout = _param(point, "put_timeout")
        if isinstance(timeout, int | float):
            return f"timeout {timeout:g}s"
    return policy


def _load(point: Point) -> tuple[str, float] | None:
    """The offered load: ("load", x) or ("rate", events/s); None in closed loop or trace replay."""
    for key in ("load", "rate"):
        value = _param(point, key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return key, float(value)
    return None


def _load_label(load: tuple[str, float] | None) -> str:
    if load is None:
        return "no set load"
    kind, value = load
    return f"load {value:g}" if kind == "load" else f"rate {value:g}/s"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _varying(points: Sequence[Point], exclude: frozenset[str] = frozenset()) -> list[str]:
    """The parameter keys whose values differ among ``points``: policy, size and load
    first (what the figures are about), then the rest in first-seen order."""
    keys: list[str] = []
    for p in points:
        keys.extend(k for k in p.params if k not in keys and k not in exclude)
    keys.sort(key=lambda k: _KEY_ORDER.index(k) if k in _KEY_ORDER else len(_KEY_ORDER))
    return [
        k for k in keys if len({json.dumps(_param(p, k), sort_keys=True, default=str) for p in points}) > 1
    ]


def _short_id(point: Point, keys: Sequence[str]) -> str:
    """A tick label: only the parameters that vary; the policy without its key."""
    parts = []
    for key in keys:
        if key == "overflow":
            parts.append(_policy(point))
        elif (key != "put_timeout" or "overflow" not in keys) and _param(point, key) is not None:
            parts.append(f"{key}={_fmt(_param(point, key))}")  # None: the parameter does not apply
    return " ".join(parts) or point.id


def _point_ticks(ax: Axes, labels: Sequence[str], width_in: float) -> None:
    """One rotated tick per point, the text as large as the spacing allows."""
    n = len(labels)
    spacing_pt = 72 * 0.8 * width_in / max(n, 1)
    ax.set_xticks(range(n))
    ax.set_xticklabels(labels, rotation=90, fontsize=max(5.0, min(8.0, 0.85 * spacing_pt)))
    ax.set_xlim(-0.7, n - 0.3)


def _by_policy(points: Sequence[Point]) -> tuple[list[Point], list[str]]:
    """The points grouped by overflow policy (report order within a group), and the policies."""
    policies = list(dict.fromkeys(_policy(p) for p in points))
    return sorted(points, key=lambda p: policies.index(_policy(p))), policies


def _policy_bands(axes: Sequence[Axes], ordered: Sequence[Point], width_in: float) -> None:
    """Separate the policy groups with faint lines and name them along the top axis."""
    bounds = [i for i in range(1, len(ordered)) if _policy(ordered[i]) != _policy(ordered[i - 1])]
    if not bounds:
        return
    for ax in axes:
        for b in bounds:
            ax.axvline(b - 0.5, color="0.55", lw=0.8)
    edges = [0, *bounds, len(ordered)]
    names = [_policy(ordered[a]) for a in edges[:-1]]
    # Rotate the names when a group is narrower than its name (about 0.6 em per character).
    inch_per_point = 0.8 * width_in / len(ordered)
    fits = all(
        (b - a) * inch_per_point >= 0.6 * 8 / 72 * len(name)
        for (a, b), name in zip(itertools.pairwise(edges), names, strict=True)
    )
    top = axes[0].secondary_xaxis("top")
    top.set_xticks([(a + b - 1) / 2 for a, b in itertools.pairwise(edges)])
    if fits:
        top.set_xticklabels(names, fontsize=8)
    else:
        top.set_xticklabels(names, fontsize=8, rotation=30, ha="left", rotation_mode="anchor")
    top.tick_params(length=0)


def _figure(width: float, height: float, nrows: int = 1, ncols: int = 1, **kw: Any) -> tuple[Figure, Any]:
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, height), dpi=DPI, layout="constrained", squeeze=False, **kw
    )
    return fig, axes


# ---------------------------------------------------------------------- figures


def _latency_percentiles(points: Sequence[Point]) -> Figure | None:
    """End-to-end latency percentiles, one panel per percentile, one series per priority."""
    levels = _levels(points)
    points, _ = _by_policy(points)
    data: dict[tuple[str, int], list[tuple[int, float]]] = {}
    for x, point in enumerate(points):
        for pm in point.priorities:
            for key, _ in PERCENTILES:
                value = getattr(pm.end_to_end, key, None)
                if isinstance(value, int | float) and value > 0:  # log scale: zero has no place
                    data.setdefault((key, pm.priority), []).append((x, float(value)))
    if not data:
        return None
    n = len(points)
    keys = _varying(points, exclude=_POLICY_KEYS)
    labels = [_short_id(p, keys) for p in points]
    width_in = max(8.0, min(14.0, 4 + 0.1 * n))
    fig, axes = _figure(width_in, 7.0 + 0.045 * max(len(s) for s in labels), len(PERCENTILES), 1, sharex=True)
    width = 0.6 / max(levels, 1)
    for row, (key, name) in enumerate(PERCENTILES):
        ax = axes[row][0]
        for level in range(levels):
            series = data.get((key, level), [])
            if not series:
                continue
            offset = (level - (levels - 1) / 2) * width
            ax.plot(
                [x + offset for x, _ in series],
                [v for _, v in series],
                "o",
                ms=3.5 if n > 40 else 5,
                color=_priority_color(level, levels),
                label=_priority_label(level),
            )
        if ax.has_data():
            ax.set_yscale("log")
        ax.set_ylabel(f"{name} latency (ms)")
        ax.grid(True, which="major", axis="both", alpha=0.3)
    _point_ticks(axes[-1][0], labels, width_in)
    _policy_bands([row[0] for row in axes], points, width_in)
    axes[-1][0].set_xlabel("sweep point (parameters that vary; grouped by overflow policy)")
    handles = [
        Line2D([], [], marker="o", ls="", color=_priority_color(lv, levels), label=_priority_label(lv))
        for lv in range(levels)
        if any((k, lv) in data for k, _ in PERCENTILES)
    ]
    fig.legend(handles=handles, loc="outside right center", fontsize=8, title="priority", title_fontsize=8)
    fig.suptitle("End-to-end latency per priority (intended send → done), log scale", fontsize=11)
    return fig


def _drop_rate(point: Point, level: int) -> float | None:
    for pm in point.priorities:
        if pm.priority == level and pm.drop_rate is not None:
            return pm.drop_rate
    return _median(point, f"drop_rate.p{level}")


def _drop_rate_vs_maxsize(points: Sequence[Point]) -> Figure | None:
    """Drop rate per priority against maxsize, one panel per overflow policy."""
    sized = [
        p
        for p in points
        if isinstance(_param(p, "maxsize"), int) and not isinstance(_param(p, "maxsize"), bool)
    ]
    sized = [p for p in sized if any(_drop_rate(p, lv) is not None for lv in range(len(p.priorities)))]
    if not sized:
        return None
    # Points may differ in more than policy, size and load (loop, consumers...): keep
    # the most common combination of those other parameters, and say which in the title.
    others = _varying(sized, exclude=frozenset({"maxsize"}) | _POLICY_KEYS | _LOAD_KEYS)
    combos: dict[str, list[Point]] = {}
    for p in sized:
        combos.setdefault(json.dumps([_param(p, k) for k in others], default=str), []).append(p)
    chosen = max(combos.values(), key=len)
    fixed = _short_id(chosen[0], others) if others else ""
    # One line style per load, at most the three highest.
    loads = sorted(
        {_load(p) for p in chosen}, key=lambda ld: (ld is not None, ld[1] if ld else 0.0), reverse=True
    )
    shown = loads[: len(LOAD_STYLES)]
    style = {ld: LOAD_STYLES[i] for i, ld in enumerate(shown)}
    policies = list(dict.fromkeys(_policy(p) for p in chosen if _load(p) in style))
    levels = _levels(chosen)
    ncols = min(3, len(policies))
    nrows = math.ceil(len(policies) / ncols)
    fig, axes = _figure(max(8.0, 4.0 * ncols + 1.5), 3.0 * nrows + 1.0, nrows, ncols, sharey=True)
    sizes = sorted({int(_param(p, "maxsize")) for p in chosen})
    top = 0.0
    for i, policy in enumerate(policies):
        ax = axes[i // ncols][i % ncols]
        for load in shown:
            group = sorted(
                (p for p in chosen if _policy(p) == policy and _load(p) == load),
                key=lambda p: int(_param(p, "maxsize")),
            )
            for level in range(levels):
                xy = [
                    (int(_param(p, "maxsize")), 100 * r)
                    for p in group
                    if (r := _drop_rate(p, level)) is not None
                ]
                if xy:
                    top = max(top, *(y for _, y in xy))
                    ax.plot(
                        *zip(*xy, strict=True),
                        style[load],
                        marker="o",
                        ms=4,
                        color=_priority_color(level, levels),
                    )
        ax.set_xscale("log")
        if len(sizes) <= 8:  # label the sizes swept, as plain numbers
            ax.set_xticks(sizes, [str(v) for v in sizes])
            ax.minorticks_off()
        ax.set_title(policy, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("drop rate (% of offered)")
        if i // ncols == nrows - 1 or i + ncols >= len(policies):
            ax.set_xlabel("maxsize (events, log)")
    for j in range(len(policies), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    axes[0][0].set_ylim(0, max(1.0, min(100.0, top * 1.08)))  # shared by every panel
    handles = [
        Line2D([], [], color=_priority_color(lv, levels), marker="o", ls="-", label=_priority_label(lv))
        for lv in range(levels)
    ]
    if len(shown) > 1:
        handles += [Line2D([], [], color="0.3", ls=style[ld], label=_load_label(ld)) for ld in shown]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    names = {"-": "solid", "--": "dashed", ":": "dotted"}
    which = ", ".join(_load_label(ld) + (f" ({names[style[ld]]})" if len(shown) > 1 else "") for ld in shown)
    if len(loads) > len(shown):
        which += f" (the {len(shown)} highest of {len(loads)})"
    fig.suptitle(
        "Drop rate per priority vs buffer size, by overflow policy\n"
        + f"{which}{'; ' + fixed if fixed else ''}",
        fontsize=10,
    )
    return fig


def _drain_time(points: Sequence[Point]) -> Figure | None:
    """Drain time (close -> join) per point, median with its interval, coloured by policy."""
    have = [p for p in points if _estimate(p, "drain_ms") is not None]
    if not have:
        return None
    ordered, policies = _by_policy(have)
    keys = _varying(ordered, exclude=_POLICY_KEYS)
    n = len(ordered)
    labels = [_short_id(p, keys) for p in ordered]
    width_in = max(8.0, min(14.0, 4 + 0.1 * n))
    fig, axes = _figure(width_in, 3.8 + 0.045 * max(len(s) for s in labels))
    ax = axes[0][0]
    for c, policy in enumerate(policies):
        xs, ys, lows, highs = [], [], [], []
        for x, p in enumerate(ordered):
            est = _estimate(p, "drain_ms")
            if est is None or _policy(p) != policy or est.median is None:
                continue
            low, high = _errors(est)
            xs.append(x)
            ys.append(est.median)
            lows.append(low)
            highs.append(high)
        ax.errorbar(
            xs,
            ys,
            yerr=[lows, highs],
            fmt="o",
            ms=4,
            capsize=2,
            elinewidth=1,
            color=f"C{c % 10}",
            label=policy,
        )
    _point_ticks(ax, labels, width_in)
    _policy_bands([ax], ordered, width_in)
    medians = [m for p in ordered if (m := _median(p, "drain_ms")) is not None]
    if min(medians) > 0 and max(medians) / min(medians) > 30:
        ax.set_yscale("log")  # a backlog drains in seconds, an idle broker in microseconds
        ax.set_ylabel("drain time (ms, log)")
    else:
        ax.set_ylim(bottom=0)
        ax.set_ylabel("drain time (ms)")
    ax.set_xlabel("sweep point (parameters that vary, besides the policy)")
    ax.grid(True, axis="y", alpha=0.3)
    fig.legend(title="overflow policy", fontsize=8, title_fontsize=8, loc="outside right center")
    ax.set_title("Drain time (close → join returns): median, bars = interval over repeats", fontsize=11)
    return fig


def _loops(points: Sequence[Point]) -> Figure | None:
    """asyncio vs uvloop on otherwise equal points: throughput and p99 end-to-end latency."""
    by_key: dict[str, dict[str, Point]] = {}
    for p in points:
        loop = _param(p, "loop")
        if loop in ("asyncio", "uvloop") and p.status == "ok":
            rest = {k: v for k, v in p.scenario.items() if k != "loop"}
            by_key.setdefault(json.dumps(rest, sort_keys=True, default=str), {})[loop] = p
    pairs = [(d["asyncio"], d["uvloop"]) for d in by_key.values() if len(d) == 2]
    metrics = (
        ("throughput_hz", "throughput (events/s)"),
        ("end_to_end_p99_ms", "p99 end-to-end latency (ms)"),
    )
    pairs = [pr for pr in pairs if any(_estimate(p, m) is not None for p in pr for m, _ in metrics)]
    if not pairs:
        return None
    keys = _varying([p for pr in pairs for p in pr], exclude=frozenset({"loop"}))
    labels = [_short_id(a, keys) if keys else "the point" for a, _ in pairs]
    n = len(pairs)
    fig, axes = _figure(
        max(8.0, min(14.0, 3 + 0.6 * n)), 6.0 + 0.05 * max(len(s) for s in labels), 2, 1, sharex=True
    )
    width = 0.38
    for row, (metric, ylabel) in enumerate(metrics):
        ax = axes[row][0]
        for side, (loop, color) in enumerate((("asyncio", "C0"), ("uvloop", "C1"))):
            xs, ys, lows, highs = [], [], [], []
            for x, pair in enumerate(pairs):
                est = _estimate(pair[side], metric)
                if est is None or est.median is None:
                    continue
                low, high = _errors(est)
                xs.append(x + (side - 0.5) * width)
                ys.append(est.median)
                lows.append(low)
                highs.append(high)
            ax.bar(
                xs,
                ys,
                width,
                yerr=[lows, highs],
                capsize=2,
                color=color,
                label=loop,
                error_kw={"elinewidth": 1},
            )
        for x, (a, u) in enumerate(pairs):
            va, vu = _median(a, metric), _median(u, metric)
            top = max(
                (v for v in (va, vu, _ci_high(a, metric), _ci_high(u, metric)) if v is not None), default=0.0
            )
            text = f"{vu / va:.2f}×" if va and vu is not None else "n/a"
            ax.annotate(text, (x, top), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=7)
        ax.margins(y=0.15)
        values = [v for pr in pairs for p in pr if (v := _median(p, metric))]
        if values and max(values) > 30 * min(values):
            # Closed-loop points run hundreds of times faster than open-loop ones: on a
            # linear axis the open-loop bars would vanish.
            ax.set_yscale("log")
            ylabel = ylabel.replace(")", ", log)")
        ax.set_ylabel(ylabel)
        ax.grid(True, axis="y", alpha=0.3)
        what = "higher is better" if metric == "throughput_hz" else "lower is better"
        ax.set_title(
            f"{ylabel.split(' (')[0]}: median, bars = interval; label = uvloop/asyncio ({what})",
            fontsize=9,
            loc="left",
        )
    _point_ticks(axes[-1][0], labels, fig.get_figwidth())
    axes[-1][0].set_xlabel("point (parameters that vary, besides the loop)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, title="event loop", fontsize=8, title_fontsize=8, loc="outside right center")
    fig.suptitle("asyncio vs uvloop on the same points", fontsize=11)
    return fig


def _ci_high(point: Point, name: str) -> float | None:
    est = _estimate(point, name)
    return None if est is None else est.ci_high


def _peak(point: Point) -> float:
    peak = _median(point, "peak_depth")
    if peak is not None:
        return peak
    if point.depth is None:
        return 0.0
    totals = [sum(col) for col in zip(*point.depth.by_priority, strict=False)]
    return float(max(totals, default=0))


def _has_depth(point: Point) -> bool:
    depth = point.depth
    return depth is not None and depth.interval_ms > 0 and any(any(series) for series in depth.by_priority)


def _queue_depth(points: Sequence[Point]) -> Figure | None:
    """Buffered events over time, stacked by priority, for each policy's deepest point whose
    buffer filled (else its deepest)."""
    have = [p for p in points if _has_depth(p)]
    if not have:
        return None

    def telling(p: Point) -> tuple[bool, float]:
        # A point whose buffer filled is where the policy acted; below that every policy
        # looks alike. Among those, the deepest.
        maxsize = _param(p, "maxsize")
        return (isinstance(maxsize, int) and _peak(p) >= maxsize, _peak(p))

    best: dict[str, Point] = {}
    for p in have:
        policy = _policy(p)
        if policy not in best or telling(p) > telling(best[policy]):
            best[policy] = p
    chosen = list(best.values())[:MAX_DEPTH_PANELS]
    # With few policies, fill up with the next deepest points so the figure says more.
    taken = {id(p) for p in chosen}
    for p in sorted(have, key=_peak, reverse=True):
        if len(chosen) >= min(4, MAX_DEPTH_PANELS):
            break
        if id(p) not in taken:
            chosen.append(p)
            taken.add(id(p))
    keys = _varying(chosen)  # what tells the panels apart, not the whole sweep
    levels = _levels(chosen)
    ncols = min(3, len(chosen))
    nrows = math.ceil(len(chosen) / ncols)
    fig, axes = _figure(4.2 * ncols + 1.5, 3.0 * nrows + 0.8, nrows, ncols)
    drew_maxsize = False
    for i, p in enumerate(chosen):
        ax = axes[i // ncols][i % ncols]
        assert p.depth is not None
        series = p.depth.by_priority
        n = max((len(s) for s in series), default=0)
        xs = [k * p.depth.interval_ms / 1000 for k in range(n)]
        ys = [list(s) + [0] * (n - len(s)) for s in series]
        ax.stackplot(xs, ys, colors=[_priority_color(lv, levels) for lv in range(len(ys))], alpha=0.85)
        maxsize = _param(p, "maxsize")
        if isinstance(maxsize, int) and maxsize <= 1.5 * max(
            (sum(c) for c in zip(*ys, strict=True)), default=0
        ):
            ax.axhline(maxsize, color="0.3", ls="--", lw=1)
            drew_maxsize = True
        # The peak is exact (the broker tracks it); the curve is sampled, so it can miss it.
        every = f"{p.depth.interval_ms:g} ms"
        label = textwrap.shorten(_short_id(p, keys) if keys else "the point", width=60, placeholder=" ...")
        ax.set_title(f"{label}\npeak {_peak(p):g}; curve sampled every {every}", fontsize=8)
        ax.set_xlim(0, xs[-1] if len(xs) > 1 else 1)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if i % ncols == 0:
            ax.set_ylabel("queued events")
        if i // ncols == nrows - 1 or i + ncols >= len(chosen):
            ax.set_xlabel("time since start (s)")
    for j in range(len(chosen), nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    handles: list[Any] = [
        Patch(color=_priority_color(lv, levels), alpha=0.85, label=_priority_label(lv))
        for lv in range(levels)
    ]
    if drew_maxsize:
        handles.append(Line2D([], [], color="0.3", ls="--", lw=1, label="maxsize (buffer capacity)"))
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    sep = "\n" if ncols == 1 else " "  # one panel: the figure is too narrow for one line
    fig.suptitle(
        f"Queue depth over time, stacked by priority{sep}(first measured repeat; per policy, "
        "the deepest point whose buffer filled)",
        fontsize=11,
    )
    return fig


# Strategy comparison: one row per strategy, so the ranking's order reads top to bottom.
_STRATEGY_PANELS = (
    ("end_to_end_p99_ms.p{}", 1.0, "p99 end-to-end latency (ms)"),
    ("drop_rate.p{}", 100.0, "drop rate (% of offered)"),
)
_STRATEGY_KEYS = frozenset({"overflow", "put_timeout", "discipline", "age_step", "weights"})


def _scheduled_hz(point: Point) -> float | None:
    """The open-loop schedule's rate (events/s), where it is steady: constant or Poisson."""
    try:
        sc = parse_scenario(point.scenario)
    except ConfigError:
        return None  # a scenario this version cannot read (an older report)
    return sc.rate_hz if sc.arrival in ("constant", "poisson") else None


def _value_text(metric: str, value: float) -> str:
    """A bar's value as the summary tables print it: ms with 3 digits, or % with 2 decimals."""
    if metric.startswith("drop_rate"):
        return f"{value:.2f}%"
    return f"{value:.3g} ms" if value < 1000 else f"{value:,.0f} ms"


def _strategies(points: Sequence[Point]) -> Figure | None:
    """Per strategy at the highest load, ranked as in summary.md: p99 end-to-end latency
    and drop rate per priority, as grouped horizontal bars."""
    ranking = strategy_ranking(points)
    if not ranking:
        return None  # the strategy does not vary at one load
    ranked = [p for _, p in ranking]
    levels = _levels(ranked)
    # Each strategy's worst point at that load is drawn: whatever else the sweep varies
    # there (maxsize, ...) goes into its label, so a bar never hides what it was measured at.
    at_load = [p for p in points if _load(p) == _load(ranked[0])]
    others = _varying(at_load, exclude=_STRATEGY_KEYS | _LOAD_KEYS)
    labels = [
        f"{rank}. {name}" + (f"  ({_short_id(p, others)})" if others else "")
        for rank, (name, p) in enumerate(ranking, start=1)
    ]
    n = len(ranking)
    # Horizontal bars: long names read along the y axis instead of rotated under the bars.
    fig, axes = _figure(12.0, 1.9 + n * (0.12 + 0.08 * levels), 1, 2, sharey=True)
    height = 0.8 / max(levels, 1)
    for ax, (metric, scale, xlabel) in zip(axes[0], _STRATEGY_PANELS, strict=True):
        values: list[float] = []
        for level in range(levels):
            ys, xs, lows, highs = [], [], [], []
            for row, point in enumerate(ranked):
                est = _estimate(point, metric.format(level))
                if est is None or est.median is None:
                    continue  # null: left out, not drawn as zero
                low, high = _errors(est)
                ys.append(row + (level - (levels - 1) / 2) * height)
                xs.append(scale * est.median)
                lows.append(scale * low)
                highs.append(scale * high)
                if level == 0:  # the ranking's keys, spelled out (a zero bar is otherwise invisible)
                    ax.annotate(
                        _value_text(metric, xs[-1]),
                        (xs[-1] + highs[-1], ys[-1]),
                        xytext=(3, 0),
                        textcoords="offset points",
                        va="center",
                        fontsize=6.5,
                        color=_priority_color(0, levels),
                    )
            values += [x + h for x, h in zip(xs, highs, strict=True)]
            ax.barh(
                ys,
                xs,
                height,
                xerr=[lows, highs],
                color=_priority_color(level, levels),
                label=_priority_label(level),
                error_kw={"elinewidth": 0.8, "capsize": 1.5, "ecolor": "0.25"},
            )
        positive = [v for v in values if v > 0]
        if metric.startswith("end") and positive and max(positive) / min(positive) > 30:
            # Held-back producers (block, timeout) wait seconds, the others milliseconds.
            ax.set_xscale("log")
            # From the power of ten below the smallest bar (labelled), room right for the p0 values.
            ax.set_xlim(10 ** math.floor(math.log10(min(positive))), max(positive) * 4)
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
            xlabel = xlabel.replace("(ms)", "(ms, log)")
        else:
            ax.set_xlim(0, max(1.0, 1.15 * max(values, default=0.0)))
        ax.set_xlabel(xlabel + "; whiskers = interval over repeats", fontsize=9)
        ax.grid(True, axis="x", which="major", alpha=0.3)
        ax.tick_params(axis="y", length=0)
        for row in range(1, n):
            ax.axhline(row - 0.5, color="0.85", lw=0.6)  # keep each strategy's bars together
    # Producers held back by backpressure send less than their schedule: those events
    # are in no drop rate, so say so where the drop bars would mislead.
    for row, point in enumerate(ranked):
        scheduled, offered = _scheduled_hz(point), _median(point, "offered_hz")
        unsent, lost0 = unsent_share(point), lost_share(point, 0)
        if unsent:
            text = f"producers held back: {100 * unsent:.1f}% of the schedule never sent"
            if lost0 is not None:
                text += f" (p0 lost {100 * lost0:.1f}%)"
        elif scheduled and offered is not None and offered < 0.95 * scheduled:
            text = f"producers held back: sent {offered:,.0f}/s of {scheduled:,.0f}/s scheduled"
        else:
            continue
        axes[0][1].annotate(
            text,
            (1, row),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 0),
            textcoords="offset points",
            ha="right",
            va="center",
            fontsize=7,
            color="0.3",
        )
    ax = axes[0][0]
    ax.set_yticks(range(n), labels, fontsize=8)
    ax.set_ylim(n - 0.5, -0.5)  # rank 1 at the top
    axes[0][0].set_title("latency (lower is better)", fontsize=9, loc="left")
    axes[0][1].set_title("losses (lower is better)", fontsize=9, loc="left")
    handles, names = ax.get_legend_handles_labels()
    fig.legend(handles, names, title="priority", fontsize=8, title_fontsize=8, loc="outside right center")
    fig.suptitle(
        f"Strategies (overflow policy / dequeue discipline) at {_load_label(_load(ranked[0]))}, "
        "per priority\nranked as in summary.md: lowest p0 loss (unsent included), then lowest p0 p99; "
        "best at top",
        fontsize=10,
    )
    return fig


def _theory_of(point: Point) -> tuple[str, list[float | None], float | None] | None:
    """What queueing theory says of a point: a Kendall-notation label, the mean queue
    wait per class (ms; None where there is no closed form) and, for drop-new, the
    share of events dropped (M/M/c/K blocking). None when theory says nothing."""
    if point.status != "ok" or point.scenario.get("clock") != "virtual":
        # On the wall clock the loop's own overheads add to every wait: there theory
        # is a rough reference, not the oracle DESIGN.md section 4 means.
        return None
    try:
        sc = parse_scenario(point.scenario)
    except ConfigError:
        return None  # a scenario this version cannot read (an older report): no claim
    rate, c = sc.rate_hz, sc.consumers
    if rate is None or sc.service_mean <= 0:
        return None
    waits = [None if w is None else 1000 * w for w in expected_queue_wait(sc)]
    blocking = expected_drop_share(sc)
    if blocking is None and all(w is None for w in waits):
        return None
    kendall = f"M/M/{c}" if sc.maxsize == "unbounded" else f"M/M/{c}/{sc.maxsize + c}"
    classes = f", {sc.levels} classes" if sc.levels > 1 else ""
    return f"{kendall}{classes}, ρ={rate * sc.service_mean / c:.3g}", waits, blocking


def _theory(points: Sequence[Point]) -> Figure | None:
    """Simulated vs queueing theory on the virtual clock: each point's mean queue wait
    per class against its closed form, and drop-new's drop share against M/M/c/K blocking."""
    waits: list[tuple[str, Any, float, float]] = []  # label, colour, simulated ms, theory ms
    drops: list[tuple[str, Any, float, float]] = []  # label, colour, simulated %, theory %
    levels = 1  # of the points with several classes, for the legend
    for p in points:
        theory = _theory_of(p)
        if theory is None:
            continue
        label, expected, blocking = theory
        n = len(p.priorities)
        for pm in p.priorities:
            th = expected[pm.priority] if pm.priority < len(expected) else None
            sim = pm.queue_wait.mean_ms
            if th is not None and sim is not None and sim > 0:  # log axes: zero has no place
                # One class (FIFO) in grey, so that class colours mean priority classes only.
                waits.append((label, _priority_color(pm.priority, n) if n > 1 else "0.6", sim, th))
                levels = max(levels, n)
        offered = sum(pm.offered for pm in p.priorities)
        # With fewer than ~10 drops expected (a large buffer, a light load) the share is noise.
        if blocking is not None and blocking * offered >= 10:
            # dropped_full alone: what drop-new drops (abandoned or expired events are other losses).
            dropped = sum(pm.dropped_full for pm in p.priorities)
            drops.append((label, "0.6", 100 * dropped / offered, 100 * blocking))
    panels = [
        (waits, "mean queue wait (ms, log)", "Mean queue wait (M/M/c; Cobham per priority class)"),
        (
            drops,
            "share dropped (% of offered)",
            "drop-new: share dropped vs M/M/c/K blocking, K = maxsize + c",
        ),
    ]
    panels = [panel for panel in panels if panel[0]]
    if not panels:
        return None
    labels = list(dict.fromkeys(row[0] for rows, _, _ in panels for row in rows))
    markers = dict(zip(labels, itertools.cycle("osD^vP*X<>"), strict=False))
    fig, axes = _figure(4.7 * len(panels) + 2.4, 5.2, 1, len(panels))
    for ax, (rows, what, title) in zip(axes[0], panels, strict=True):
        log = rows is waits
        for label, color, sim, th in rows:
            ax.plot(th, sim, markers[label], color=color, ms=7, mec="black", mew=0.6, zorder=3)
            # The relative error is what a reader checks; on the diagonal 3% is a hairline.
            error = 100 * (sim / th - 1)
            ax.annotate(
                f"{error:+.1f}%",
                (th, sim),
                xytext=(7, -3),
                textcoords="offset points",
                fontsize=7,
                color="darkred" if abs(error) > 3 else "black",
            )
        values = [v for *_, sim, th in rows for v in (sim, th)]
        lo, hi = (min(values) / 1.5, max(values) * 1.5) if log else (0.8 * min(values), 1.15 * max(values))
        # y = x, with the ±3% the sweep aims for as a band around it.
        xs = [lo * (hi / lo) ** (i / 100) if log else lo + (hi - lo) * i / 100 for i in range(101)]
        ax.fill_between(xs, [0.97 * x for x in xs], [1.03 * x for x in xs], color="0.6", alpha=0.35, lw=0)
        ax.plot([lo, hi], [lo, hi], "--", color="0.4", lw=0.8)
        if log:
            ax.set_xscale("log")
            ax.set_yscale("log")
            # Plain numbers ("20", not a power of ten) at 1-2-5 steps, or at every digit
            # when the range is too narrow for three of those (it spans at least 2.25x).
            decades = range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for steps in ((1, 2, 5), range(1, 10)):
                ticks = [m * 10**e for e in decades for m in steps if lo <= m * 10**e <= hi]
                if len(ticks) >= 3:
                    break
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
            ax.minorticks_off()
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        ax.set_aspect("equal")
        ax.grid(True, alpha=0.3)
        ax.set_xlabel(f"theory: {what}")
        ax.set_ylabel(f"simulated: {what}")
        ax.set_title(title, fontsize=9)
    handles: list[Any] = [
        Line2D([], [], color="0.4", ls="--", lw=0.8, label="simulated = theory"),
        Patch(color="0.6", alpha=0.35, label="within ±3%"),
        *(Line2D([], [], marker=markers[lb], ls="", color="white", mec="black", label=lb) for lb in labels),
    ]
    if levels > 1:
        handles += [
            Line2D([], [], marker="o", ls="", color=_priority_color(lv, levels), mec="black", mew=0.6,
                   label=f"class {_priority_label(lv)}")
            for lv in range(levels)
        ]  # fmt: skip
    if levels > 1 and any(color == "0.6" for _, color, _, _ in waits):
        handles.append(
            Line2D([], [], marker="o", ls="", color="0.6", mec="black", mew=0.6, label="one class (FIFO)")
        )
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle(
        "Simulated vs queueing theory (virtual clock, Poisson arrivals, exponential service)\n"
        "each label: simulated / theory − 1",
        fontsize=10,
    )
    return fig
