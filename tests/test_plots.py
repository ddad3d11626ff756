"""Plots: every figure with data is written as a valid PNG; no data, no figure, no crash."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import pytest

from streamsim.clock import uvloop_available
from streamsim.config import Sweep
from streamsim.plots import _save, _strategies, _theory, write_plots
from streamsim.report import Estimate, Point, Report
from streamsim.sweep import run_sweep

if TYPE_CHECKING:
    from pathlib import Path

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_PNG_BYTES = 200_000
VIRTUAL_FIGURES = ("latency_percentiles.png", "drop_rate_vs_maxsize.png", "drain_time.png", "queue_depth.png")
# The virtual report's three policies at load 1.5 are strategies to compare.
VIRTUAL_WITH_STRATEGIES = (*VIRTUAL_FIGURES, "strategies.png")


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

    assert [p.name for p in written] == list(VIRTUAL_WITH_STRATEGIES)  # no loop pair: no loops.png
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == sorted(VIRTUAL_WITH_STRATEGIES)
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

    assert [p.name for p in written] == list(VIRTUAL_WITH_STRATEGIES)
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

    assert [p.name for p in written] == list(VIRTUAL_FIGURES)  # one strategy: nothing to compare


@pytest.mark.skipif(not uvloop_available(), reason="uvloop is not installed (pip install uvloop)")
def test_loop_pair_draws_loops_figure(tmp_path: Path) -> None:
    """A tiny wall-clock pair (well under a second) that differs only in the loop."""
    sweep = _sweep({"loop": ["asyncio", "uvloop"]}, events=60, service_mean=0.0005, load=0.8, maxsize=10)
    report = run_sweep(sweep, None, show_progress=False)

    written = write_plots(report, tmp_path)

    assert "loops.png" in [p.name for p in written]
    _assert_png(tmp_path / "loops.png")


@pytest.fixture(scope="module")
def strategies_report() -> Report:
    """Two policies x three disciplines at one overload, as bench/strategies.toml does."""
    sweep = _sweep(
        {"overflow": ["drop-new", "shed-lowest"], "discipline": ["strict", "aging", "wrr"]},
        clock="virtual",
        events=200,
        load=1.5,
        maxsize=5,
        age_step=0.01,
        weights=[4, 2, 1],
    )
    return run_sweep(sweep, None, show_progress=False)


# The strategy tests draw that one figure, not all of them (write_plots takes seconds);
# test_writes_each_figure_with_data_as_png covers write_plots writing strategies.png.
def test_strategies_report_draws_strategies_figure(strategies_report: Report, tmp_path: Path) -> None:
    fig = _strategies(strategies_report.points)

    assert fig is not None
    try:
        _save(fig, tmp_path / "strategies.png")
    finally:
        plt.close(fig)
    _assert_png(tmp_path / "strategies.png")
    # Each strategy is a labelled row, in the ranking's order, rank 1 on top.
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert labels[-1].startswith("6. drop-new /")
    assert sorted(label.split(". ", 1)[1] for label in labels) == sorted(
        f"{o} / {d}" for o in ("drop-new", "shed-lowest") for d in ("strict", "aging 0.01s", "wrr 4:2:1")
    )


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param({("block", 0.7), ("block", 1.5)}, id="one-strategy"),
        pytest.param({("block", 0.7), ("shed-lowest", 1.5)}, id="one-strategy-per-load"),
    ],
)
def test_report_without_strategies_at_one_load_draws_no_strategies_figure(
    virtual_report: Report, keep: set[tuple[str, float]]
) -> None:
    points = [p for p in virtual_report.points if (p.params["overflow"], p.params["load"]) in keep]
    assert points

    assert _strategies(points) is None


@pytest.fixture(scope="module")
def theory_report() -> Report:
    """M/M/1, Cobham's three classes on two consumers, and drop-new (M/M/c/K): tiny, virtual."""
    sweep = Sweep.model_validate(
        {
            "name": "theory-test",
            "base": {"clock": "virtual", "arrival": "poisson", "service": "exponential", "service_mean": 0.01,
                     "maxsize": "unbounded", "levels": 1, "load": 0.5, "events": 300},
            "grid": [
                {"consumers": [1]},
                {"consumers": [2], "levels": [3]},
                {"overflow": ["drop-new"], "maxsize": [2], "load": [1.5]},
            ],
        }
    )  # fmt: skip
    return run_sweep(sweep, None, show_progress=False)


def test_theory_figure_is_written_for_points_theory_knows(theory_report: Report, tmp_path: Path) -> None:
    # Without metrics and depth (the theory figure reads neither) fewer other figures are drawn: faster.
    points = [p.model_copy(update={"metrics": {}, "depth": None}) for p in theory_report.points]

    written = write_plots(theory_report.model_copy(update={"points": points}), tmp_path)

    assert "theory.png" in [p.name for p in written]
    _assert_png(tmp_path / "theory.png")


def test_theory_figure_shows_each_class_and_the_drop_share(theory_report: Report) -> None:
    fig = _theory(theory_report.points)

    assert fig is not None
    try:
        waits, drops = fig.axes
        # One relative-error label per marker: 1 + 3 classes, and 1 drop-new point.
        assert (len(waits.texts), len(drops.texts)) == (4, 1)
        assert (waits.get_xscale(), drops.get_xscale()) == ("log", "linear")
    finally:
        plt.close(fig)


def test_theory_figure_needs_a_point_theory_knows(virtual_report: Report, theory_report: Report) -> None:
    # Poisson and exponential, but bounded buffers under block, timeout and shed-lowest.
    assert _theory(virtual_report.points) is None
    # No closed form for lognormal service; on the wall clock the loop's overheads add to every wait.
    for key, value in (("service", "lognormal"), ("clock", "wall")):
        points = [p.model_copy(update={"scenario": {**p.scenario, key: value}}) for p in theory_report.points]
        assert _theory(points) is None, key
