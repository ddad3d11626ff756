"""Plots: every figure with data is written as a valid PNG; no data, no figure, no crash."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from streamsim.clock import uvloop_available
from streamsim.config import Sweep
from streamsim.plots import write_plots
from streamsim.report import Estimate, Point, Report
from streamsim.sweep import run_sweep

if TYPE_CHECKING:
    from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 200_000
VIRTUAL_FIGURES = ("latency_percentiles.png", "drop_rate_vs_maxsize.png", "drain_time.png", "queue_depth.png")


def _sweep(grid: dict[str, list[object]], **base: object) -> Sweep:
    return Sweep.model_validate(
        {
            "name": "plots-test",
            "repeats": 2,
            "base": {
                "producers": 2,
                "consumers": 2,
                "arrival": "poisson",
                "service_mean": 0.005,
                "put_timeout": 0.01,
                **base,
            },
            "grid": [grid],
        }
    )


@pytest.fixture(scope="module")
def virtual_report() -> Report:
    """Three policies, two sizes, two loads, on the virtual clock: fast and exact."""
    sweep = _sweep(
        {"overflow": ["block", "timeout", "shed-lowest"], "maxsize": [2, 20], "load": [0.7, 1.5]},
        clock="virtual",
        events=300,
    )
    return run_sweep(sweep, None, show_progress=False)


def _assert_png(path: Path) -> None:
    data = path.read_bytes()
    assert data.startswith(PNG_SIGNATURE), path
    assert 1_000 < len(data) < MAX_PNG_BYTES, (path, len(data))


def _skipped(point: Point) -> Point:
    return Point(id=point.id, params=point.params, scenario=point.scenario, status="skipped", note="not run")


def test_writes_each_figure_with_data_as_png(virtual_report: Report, tmp_path: Path) -> None:
    written = write_plots(virtual_report, tmp_path / "plots")

    assert [p.name for p in written] == list(VIRTUAL_FIGURES)  # no loop pair: no loops.png
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(VIRTUAL_FIGURES)
    for path in written:
        _assert_png(path)


def test_report_of_skipped_points_writes_nothing(virtual_report: Report, tmp_path: Path) -> None:
    report = virtual_report.model_copy(update={"points": [_skipped(p) for p in virtual_report.points]})

    assert write_plots(report, tmp_path / "plots") == []
    assert not (tmp_path / "plots").exists()


def test_null_metrics_and_missing_keys_are_left_out(virtual_report: Report, tmp_path: Path) -> None:
    first, second, *rest = virtual_report.points
    null = Estimate(median=None, ci_low=None, ci_high=None, ci_level=None, values=[None, None])
    no_metrics = first.model_copy(update={"metrics": {}, "depth": None})
    null_metrics = second.model_copy(update={"metrics": dict.fromkeys(second.metrics, null)})
    points = [no_metrics, null_metrics, _skipped(rest[0]), *rest[1:]]
    report = virtual_report.model_copy(update={"points": points})

    written = write_plots(report, tmp_path)

    assert [p.name for p in written] == list(VIRTUAL_FIGURES)
    for path in written:
        _assert_png(path)


def test_point_without_any_metric_draws_no_figure(virtual_report: Report, tmp_path: Path) -> None:
    point = virtual_report.points[0].model_copy(
        update={"metrics": {}, "priorities": [], "depth": None, "params": {}, "scenario": {}}
    )
    report = virtual_report.model_copy(update={"points": [point]})

    assert write_plots(report, tmp_path) == []


def test_single_point_report_draws(virtual_report: Report, tmp_path: Path) -> None:
    report = virtual_report.model_copy(update={"points": virtual_report.points[-1:]})

    written = write_plots(report, tmp_path)

    assert [p.name for p in written] == list(VIRTUAL_FIGURES)


@pytest.mark.skipif(not uvloop_available(), reason="uvloop is not installed (pip install uvloop)")
def test_loop_pair_draws_loops_figure(tmp_path: Path) -> None:
    """A tiny wall-clock pair (well under a second) that differs only in the loop."""
    sweep = _sweep({"loop": ["asyncio", "uvloop"]}, events=60, service_mean=0.0005, load=0.8, maxsize=10)
    report = run_sweep(sweep, None, show_progress=False)

    written = write_plots(report, tmp_path)

    assert "loops.png" in [p.name for p in written]
    _assert_png(tmp_path / "loops.png")
