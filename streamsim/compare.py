"""Compare two reports (or two strategies inside one report) and gate CI on regressions.

Per matched point and metric: the change (a ratio, or a difference in percentage
points for rates such as ``drop_rate``), its 95% interval, and a verdict: better,
worse or not significant.

The test. Sweeps measure 3 to 5 repeats per point. With 3 against 3, Mann-Whitney's
smallest two-sided p-value is 2 / C(6, 3) = 0.10: it can never reach 5%, however
large the change. A bootstrap of 3 values has the same granularity (its "95%"
interval is the min/max envelope, about 90% in truth). So the test is Welch's
t-test on the logarithm of the per-repeat values, which uses their magnitudes and
can reach significance with 2 or more repeats a side; on logs, its interval is an
interval for the ratio of geometric means, the estimate shown. Rates in [0, 1]
(drop rates) are tested on their raw values, as a difference in points. An outlier
repeat inflates the variance and makes a change *less* significant, so a noisy run
errs towards "not significant", the safe side for a gate. A significant change
smaller than the minimum effect is still "not significant": nobody acts on 1%.

Virtual-clock points are deterministic (same seed, same result, byte for byte), so
their metrics are compared exactly: any difference in any repeat is significant.

The gate (``check``): a metric fails only when it is worse than its budget *and* the
change is significant. On closed-loop wall-clock points the throughput budget is
applied to ``throughput_rel`` (throughput over the in-process reference pipeline),
because absolute throughput there follows the machine's speed of the moment.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import statistics
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .config import read_toml
from .errors import ConfigError, IncompatibleReports
from .report import read_report, read_report_json

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .report import Estimate, Point, Report

__all__ = (
    "Budget",
    "Change",
    "CheckResult",
    "Comparison",
    "check_reports",
    "compare_by",
    "compare_reports",
    "load_budget",
    "load_pair",
)

ALPHA = 0.05  # significance level of the per-metric test
MIN_EFFECT = 0.05  # compare: ratio changes below 5% are not called better or worse
MIN_POINTS = 0.005  # compare: rate changes below 0.5 points likewise
HEADLINE = (
    "throughput_hz",
    "throughput_rel",
    "end_to_end_p99_ms",
    "queue_wait_p99_ms",
    "drop_rate",
    "drain_ms",
)
COSMETIC_SWEEP_FIELDS = frozenset({"name", "description"})
MACHINE_FIELDS = ("hostname", "cpu_model", "cpu_count")
FIELD_ALIASES = {"policy": "overflow"}
THROUGHPUT = "throughput"  # budget key: throughput_rel on closed-loop wall-clock points, else throughput_hz
DEFAULT_BUDGET: dict[str, float | None] = {
    THROUGHPUT: -0.10,  # 10% lower
    "end_to_end_p99_ms": 0.15,  # 15% higher
    "drop_rate": 0.005,  # 0.5 points higher
    "drain_ms": 0.20,  # 20% higher
}

Verdict = Literal["better", "worse", "not significant", "changed", "no data"]


# ---------------------------------------------------------------------- metrics


@dataclasses.dataclass(frozen=True, slots=True)
class MetricKind:
    """How to read a metric's change."""

    direction: int  # +1 higher is better, -1 lower is better, 0 neither (informational)
    points: bool  # a rate in [0, 1]: changes are differences in percentage points, not ratios
    unit: str


def metric_kind(name: str) -> MetricKind:
    """Direction and unit of a metric, from its name (``drop_rate.p0`` is a ``drop_rate``)."""
    stem = name.split(".", 1)[0]
    if stem == "drop_rate":
        return MetricKind(-1, True, "points")
    if stem in ("throughput_hz", "offered_hz"):
        return MetricKind(+1, False, "events/s")
    if stem == "throughput_rel":
        return MetricKind(+1, False, "x reference")
    if stem == "reference_hz":
        return MetricKind(0, False, "events/CPU-s")  # the machine's speed, not the code's
    if stem.endswith("_ms"):
        return MetricKind(-1, False, "ms")  # latencies, drain and blocked time
    return MetricKind(0, False, "")  # peak_depth and anything new


# ---------------------------------------------------------------------- statistics


def _welch(
    base: Sequence[float], current: Sequence[float]
) -> tuple[float, float | None, float | None, float | None]:
    """mean(current) - mean(base), its 95% interval and the two-sided p-value of
    Welch's t-test; interval and p are None with fewer than 2 values a side."""
    from scipy import stats

    d = statistics.fmean(current) - statistics.fmean(base)
    n1, n2 = len(base), len(current)
    if n1 < 2 or n2 < 2:
        return d, None, None, None
    v1, v2 = statistics.variance(base) / n1, statistics.variance(current) / n2
    se = math.sqrt(v1 + v2)
    if se == 0:  # both sides constant: any difference is real
        return d, d, d, 0.0 if d else 1.0
    df = (v1 + v2) ** 2 / (v1**2 / (n1 - 1) + v2**2 / (n2 - 1))
    half = float(stats.t.ppf(0.975, df)) * se
    p = float(2 * stats.t.sf(abs(d) / se, df))
    return d, d - half, d + half, p


@dataclasses.dataclass(frozen=True)
class Change:
    """One metric of one matched pair of points."""

    point: str  # the point's id (with --by: "<id> vs <field>=<base value>")
    metric: str
    kind: MetricKind
    base: float | None  # median of the repeats
    current: float | None
    estimate: float | None  # ratio current/base (geometric means); points: difference of means
    low: float | None  # 95% interval of the estimate (None when it cannot be computed)
    high: float | None
    p_value: float | None  # None: exact comparison, or too few repeats to test
    exact: bool  # virtual clock: compared value by value
    significant: bool
    verdict: Verdict

    @property
    def change(self) -> float | None:
        """Signed change as a fraction: ratio - 1, or the difference for rates."""
        if self.estimate is None:
            return None
        return self.estimate if self.kind.points else self.estimate - 1

    @property
    def harm(self) -> float | None:
        """How much worse, as a fraction (negative: better); None for informational metrics."""
        change = self.change
        if change is None or self.kind.direction == 0:
            return None
        return -self.kind.direction * change

    def describe(self) -> str:
        """pyperf/asv wording: "1.18x slower", "+0.90 points", "no change"."""
        est = self.estimate
        if est is None:
            return "no data"
        if self.kind.points:
            return "no change" if est == 0 else f"{100 * est:+.2f} points"
        if est == 1:
            return "no change"
        if est == math.inf:
            return "was 0"
        if est <= 0:
            return "now 0"
        up = est > 1
        factor = est if up else 1 / est
        if self.kind.direction == 0:
            word = "higher" if up else "lower"
        elif self.kind.direction > 0:
            word = "faster" if up else "slower"
        else:
            word = "slower" if up else "faster"
        return f"{factor:.2f}x {word}"

    def interval(self) -> str:
        if self.exact:
            return "exact"
        if self.low is None or self.high is None:
            return "-"
        if self.kind.points:
            return f"[{100 * self.low:+.2f}, {100 * self.high:+.2f}] pt"
        return f"[{_pct(self.low - 1)}, {_pct(self.high - 1)}]"


def _pct(fraction: float) -> str:
    if not math.isfinite(fraction):
        return "+inf%" if fraction > 0 else "-inf%"
    return f"{100 * fraction:+.1f}%"


def compare_metric(
    point: str,
    metric: str,
    base: Estimate,
    current: Estimate,
    *,
    exact: bool,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_points: float = MIN_POINTS,
) -> Change:
    """Compare one metric's per-repeat values. ``exact``: deterministic values, any
    difference is significant (and no minimum effect applies)."""
    kind = metric_kind(metric)
    b = [v for v in base.values if v is not None]
    c = [v for v in current.values if v is not None]
    if not b or not c:
        return Change(
            point, metric, kind, base.median, current.median, None, None, None, None, exact, False, "no data"
        )
    estimate: float | None
    low = high = p = None
    if exact:
        significant = list(base.values) != list(current.values)
        mb, mc = statistics.median(b), statistics.median(c)
        estimate = (mc - mb) if kind.points else _ratio(mc, mb)
        low = high = estimate
    elif kind.points:
        estimate, low, high, p = _welch(b, c)
        significant = p is not None and p < alpha
    elif min(b) > 0 and min(c) > 0:
        d, lo, hi, p = _welch([math.log(v) for v in b], [math.log(v) for v in c])
        estimate = math.exp(d)
        low, high = (None, None) if lo is None or hi is None else (math.exp(lo), math.exp(hi))
        significant = p is not None and p < alpha
    else:  # zeros (an idle queue's wait, say): test raw values, report the ratio of means
        d, lo, hi, p = _welch(b, c)
        mb = statistics.fmean(b)
        estimate = _ratio(mb + d, mb)
        if mb > 0 and lo is not None and hi is not None:
            low, high = (mb + lo) / mb, (mb + hi) / mb
        significant = p is not None and p < alpha
    change = None if estimate is None else (estimate if kind.points else estimate - 1)
    verdict: Verdict
    if not significant or change is None:
        verdict = "not significant"
    elif not exact and abs(change) < (min_points if kind.points else min_effect):
        verdict = "not significant"
    elif kind.direction == 0 or change == 0:  # exact: the repeats differ, their median does not
        verdict = "changed"
    else:
        verdict = "worse" if -kind.direction * change > 0 else "better"
    return Change(
        point, metric, kind, base.median, current.median, estimate, low, high, p, exact, significant, verdict
    )


def _ratio(current: float, base: float) -> float:
    if base > 0:
        return current / base
    return 1.0 if current == base else math.inf


# ---------------------------------------------------------------------- comparisons


@dataclasses.dataclass
class Comparison:
    """Every change between two sets of points, and what could not be matched."""

    title: str
    changes: list[Change]
    only_base: list[str] = dataclasses.field(default_factory=list)  # point ids with no counterpart
    only_current: list[str] = dataclasses.field(default_factory=list)
    warnings: list[str] = dataclasses.field(default_factory=list)
    # Each matched current point with its changes (what the gate checks against budgets).
    pairs: list[tuple[Point, list[Change]]] = dataclasses.field(default_factory=list)

    def selected(self, patterns: Sequence[str] = HEADLINE) -> list[Change]:
        return [c for c in self.changes if any(fnmatch.fnmatchcase(c.metric, pat) for pat in patterns)]

    def geometric_means(self, patterns: Sequence[str] = HEADLINE) -> list[tuple[str, int, Change]]:
        """Per metric, across points: the geometric mean of the ratios (mean difference
        for rates), as a ``Change`` for its wording; with the number of points."""
        by_metric: dict[str, list[Change]] = {}
        for change in self.selected(patterns):
            if change.estimate is not None and (change.kind.points or 0 < change.estimate < math.inf):
                by_metric.setdefault(change.metric, []).append(change)
        out = []
        for metric, changes in by_metric.items():
            kind = changes[0].kind
            if kind.points:
                mean = statistics.fmean(c.estimate for c in changes if c.estimate is not None)
            else:
                mean = math.exp(
                    statistics.fmean(math.log(c.estimate) for c in changes if c.estimate is not None)
                )
            summary = Change(
                "geometric mean", metric, kind, None, None, mean, None, None, None, False, False, "changed"
            )
            out.append((metric, len(changes), summary))
        return out


def _comparable(point: Point) -> bool:
    return point.status == "ok" and bool(point.metrics)


def _pair_changes(label: str, base: Point, current: Point, **options: float) -> list[Change]:
    exact = base.scenario.get("clock") == "virtual" and current.scenario.get("clock") == "virtual"
    names = [name for name in base.metrics if name in current.metrics]
    return [
        compare_metric(label, name, base.metrics[name], current.metrics[name], exact=exact, **options)
        for name in names
    ]


def _point_key(point: Point) -> str:
    """Points match by the parameters the sweep varies (the sweep definitions being equal,
    equal parameters mean the same scenario; a difference is warned about)."""
    return json.dumps(point.params, sort_keys=True)


def check_compatible(base: Report, current: Report) -> list[str]:
    """Raise ``IncompatibleReports`` unless both reports ran the same sweep under the
    same schema; return warnings (different machines)."""
    if base.schema_version != current.schema_version:
        raise IncompatibleReports(
            f"schema_version differs: base {base.schema_version}, current {current.schema_version}; "
            "rerun both with the same streamsim"
        )
    b = {k: v for k, v in base.sweep.items() if k not in COSMETIC_SWEEP_FIELDS}
    c = {k: v for k, v in current.sweep.items() if k not in COSMETIC_SWEEP_FIELDS}
    if b != c:
        diffs = _differences(b, c)
        shown = "; ".join(diffs[:3]) + (f"; and {len(diffs) - 3} more" if len(diffs) > 3 else "")
        raise IncompatibleReports(
            f"sweep definitions differ ({shown}): compare runs of the same sweep file, "
            "or refresh the baseline (nox -s baseline)"
        )
    warnings = []
    env_b, env_c = base.environment, current.environment
    differ = [
        f"{field} {getattr(env_b, field)!r} vs {getattr(env_c, field)!r}"
        for field in (*MACHINE_FIELDS, "python")
        if getattr(env_b, field) != getattr(env_c, field)
    ]
    if differ:
        warnings.append(
            "the reports come from different machines or Pythons ("
            + "; ".join(differ)
            + "): absolute timings may differ for reasons other than the code"
        )
    return warnings


def _differences(a: Any, b: Any, path: str = "sweep") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b), key=str):
            out += _differences(a.get(key), b.get(key), f"{path}.{key}")
        return out
    return [] if a == b else [f"{path}: {json.dumps(a)} vs {json.dumps(b)}"]


def compare_reports(
    base: Report,
    current: Report,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_points: float = MIN_POINTS,
    title: str = "base -> current",
) -> Comparison:
    """Match points by parameters and scenario and compare every metric they share.

    Raises:
        IncompatibleReports: different schema versions or sweep definitions.
    """
    warnings = check_compatible(base, current)
    current_by_key = {_point_key(p): p for p in current.points}
    matched: set[str] = set()
    comparison = Comparison(title, [], warnings=warnings)
    for point in base.points:
        key = _point_key(point)
        other = current_by_key.get(key)
        if other is None:
            comparison.only_base.append(point.id)
            continue
        matched.add(key)
        # A field missing on one side and null on the other is a field added since: the same.
        differ = sorted(
            k for k in {*point.scenario, *other.scenario} if point.scenario.get(k) != other.scenario.get(k)
        )
        if differ:
            warnings.append(
                f"{point.id}: scenario differs in {', '.join(differ)} (another streamsim version?)"
            )
        if not (_comparable(point) and _comparable(other)):
            which = "base" if not _comparable(point) else "current"
            bad = point if which == "base" else other
            warnings.append(f"{point.id}: not compared, {bad.status} in {which} ({bad.note or 'no metrics'})")
            continue
        changes = _pair_changes(
            point.id, point, other, alpha=alpha, min_effect=min_effect, min_points=min_points
        )
        comparison.changes += changes
        comparison.pairs.append((other, changes))
    comparison.only_current = [p.id for p in current.points if _point_key(p) not in matched]
    return comparison


def compare_by(
    report: Report,
    field: str,
    base_value: str | None = None,
    *,
    alpha: float = ALPHA,
    min_effect: float = MIN_EFFECT,
    min_points: float = MIN_POINTS,
) -> Comparison:
    """Compare strategies inside one report: pair points equal in every parameter but
    ``field`` (``policy`` means ``overflow``); the baseline is ``base_value`` or the
    field's first value in the report.

    Raises:
        ConfigError: the sweep does not vary ``field``, or ``base_value`` is not one of its values.
    """
    field = FIELD_ALIASES.get(field, field)
    varied = sorted({key for p in report.points for key in p.params})
    if field not in varied:
        raise ConfigError(
            f"--by {field}: the sweep does not vary it; it varies {', '.join(varied) or 'nothing'}"
        )
    values: list[str] = []
    groups: dict[str, dict[str, Point]] = {}
    for point in report.points:
        value = _text(point.params.get(field))
        if value not in values:
            values.append(value)
        rest = json.dumps({k: v for k, v in point.params.items() if k != field}, sort_keys=True)
        groups.setdefault(rest, {}).setdefault(value, point)
    base = values[0] if base_value is None else base_value
    if base not in values:
        raise ConfigError(f"--base {base_value}: {field} takes {', '.join(values)} in this report")
    changes: list[Change] = []
    unpaired_base, unpaired_other, warnings = [], [], []
    for group in groups.values():
        anchor = group.get(base)
        others = [p for value, p in group.items() if value != base]
        if anchor is None:
            unpaired_other += [p.id for p in others]
            continue
        if not others:
            unpaired_base.append(anchor.id)
            continue
        for other in others:
            label = f"{other.id} vs {field}={base}"
            if not (_comparable(anchor) and _comparable(other)):
                warnings.append(f"{label}: not compared ({anchor.status} / {other.status})")
                continue
            changes += _pair_changes(
                label, anchor, other, alpha=alpha, min_effect=min_effect, min_points=min_points
            )
    title = f"{field}: each value against {field}={base}"
    return Comparison(title, changes, unpaired_base, unpaired_other, warnings)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def load_pair(base_path: str | Path, current_path: str | Path) -> tuple[Report, Report]:
    """Read two reports, refusing different schema versions with ``IncompatibleReports``
    before either is validated against this streamsim's schema."""
    versions = [_schema_version(Path(p)) for p in (base_path, current_path)]
    if versions[0] != versions[1]:
        raise IncompatibleReports(
            f"schema_version differs: base {versions[0]!r} ({base_path}), current {versions[1]!r} "
            f"({current_path}); rerun both with the same streamsim"
        )
    return read_report(base_path), read_report(current_path)


def _schema_version(path: Path) -> Any:
    _, data = read_report_json(path)
    return data.get("schema_version") if isinstance(data, dict) else None


# ---------------------------------------------------------------------- the gate


@dataclasses.dataclass(frozen=True)
class Budget:
    """Worst allowed change per metric: a signed fraction (-0.10: 10% lower; for rates,
    0.005: 0.5 points higher), None to leave a metric unchecked."""

    alpha: float = ALPHA
    defaults: tuple[tuple[str, float | None], ...] = tuple(DEFAULT_BUDGET.items())
    overrides: tuple[tuple[str, tuple[tuple[str, float | None], ...]], ...] = ()  # (point glob, limits)

    def limits(self, point: Point) -> dict[str, float]:
        """Metric name -> limit for ``point``: defaults, then each matching override in
        file order (a later key wins; ``off`` removes)."""
        tables = [self.defaults] + [
            t for pattern, t in self.overrides if fnmatch.fnmatchcase(point.id, pattern)
        ]
        closed_wall = point.scenario.get("arrival") == "closed" and point.scenario.get("clock") == "wall"
        out: dict[str, float] = {}
        for table in tables:
            for key, limit in table:
                if key == THROUGHPUT:
                    names = [
                        "throughput_rel"
                        if closed_wall and "throughput_rel" in point.metrics
                        else "throughput_hz"
                    ]
                else:
                    names = [m for m in point.metrics if fnmatch.fnmatchcase(m, key)]
                for name in names:
                    if limit is None:
                        out.pop(name, None)
                    else:
                        out[name] = limit
        return out


def _parse_limit(key: str, raw: Any, where: str) -> float | None:
    if raw == "off":
        return None
    text = raw.replace(" ", "") if isinstance(raw, str) else ""
    kind = metric_kind("throughput_hz" if key == THROUGHPUT else key.rstrip("*?"))
    try:
        if text.endswith("%") and not kind.points:
            value = float(text[:-1]) / 100
        elif kind.points and text.endswith(("pt", "points")):
            value = float(text.removesuffix("points").removesuffix("pt")) / 100
        else:
            raise ValueError
        if not math.isfinite(value):
            raise ValueError
    except ValueError:
        unit = '"+0.5pt" (percentage points)' if kind.points else '"-10%" or "+15%"'
        raise ConfigError(f'{where}{key}: budget must be {unit} or "off", got {raw!r}') from None
    if kind.direction == 0:
        raise ConfigError(f"{where}{key}: neither higher nor lower is better for it; it cannot have a budget")
    if value == 0 or (value > 0) != (kind.direction < 0):
        worse = "lower" if kind.direction > 0 else "higher"
        sign = "-" if worse == "lower" else "+"
        raise ConfigError(f"{where}{key}: worse is {worse}, so the budget must be {sign}N, got {raw!r}")
    return value


def load_budget(path: str | Path | None) -> Budget:
    """Read a budget TOML file (None: the built-in defaults).

    Format: ``alpha = 0.05``; ``[budget]`` metric (or glob, or ``throughput``) =
    ``"-10%"`` / ``"+15%"`` / ``"+0.5pt"`` / ``"off"``; ``[[override]]`` tables with
    ``points = "<glob on the point id>"`` and the same keys.

    Raises:
        ConfigError: unreadable file or a bad value (named, one line).
    """
    if path is None:
        return Budget()
    path = Path(path)
    data = read_toml(path, "budget")
    unknown = set(data) - {"alpha", "budget", "override"}
    if unknown:
        raise ConfigError(f"budget {path}: {sorted(unknown)[0]}: unknown field (alpha, budget, override)")
    alpha = data.get("alpha", ALPHA)
    if not isinstance(alpha, float) or not 0 < alpha < 1:
        raise ConfigError(f"budget {path}: alpha must be a number in (0, 1), got {alpha!r}")
    table = data.get("budget", {})
    if not isinstance(table, dict):
        raise ConfigError(f"budget {path}: budget must be a table of metric = limit")
    defaults = {
        **DEFAULT_BUDGET,
        **{k: _parse_limit(k, v, f"budget {path}: budget.") for k, v in table.items()},
    }
    if not isinstance(data.get("override", []), list):
        raise ConfigError(f"budget {path}: override: must be [[override]] tables, got {data['override']!r}")
    overrides = []
    for i, override in enumerate(data.get("override", [])):
        where = f"budget {path}: override[{i}]."
        if not isinstance(override, dict) or not isinstance(override.get("points"), str):
            raise ConfigError(f'{where}points: required: a glob on the point id, e.g. "*arrival=closed*"')
        limits = tuple((k, _parse_limit(k, v, where)) for k, v in override.items() if k != "points")
        overrides.append((override["points"], limits))
    return Budget(alpha, tuple(defaults.items()), tuple(overrides))


@dataclasses.dataclass(frozen=True)
class GateItem:
    change: Change
    limit: float  # signed, as in the budget

    @property
    def failed(self) -> bool:
        harm = self.change.harm
        return self.change.significant and harm is not None and harm > abs(self.limit)

    @property
    def improved(self) -> bool:
        harm = self.change.harm
        return self.change.significant and harm is not None and -harm > abs(self.limit)


@dataclasses.dataclass
class CheckResult:
    comparison: Comparison
    items: list[GateItem]
    alpha: float

    @property
    def failures(self) -> list[GateItem]:
        return [item for item in self.items if item.failed]

    @property
    def improvements(self) -> list[GateItem]:
        return [item for item in self.items if item.improved]

    @property
    def passed(self) -> bool:
        return not self.failures


def check_reports(base: Report, current: Report, budget: Budget) -> CheckResult:
    """The CI gate: every budgeted metric of every matched point.

    Raises:
        IncompatibleReports: different schema versions or sweep definitions, or no
            budgeted metric to check at all (a gate that checks nothing must not pass).
    """
    comparison = compare_reports(base, current, alpha=budget.alpha)
    items = []
    for point, changes in comparison.pairs:
        by_metric = {change.metric: change for change in changes}
        for metric, limit in budget.limits(point).items():
            change = by_metric.get(metric)
            if change is not None and change.verdict != "no data":
                items.append(GateItem(change, limit))
    if not items:
        raise IncompatibleReports(
            "nothing to check: no budgeted metric of a point present in both reports "
            f"({len(comparison.only_base)} points only in base, {len(comparison.only_current)} in current)"
        )
    return CheckResult(comparison, items, budget.alpha)


# ---------------------------------------------------------------------- rendering

# base and current show medians; change and interval are of the geometric means (see above),
# which an outlier repeat can move the other way: the verdict follows the interval.
COLUMNS = ("point", "metric", "base median", "current median", "change", "95% interval", "verdict")


def _value(value: float | None, metric: str) -> str:
    if value is None:
        return "-"
    if metric_kind(metric).points:
        return f"{100 * value:.2f}%"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}"


def _rows(changes: Iterable[Change]) -> list[list[str]]:
    rows, last = [], None
    for c in changes:
        label = "" if c.point == last else c.point
        base, current = _value(c.base, c.metric), _value(c.current, c.metric)
        rows.append([label, c.metric, base, current, c.describe(), c.interval(), c.verdict])
        last = c.point
    return rows


def _text_table(header: Sequence[str], rows: list[list[str]]) -> str:
    table = [list(header), *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    lines = []
    for n, row in enumerate(table):
        cells = [
            c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _md_table(header: Sequence[str], rows: list[list[str]]) -> str:
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(header))) + "|"
    lines = ["| " + " | ".join(header) + " |", rule]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _footer(comparison: Comparison, patterns: Sequence[str], markdown: bool) -> list[str]:
    bullet = "- " if markdown else "  "
    lines = []
    means = comparison.geometric_means(patterns)
    if means:
        lines += ["", "**Geometric mean across points:**" if markdown else "Geometric mean across points:"]
        for metric, n, summary in means:
            how = ", mean difference" if summary.kind.points else ""
            lines.append(f"{bullet}{metric}: {summary.describe()} ({n} points{how})")
    for label, ids in (("only in base", comparison.only_base), ("only in current", comparison.only_current)):
        if ids:
            lines += ["", f"{label} (not compared):"] + [f"{bullet}{i}" for i in ids]
    return lines


def render_comparison(
    comparison: Comparison, patterns: Sequence[str] = HEADLINE, *, markdown: bool = False
) -> str:
    """The comparison table (terminal or Markdown), geometric means and unmatched points."""
    changes = comparison.selected(patterns)
    rows = _rows(changes)
    explain = (
        "change: ratio of the repeats' geometric means (rates: difference of means, in points); "
        "Welch 95% interval; virtual-clock metrics compared exactly"
    )
    if markdown:
        out = [
            f"### streamsim compare: {comparison.title}",
            "",
            explain,
            "",
            _md_table(COLUMNS, rows).rstrip(),
        ]
    else:
        out = [f"streamsim compare: {comparison.title}", explain, "", _text_table(COLUMNS, rows).rstrip()]
    if not rows:
        out.append("(no matched points with these metrics)")
    out += _footer(comparison, patterns, markdown)
    return "\n".join(out) + "\n"


def _gate_line(item: GateItem) -> str:
    c = item.change
    p = "exact" if c.exact else ("p=n/a" if c.p_value is None else f"p={c.p_value:.3g}")
    limit = f"{100 * item.limit:+g} points" if c.kind.points else f"{100 * item.limit:+g}%"
    change = c.describe()
    shown = change if c.kind.points or c.change is None else f"{change} ({_pct(c.change)})"
    return f"{c.point}: {c.metric} {shown}, budget {limit}, interval {c.interval()}, {p}"


def render_check(result: CheckResult, *, markdown: bool = False) -> str:
    """The gate's verdict: failing points and metrics first, then improvements."""
    comparison = result.comparison
    points = len({item.change.point for item in result.items})
    bullet = "- " if markdown else "  "
    failures, improvements = result.failures, result.improvements
    if failures:
        head = (
            f"FAIL: {len(failures)} metric(s) worse than budget and significant (alpha {result.alpha:g}); "
            f"{len(result.items)} checked across {points} points"
        )
    else:
        head = (
            f"OK: {len(result.items)} metrics within budget across {points} points (alpha {result.alpha:g})"
        )
    out = [("### streamsim check: " if markdown else "streamsim check: ") + head]
    if failures:
        out += ["", "Worse beyond budget:"] + [bullet + _gate_line(item) for item in failures]
    if improvements:
        out += ["", "Improved beyond budget:"] + [bullet + _gate_line(item) for item in improvements]
    elif not failures:
        out += ["", "Improved beyond budget: nothing"]
    for label, ids in (("only in base", comparison.only_base), ("only in current", comparison.only_current)):
        if ids:
            out += ["", f"{label} (not checked):"] + [bullet + i for i in ids]
    return "\n".join(out) + "\n"


def write_plot(comparison: Comparison, path: Path, patterns: Sequence[str] = HEADLINE) -> Path:
    """One panel per metric: each point's change with its interval, coloured by verdict."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = {
        "better": "tab:green", "worse": "tab:red", "not significant": "tab:gray", "changed": "tab:blue",
    }  # fmt: skip
    by_metric: dict[str, list[Change]] = {}
    for change in comparison.selected(patterns):
        if change.change is not None and math.isfinite(change.change):
            by_metric.setdefault(change.metric, []).append(change)
    panels = max(len(by_metric), 1)
    rows_max = max((len(v) for v in by_metric.values()), default=1)
    fig, axes = plt.subplots(panels, 1, figsize=(9, 1.2 + panels * (0.9 + 0.28 * rows_max)), squeeze=False)
    for ax, (metric, changes) in zip(axes[:, 0], by_metric.items(), strict=False):
        kind = changes[0].kind
        scale = 100.0
        ys = list(range(len(changes)))
        xs = [scale * (c.change or 0.0) for c in changes]
        lows, highs = [], []
        for c, x in zip(changes, xs, strict=True):
            if c.low is None or c.high is None or c.exact:
                lows.append(0.0)
                highs.append(0.0)
                continue
            lo, hi = (c.low, c.high) if kind.points else (c.low - 1, c.high - 1)
            lows.append(max(x - scale * lo, 0.0))
            highs.append(max(scale * hi - x, 0.0))
        ax.barh(ys, xs, color=[colours.get(c.verdict, "tab:gray") for c in changes], height=0.6)
        ax.errorbar(xs, ys, xerr=[lows, highs], fmt="none", ecolor="black", capsize=3, linewidth=1)
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_yticks(ys, [c.point for c in changes], fontsize=7)
        ax.invert_yaxis()
        better = "higher is better" if kind.direction > 0 else "lower is better" if kind.direction < 0 else ""
        unit = "percentage points" if kind.points else "% (current / base - 1)"
        ax.set_xlabel(f"change in {metric}, {unit}")
        ax.set_title(f"{metric} ({kind.unit}{', ' + better if better else ''})", fontsize=9)
    if not by_metric:
        axes[0, 0].text(0.5, 0.5, "no matched points", ha="center", va="center")
        axes[0, 0].set_axis_off()
    handles = [Patch(color=colour, label=verdict) for verdict, colour in colours.items()]
    fig.legend(handles=handles, loc="upper right", fontsize=8, title="verdict (bars: 95% interval)")
    fig.suptitle(f"streamsim compare: {comparison.title}", fontsize=10, x=0.02, ha="left")
    fig.tight_layout(rect=(0, 0, 0.82, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
