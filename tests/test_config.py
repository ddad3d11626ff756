"""Scenario validation, normalisation and sweep files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from streamsim.config import load_sweep, parse_scenario
from streamsim.errors import ConfigError
from streamsim.policies import Overflow

if TYPE_CHECKING:
    from pathlib import Path

BASE: dict[str, Any] = {"arrival": "poisson", "rate": 100.0, "events": 1000}
SWEEP_BASE = "[base]\nevents = 100\nrate = 10.0\n"


def config_error(data: dict[str, Any], where: str = "") -> str:
    """The message parse_scenario raises for ``BASE`` updated with ``data``; always one line."""
    with pytest.raises(ConfigError) as info:
        parse_scenario({**BASE, **data}, where)
    message = str(info.value)
    assert "\n" not in message
    return message


def sweep_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text('name = "t"\n' + text)
    return path


def sweep_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_sweep(path)
    message = str(info.value)
    assert "\n" not in message
    return message


# ------------------------------------------------------------------ scenario validation


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"maxsize": 0}, "maxsize must be >= 1 or 'unbounded', got 0"),
        ({"maxsize": -1}, "maxsize must be >= 1 or 'unbounded', got -1"),
        ({"maxsise": 10}, "maxsise: unknown field"),
        ({"overflow": "timeout"}, "put_timeout is required with overflow 'timeout'"),
        (
            {"clock": "virtual", "loop": "uvloop"},
            "clock 'virtual' runs on its own loop; loop must be 'asyncio'",
        ),
        ({"discipline": "aging"}, "age_step is required with discipline 'aging'"),
        ({"priority_weights": [1.0, 2.0]}, "priority_weights must be 3 non-negative numbers, got [1.0, 2.0]"),
        ({"weights": [1, 0, 1]}, "weights must be 3 integers >= 1, got [1, 0, 1]"),
        ({"events": None}, "give duration or events"),
        ({"load": 0.5}, "arrival 'poisson' needs exactly one of rate or load"),
        ({"rate": None}, "arrival 'poisson' needs exactly one of rate or load"),
        ({"arrival": "bursty", "on": 0.1}, "arrival 'bursty' needs on and off"),
        ({"arrival": "trace"}, "arrival 'trace' needs trace"),
        (
            {"rate": None, "load": 0.5, "service_mean": 0.0},
            "load needs service_mean > 0 (capacity is consumers / service_mean)",
        ),
    ],
)
def test_invalid_scenario_is_one_line_config_error(data: dict[str, Any], message: str) -> None:
    assert config_error(data) == message


@pytest.mark.parametrize(
    ("data", "field", "got"),
    [
        ({"consumers": 0}, "consumers", "0"),
        ({"producers": -2}, "producers", "-2"),
        ({"overflow": "drop-newest"}, "overflow", "'drop-newest'"),
        ({"loop": "trio"}, "loop", "'trio'"),
        ({"clock": "monotonic"}, "clock", "'monotonic'"),
        ({"put_timeout": -1.0}, "put_timeout", "-1.0"),
        ({"service": "pareto"}, "service", "'pareto'"),
        ({"levels": 0}, "levels", "0"),
        ({"failure_rate": 1.5}, "failure_rate", "1.5"),
    ],
)
def test_invalid_field_value_error_names_the_field_and_the_value(
    data: dict[str, Any], field: str, got: str
) -> None:
    message = config_error(data)
    assert message.startswith(f"{field}: ")
    assert message.endswith(f", got {got}")


def test_config_error_is_prefixed_with_where_it_came_from() -> None:
    assert config_error({"consumers": 0}, "grid[1] consumers=0: ").startswith(
        "grid[1] consumers=0: consumers: "
    )


@pytest.mark.parametrize("maxsize", [1, 100, "unbounded"])
def test_valid_maxsize_is_accepted(maxsize: int | str) -> None:
    assert parse_scenario({**BASE, "maxsize": maxsize}).maxsize == maxsize


def test_default_priority_weights_follow_levels() -> None:
    assert parse_scenario(BASE).priority_weights == [0.1, 0.3, 0.6]
    assert parse_scenario({**BASE, "levels": 2}).priority_weights == [1.0, 1.0]


def test_overflow_is_parsed_into_the_enum() -> None:
    assert parse_scenario({**BASE, "overflow": "shed-lowest"}).overflow is Overflow.SHED_LOWEST


# ------------------------------------------------------------------ offered load


def test_load_sets_rate_to_load_times_consumer_capacity() -> None:
    sc = parse_scenario({**BASE, "rate": None, "load": 0.8, "consumers": 4, "service_mean": 0.01})
    assert sc.capacity_hz == pytest.approx(400.0, rel=1e-12)
    assert sc.rate_hz == pytest.approx(320.0, rel=1e-12)  # 0.8 x 4 / 0.01 s
    assert sc.workload(0).rate_hz == sc.rate_hz  # all producers together; each takes its share


def test_rate_is_used_as_given() -> None:
    sc = parse_scenario({**BASE, "rate": 250.0, "consumers": 4})
    assert sc.rate_hz == 250.0


def test_closed_loop_has_no_rate() -> None:
    sc = parse_scenario({**BASE, "arrival": "closed", "rate": None})
    assert sc.rate_hz is None
    assert sc.workload(0).rate_hz == 0.0


def test_workload_carries_the_scenario_parameters() -> None:
    sc = parse_scenario(
        {
            **BASE,
            "arrival": "bursty",
            "on": 0.2,
            "off": 0.3,
            "producers": 3,
            "service": "lognormal",
            "service_mean": 0.002,
            "service_sigma": 0.5,
        }
    )
    w = sc.workload(2)
    assert (w.arrival, w.rate_hz, w.on_s, w.off_s, w.producers, w.index) == ("bursty", 100.0, 0.2, 0.3, 3, 2)
    assert (w.service.kind, w.service.mean_s, w.service.sigma) == ("lognormal", 0.002, 0.5)
    assert list(w.priority_weights) == [0.1, 0.3, 0.6]


# ------------------------------------------------------------------ normalisation


@pytest.mark.parametrize(
    ("data", "field", "normal"),
    [
        ({"put_timeout": 0.5}, "put_timeout", None),  # overflow 'block' never times out
        ({"overflow": "drop-new", "put_timeout": 0.5}, "put_timeout", None),
        ({"age_step": 0.01}, "age_step", None),  # discipline 'strict'
        ({"discipline": "wrr", "weights": [4, 2, 1], "age_step": 0.01}, "age_step", None),
        ({"weights": [4, 2, 1]}, "weights", None),
        ({"discipline": "aging", "age_step": 0.01, "weights": [4, 2, 1]}, "weights", None),
        ({"arrival": "closed"}, "rate", None),
        ({"arrival": "closed", "rate": None, "load": 0.5}, "load", None),
        ({"on": 0.1, "off": 0.2}, "on", None),  # arrival 'poisson'
        ({"on": 0.1, "off": 0.2}, "off", None),
        ({"speed": 60.0}, "speed", 1.0),
        ({"rate_scale": 3.0}, "rate_scale", 1.0),
        ({"trace": "x.csv"}, "trace", None),
        ({"service": "exponential", "service_sigma": 2.0}, "service_sigma", 1.0),
        ({"maxsize": "unbounded", "overflow": "drop-new"}, "overflow", Overflow.BLOCK),  # never full
    ],
)
def test_normalized_drops_parameters_the_policies_ignore(
    data: dict[str, Any], field: str, normal: Any
) -> None:
    sc = parse_scenario({**BASE, **data})
    assert getattr(sc, field) != normal
    assert getattr(sc.normalized(), field) == normal


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"overflow": "timeout", "put_timeout": 0.5}, "put_timeout"),
        ({"discipline": "aging", "age_step": 0.01}, "age_step"),
        ({"discipline": "wrr", "weights": [4, 2, 1]}, "weights"),
        ({"rate": 10.0}, "rate"),
        ({"arrival": "bursty", "on": 0.1, "off": 0.2}, "on"),
        ({"arrival": "trace", "trace": "x.csv", "rate": None, "speed": 60.0}, "speed"),
        ({"service": "lognormal", "service_sigma": 2.0}, "service_sigma"),
        ({"maxsize": 5, "overflow": "drop-new"}, "overflow"),
    ],
)
def test_normalized_keeps_parameters_that_matter(data: dict[str, Any], field: str) -> None:
    sc = parse_scenario({**BASE, **data})
    assert getattr(sc.normalized(), field) == getattr(sc, field)


def test_normalized_is_idempotent_and_collapses_ignored_differences() -> None:
    a = parse_scenario({**BASE, "put_timeout": 0.1, "age_step": 1.0}).normalized()
    b = parse_scenario({**BASE, "put_timeout": 0.2}).normalized()
    assert a == b
    assert a.normalized() == a


# ------------------------------------------------------------------ sweep files


def test_sweep_grid_is_a_cartesian_product(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        SWEEP_BASE + '[grid]\nconsumers = [1, 2]\noverflow = ["block", "drop-new", "reject"]\n',
    )
    points = load_sweep(path).points()
    assert [params for _, params, _ in points] == [
        {"consumers": c, "overflow": o} for c in (1, 2) for o in ("block", "drop-new", "reject")
    ]
    assert [(sc.consumers, sc.overflow.value) for _, _, sc in points] == [
        (c, o) for c in (1, 2) for o in ("block", "drop-new", "reject")
    ]
    assert all(sc.events == 100 for _, _, sc in points)
    assert [point_id for point_id, _, _ in points][:2] == [
        "consumers=1 overflow=block",
        "consumers=1 overflow=drop-new",
    ]


def test_sweep_points_are_the_union_of_the_grids(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        SWEEP_BASE + "[[grid]]\nconsumers = [1, 2]\n"
        "[[grid]]\nconsumers = [2, 8]\nmaxsize = [5]\n"
        "[[grid]]\nconsumers = [1]\n",  # already in the first grid
    )
    points = [params for _, params, _ in load_sweep(path).points()]
    assert points == [
        {"consumers": 1, "maxsize": 100},
        {"consumers": 2, "maxsize": 100},
        {"consumers": 2, "maxsize": 5},
        {"consumers": 8, "maxsize": 5},
    ]


def test_sweep_zipped_keys_vary_together(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        SWEEP_BASE + '[grid]\n"producers,consumers" = [[1, 1], [4, 4]]\nmaxsize = [5, 50]\n',
    )
    points = [params for _, params, _ in load_sweep(path).points()]
    assert points == [
        {"consumers": 1, "maxsize": 5, "producers": 1},
        {"consumers": 1, "maxsize": 50, "producers": 1},
        {"consumers": 4, "maxsize": 5, "producers": 4},
        {"consumers": 4, "maxsize": 50, "producers": 4},
    ]


def test_sweep_points_differing_only_in_ignored_parameters_are_deduplicated(tmp_path: Path) -> None:
    path = sweep_file(
        tmp_path,
        SWEEP_BASE + '[grid]\noverflow = ["block", "timeout"]\nput_timeout = [0.1, 0.2]\n',
    )
    points = [params for _, params, _ in load_sweep(path).points()]
    assert points == [
        {"overflow": "block", "put_timeout": None},  # block ignores put_timeout: one point, not two
        {"overflow": "timeout", "put_timeout": 0.1},
        {"overflow": "timeout", "put_timeout": 0.2},
    ]


def test_sweep_without_grid_is_the_base_point(tmp_path: Path) -> None:
    sweep = load_sweep(sweep_file(tmp_path, "repeats = 3\n[base]\nevents = 100\nrate = 10.0\n"))
    assert sweep.repeats == 3
    assert [params for _, params, _ in sweep.points()] == [{}]


def test_sweep_malformed_toml_is_one_line_config_error(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, "[base\nevents = 100\n")
    assert sweep_error(path).startswith(f"sweep file {path}: not valid TOML: ")


def test_sweep_missing_file_is_one_line_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    assert sweep_error(path) == f"sweep file {str(path)!r}: No such file or directory"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("repeat = 3\n", "repeat: unknown field"),
        (SWEEP_BASE + "maxsise = 5\n", "base: maxsise: unknown field"),
        (
            SWEEP_BASE + "[grid]\nmaxsise = [5]\n",
            "grid[0] maxsise=5: maxsise: unknown field",
        ),
        (
            SWEEP_BASE + "[grid]\nconsumers = []\n",
            "grid[0].consumers: must be a non-empty list, got []",
        ),
        (
            SWEEP_BASE + "[grid]\nconsumers = 4\n",
            "grid[0].consumers: must be a non-empty list, got 4",
        ),
        (
            SWEEP_BASE + "[grid]\nmaxsize = [10, 0]\n",
            "grid[0] maxsize=0: maxsize must be >= 1 or 'unbounded', got 0",
        ),
        ("repeats = 0\n", "repeats: Input should be greater than or equal to 1, got 0"),
    ],
)
def test_sweep_errors_are_one_line_and_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    assert sweep_error(sweep_file(tmp_path, text)).endswith(message)


def test_sweep_zipped_value_of_wrong_length_is_config_error(tmp_path: Path) -> None:
    path = sweep_file(tmp_path, SWEEP_BASE + '[grid]\n"producers,consumers" = [[1, 1], [4]]\n')
    assert sweep_error(path) == "grid.producers,consumers: each value must be a list of 2, got [4]"
