"""streamsim: benchmark a bounded asyncio priority broker: run a scenario or a sweep,
plot a report, compare reports, gate CI on regressions.

One ``cmd_<name>(args) -> int`` per subcommand. Errors in the input print one line
to stderr and exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import enum
import math
import sys
import typing
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from .config import Scenario, load_sweep, parse_scenario
from .errors import ConfigError, IncompatibleReports, StreamsimError
from .interrupt import INTERRUPTS, Interrupted

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from .report import Report

__all__ = ("main",)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _choices(annotation: Any) -> list[str]:
    """The values a Literal or enum field takes (``maxsize``'s "unbounded" too)."""
    out: list[str] = []
    for arg in typing.get_args(annotation) or (annotation,):
        if isinstance(arg, type) and issubclass(arg, enum.Enum):
            out += [str(m.value) for m in arg]
        elif isinstance(arg, str):
            out.append(arg)
        elif typing.get_origin(arg) is typing.Literal:
            out += [str(v) for v in typing.get_args(arg)]
    return out


def _scenario_flags(parser: argparse.ArgumentParser) -> None:
    for name, field in Scenario.model_fields.items():
        help_text = field.description or ""
        choices = _choices(field.annotation)
        if choices:
            help_text = f"{help_text}{'; ' if help_text else ''}{' | '.join(choices)}"
        default = field.default if field.default is not None else None
        if default is not None and not isinstance(default, list):
            help_text = f"{help_text} (default {getattr(default, 'value', default)})".strip()
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, metavar="V", help=help_text)


def _scenario_from_args(args: argparse.Namespace) -> Scenario:
    data: dict[str, Any] = {}
    for name, field in Scenario.model_fields.items():
        value = getattr(args, name)
        if value is None:
            continue
        if "list" in str(field.annotation):
            value = [v for v in value.split(",") if v]
        elif value == "none":
            value = None
        data[name] = value
    if "duration" not in data and "events" not in data:
        data["duration"] = 2.0
    if data.get("arrival", "poisson") in ("constant", "poisson", "bursty") and not {"rate", "load"} & set(
        data
    ):
        data["load"] = 0.8
    return parse_scenario(data)


def _write_outputs(report: Report, out_dir: Path, *, plots: bool) -> None:
    from .summary import summary_markdown

    (out_dir / "summary.md").write_text(summary_markdown(report))
    if plots:
        from .plots import write_plots

        write_plots(report, out_dir / "plots")


def _print_summary(report: Report) -> None:
    from .summary import summary_text

    print(summary_text(report), end="")


def _output_dir(path: str, flag: str) -> Path:
    """``path`` as a directory we can write into, made now: not after an hour of running."""
    out = Path(path)
    if out.name == "report.json":
        out = out.parent  # a report's path means its directory
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".streamsim-write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"{flag}: cannot write to {str(out)!r}: {exc.strerror or exc}") from None
    return out


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return value


def _number(low: float, high: float, *, low_open: bool, what: str) -> Callable[[str], float]:
    """An argparse type: a number in [low, high) (or (low, high) with ``low_open``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (low < value if low_open else low <= value) or not value < high:
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value

    return parse


_fraction = _number(0, 1, low_open=True, what="a number in (0, 1)")
_percent = _number(0, 100, low_open=False, what="a percentage in [0, 100)")


def cmd_run(args: argparse.Namespace) -> int:
    """Run one scenario given by flags."""
    from .sweep import run_points

    scenario = _scenario_from_args(args).normalized()
    out_dir = _output_dir(args.out, "--out") if args.out else None
    sweep_def = {
        "name": "run",
        "repeats": args.repeats,
        "warmup": 0,
        "base": scenario.model_dump(mode="json"),
    }
    try:
        with INTERRUPTS.install():  # a graceful stop while running; plain Ctrl-C after
            report = run_points(
                [("run", {}, scenario)], sweep_def=sweep_def, repeats=args.repeats, warmup=0, out_dir=out_dir
            )
    except Interrupted as exc:
        return _interrupted(exc, out_dir)
    _print_summary(report)
    if out_dir is not None:
        _write_outputs(report, out_dir, plots=not args.no_plots)
        print(f"report: {out_dir / 'report.json'}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run every point of a sweep file."""
    from .report import read_report
    from .sweep import default_out_dir, run_sweep

    sweep = load_sweep(args.file)
    completed = []
    if args.resume:
        out_dir = _output_dir(args.resume, "--resume")
        previous = read_report(out_dir)
        if previous.sweep.get("name") != sweep.name:
            raise ConfigError(
                f"--resume: {out_dir} holds sweep {previous.sweep.get('name')!r}, not {sweep.name!r}"
            )
        completed = previous.points
    else:
        out_dir = _output_dir(args.out, "--out") if args.out else default_out_dir(sweep.name)
    try:
        with INTERRUPTS.install():  # a graceful stop while running; plain Ctrl-C after
            report = run_sweep(sweep, out_dir, completed=completed)
    except Interrupted as exc:
        return _interrupted(exc, out_dir)
    _write_outputs(report, out_dir, plots=not args.no_plots)
    _print_summary(report)
    total_s = sum(p.wall_s for p in report.points)
    print(f"\n{len(report.points)} points in {total_s:.0f} s; report: {out_dir / 'report.json'}")
    print(f"summary: {out_dir / 'summary.md'}" + ("" if args.no_plots else f"; plots: {out_dir / 'plots'}"))
    return 0


def _interrupted(exc: Interrupted, out_dir: Path | None) -> int:
    """The partial report is already on disk (written atomically after each point)."""
    from .report import read_report

    where = ""
    if out_dir is not None and (out_dir / "report.json").exists():
        report = read_report(out_dir)
        _write_outputs(report, out_dir, plots=False)
        _print_summary(report)
        where = f"; partial report: {out_dir / 'report.json'} (resume with --resume {out_dir})"
    print(f"streamsim: {exc}{where}", file=sys.stderr)
    return exc.exit_status


def cmd_plot(args: argparse.Namespace) -> int:
    """Re-draw the plots of a report."""
    from .plots import write_plots
    from .report import read_report

    report = read_report(args.report)
    report_path = Path(args.report)
    out_dir = (
        Path(args.out)
        if args.out
        else (report_path if report_path.is_dir() else report_path.parent) / "plots"
    )
    for path in write_plots(report, out_dir):
        print(path)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare two reports point by point, or the strategies inside one report (--by)."""
    from . import compare
    from .report import read_report

    alpha, min_effect = args.alpha, args.min_effect / 100
    if args.by is not None:
        if args.current is not None:
            raise ConfigError("--by compares strategies inside one report: give one report, got two")
        comparison = compare.compare_by(
            read_report(args.base), args.by, args.base_value, alpha=alpha, min_effect=min_effect
        )
    else:
        if args.current is None:
            raise ConfigError("compare needs BASE and CURRENT reports (or one report and --by FIELD)")
        if args.base_value is not None:
            raise ConfigError("--base VALUE goes with --by FIELD")
        base, current = compare.load_pair(args.base, args.current)
        title = f"{args.base} -> {args.current}"
        comparison = compare.compare_reports(base, current, title=title, alpha=alpha, min_effect=min_effect)
    for warning in comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    patterns = args.metric or compare.HEADLINE
    print(compare.render_comparison(comparison, patterns, markdown=args.markdown), end="")
    if args.plot:
        print(f"plot: {compare.write_plot(comparison, Path(args.plot), patterns)}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """The CI gate: exit 1 when a metric is worse than its budget and significantly so."""
    from . import compare

    base, current = compare.load_pair(args.baseline, args.current)
    result = compare.check_reports(base, current, compare.load_budget(args.budget))
    for warning in result.comparison.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(compare.render_check(result, markdown=args.markdown), end="")
    return 0 if result.passed else 1


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="streamsim", description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run one scenario from flags")
    _scenario_flags(run)
    run.add_argument("--repeats", type=_positive_int, default=1, help="measured runs (default 1)")
    run.add_argument("--out", help="write report.json, summary.md and plots here")
    run.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    run.set_defaults(func=cmd_run)

    sweep = sub.add_parser("sweep", help="run a sweep file (TOML)")
    sweep.add_argument("file", help="sweep definition, e.g. bench/default.toml")
    sweep.add_argument("--out", help="output directory (default results/<timestamp>-<name>)")
    sweep.add_argument("--no-plots", action="store_true", help="skip the PNGs")
    sweep.add_argument(
        "--resume", metavar="DIR", help="finish an interrupted sweep in DIR, keeping its done points"
    )
    sweep.set_defaults(func=cmd_sweep)

    plot = sub.add_parser("plot", help="re-draw the plots of a report")
    plot.add_argument("report", help="report.json or its directory")
    plot.add_argument("--out", help="directory for the PNGs (default: plots/ beside the report)")
    plot.set_defaults(func=cmd_plot)

    compare = sub.add_parser("compare", help="compare two reports, or strategies inside one (--by)")
    compare.add_argument("base", help="the baseline report (report.json or its directory)")
    compare.add_argument("current", nargs="?", help="the report to compare with it")
    compare.add_argument("--by", metavar="FIELD", help="compare FIELD's values in one report (policy)")
    compare.add_argument("--base", dest="base_value", metavar="VALUE", help="with --by: the baseline value")
    compare.add_argument("--metric", action="append", metavar="GLOB", help="metrics shown (repeatable; '*')")
    compare.add_argument("--markdown", action="store_true", help="a Markdown table (for a CI comment)")
    compare.add_argument("--plot", metavar="PNG", help="also draw the changes with their intervals")
    compare.add_argument("--alpha", type=_fraction, default=0.05, help="significance level (default 0.05)")
    compare.add_argument(
        "--min-effect", type=_percent, default=5.0, metavar="PCT", help="smallest change, %%"
    )
    compare.set_defaults(func=cmd_compare)

    check = sub.add_parser("check", help="the CI gate: fail on significant changes beyond budget")
    check.add_argument("--baseline", required=True, metavar="BASE", help="baseline report (results/baseline)")
    check.add_argument("current", help="the report to check")
    check.add_argument("--budget", metavar="TOML", help="budgets per metric (default: built in)")
    check.add_argument("--markdown", action="store_true", help="Markdown output (for a CI comment)")
    check.set_defaults(func=cmd_check)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, IncompatibleReports) as exc:
        print(f"streamsim: error: {exc}", file=sys.stderr)
        return 2
    except StreamsimError as exc:
        print(f"streamsim: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("streamsim: interrupted", file=sys.stderr)
        return 130
