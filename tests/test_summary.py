"""Summary: the strategy ranking (protection of priority 0 at the highest load) and its table."""

from __future__ import annotations

from typing import Any

from streamsim.config import Sweep
from streamsim.report import Estimate, Point
from streamsim.summary import lost_share, strategy_name, strategy_ranking, summary_markdown
from streamsim.sweep import run_sweep


def _estimate(value: float | None) -> Estimate:
    return Estimate(median=value, ci_low=value, ci_high=value, ci_level=None, values=[value])


def _point(
    overflow: str, drop0: float | None, p99_0: float | None, *, load: float = 1.5, **scenario: Any
) -> Point:
    """A measured point with just the metrics the ranking reads."""
    scenario = {"overflow": overflow, "discipline": "strict", "load": load, **scenario}
    metrics = {"drop_rate.p0": _estimate(drop0), "end_to_end_p99_ms.p0": _estimate(p99_0)}
    return Point(id=f"overflow={overflow} load={load}", params=scenario, scenario=scenario, metrics=metrics)


def _names(points: list[Point]) -> list[str]:
    return [name for name, _ in strategy_ranking(points)]


def test_strategy_that_drops_p0_ranks_below_one_that_does_not() -> None:
    # drop-new is faster for the p0 events it keeps, but it loses some: it ranks lower.
    points = [_point("drop-new", 0.2, 15.0), _point("shed-lowest", 0.0, 25.0)]

    assert _names(points) == ["shed-lowest / strict", "drop-new / strict"]


def test_equal_p0_drop_rates_rank_by_p0_p99() -> None:
    points = [_point("block", 0.0, 9000.0), _point("drop-oldest", 0.0, 20.0), _point("reject", 0.0, 40.0)]

    assert _names(points) == ["drop-oldest / strict", "reject / strict", "block / strict"]


def test_null_p0_metrics_rank_last() -> None:
    points = [_point("reject", None, None), _point("drop-new", 0.5, 15.0)]

    assert _names(points) == ["drop-new / strict", "reject / strict"]


def test_ranks_at_the_highest_load_by_each_strategy_worst_point() -> None:
    points = [
        _point("shed-lowest", 0.0, 10.0, load=0.5),
        _point("drop-new", 0.0, 5.0, load=0.5),  # best at the low load, not ranked there
        _point("shed-lowest", 0.0, 20.0, maxsize=100),
        _point("shed-lowest", 0.0, 30.0, maxsize=10),  # its worst point at load 1.5
        _point("drop-new", 0.1, 18.0, maxsize=100),
    ]

    ranking = strategy_ranking(points)

    assert [(name, p.scenario.get("maxsize")) for name, p in ranking] == [
        ("shed-lowest / strict", 10),
        ("drop-new / strict", 100),
    ]


def test_variants_of_a_policy_or_discipline_are_distinct_strategies() -> None:
    points = [
        _point("timeout", 0.0, 30.0, put_timeout=0.1),
        _point("timeout", 0.1, 20.0, put_timeout=0.01),
        _point("drop-oldest", 0.0, 40.0, discipline="aging", age_step=0.05),
        _point("drop-oldest", 0.0, 20.0, discipline="wrr", weights=[4, 2, 1]),
    ]

    assert _names(points) == [
        "drop-oldest / wrr 4:2:1",
        "timeout 0.1s / strict",
        "drop-oldest / aging 0.05s",
        "timeout 0.01s / strict",
    ]


def test_one_strategy_at_the_highest_load_has_no_ranking() -> None:
    points = [_point("block", 0.0, 9.0, load=0.5), _point("shed-lowest", 0.0, 20.0, maxsize=10)]
    points.append(_point("shed-lowest", 0.0, 30.0, maxsize=100))

    assert strategy_ranking(points) == []


def test_strategy_name_defaults_to_block_and_strict() -> None:
    assert strategy_name({}) == "block / strict"
    assert strategy_name({"overflow": "drop-new", "discipline": "wrr", "weights": None}) == "drop-new / wrr"


def test_overload_summary_ranks_shed_lowest_above_drop_new() -> None:
    """A real virtual-clock run at 1.5x capacity: drop-new loses p0 events, shed-lowest does not."""
    sweep = Sweep.model_validate(
        {
            "name": "summary-test",
            "base": {
                "clock": "virtual", "arrival": "poisson", "load": 1.5, "events": 600, "maxsize": 5,
                "producers": 2, "consumers": 2, "service_mean": 0.005,
            },
            "grid": [{"overflow": ["drop-new", "shed-lowest"]}],
        }
    )  # fmt: skip
    report = run_sweep(sweep, None, show_progress=False)

    ranking = strategy_ranking(report.points)
    markdown = summary_markdown(report)

    assert [name for name, _ in ranking] == ["shed-lowest / strict", "drop-new / strict"]
    best, worst = (point.metrics["drop_rate.p0"].median for _, point in ranking)
    assert best == 0.0
    assert worst is not None
    assert worst > 0.0
    assert "| 1 | shed-lowest / strict | 0.00 |" in markdown
    assert "| 2 | drop-new / strict |" in markdown


def test_a_strategy_that_holds_p0_back_unsent_ranks_below_one_that_loses_nothing() -> None:
    """Block drops nothing but leaves a third of the schedule unsent: p0 loses those."""
    sweep = Sweep.model_validate(
        {
            "name": "summary-test",
            "base": {
                "clock": "virtual", "arrival": "poisson", "load": 1.5, "duration": 3.0, "maxsize": 5,
                "producers": 2, "consumers": 2, "service_mean": 0.005,
            },
            "grid": [{"overflow": ["block", "shed-lowest"]}],
        }
    )  # fmt: skip
    report = run_sweep(sweep, None, show_progress=False)

    ranking = strategy_ranking(report.points)

    assert [name for name, _ in ranking] == ["shed-lowest / strict", "block / strict"]
    block = ranking[1][1]
    assert block.metrics["drop_rate.p0"].median == 0.0  # nothing offered was lost...
    p0 = block.priorities[0]
    assert p0.unsent > 0.2 * (p0.offered + p0.unsent)  # ...but much was never sent
    assert lost_share(block, 0) == (p0.offered + p0.unsent - p0.processed) / (p0.offered + p0.unsent)
    assert lost_share(ranking[0][1], 0) == 0.0
