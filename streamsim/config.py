"""Scenario and sweep configuration: validated once, here, at the edge.

A scenario is one broker configuration under one workload. A sweep file (TOML) is a
base scenario plus grids of values; its points are the union of the grids'
cartesian products, with parameters a policy ignores normalised away and duplicates
removed.
"""

from __future__ import annotations

import itertools
import math
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .errors import ConfigError
from .policies import Overflow
from .workload import ServiceTime, Trace, Workload, load_trace

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ("Scenario", "Sweep", "load_sweep", "parse_scenario")

MAX_S = 1e6  # longest time any setting may name, seconds (11.6 days; int64 ns holds 292 years)


class Scenario(BaseModel):
    """One point: broker, workload, shutdown and measurement settings. Times in seconds."""

    # Infinity and NaN are refused everywhere: every number here ends up as integer
    # nanoseconds or a count, and an infinite one would hang or crash a run.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    # event loop and clock
    loop: Literal["asyncio", "uvloop"] = "asyncio"
    clock: Literal["wall", "virtual"] = "wall"
    # broker
    maxsize: int | Literal["unbounded"] = Field(default=100, description="buffer capacity, events")
    overflow: Overflow = Overflow.BLOCK
    put_timeout: float | None = Field(
        default=None, gt=0, le=MAX_S, description="seconds, overflow 'timeout' only"
    )
    discipline: Literal["strict", "aging", "wrr"] = "strict"
    age_step: float | None = Field(
        default=None, gt=0, le=MAX_S, description="seconds per level, discipline 'aging'"
    )
    weights: list[int] | None = Field(default=None, description="events per round per level, 'wrr'")
    levels: int = Field(default=3, ge=1, le=64)
    # actors
    producers: int = Field(default=1, ge=1)
    consumers: int = Field(default=1, ge=1)
    # workload
    arrival: Literal["closed", "constant", "poisson", "bursty", "trace"] = "poisson"
    rate: float | None = Field(
        default=None, ge=1e-6, le=1e9, description="offered events/s, all producers together"
    )
    load: float | None = Field(default=None, gt=0, le=1e6, description="offered rate / consumer capacity")
    on: float | None = Field(default=None, gt=0, le=MAX_S, description="bursty: seconds on")
    off: float | None = Field(default=None, ge=0, le=MAX_S, description="bursty: seconds off")
    trace: str | None = Field(default=None, description="trace CSV path")
    speed: float = Field(default=1.0, gt=0, le=1e9, description="trace: replay speed-up")
    rate_scale: float = Field(default=1.0, gt=0, le=1e6, description="trace: multiply the trace's rate")
    priority_weights: list[float] | None = Field(default=None, description="share of events per level")
    service: Literal["constant", "exponential", "lognormal"] = "exponential"
    service_mean: float = Field(default=0.005, ge=0, le=MAX_S, description="seconds")
    service_sigma: float = Field(default=1.0, gt=0, le=10, description="lognormal shape")
    ttl: float | None = Field(
        default=None, gt=0, le=MAX_S, description="seconds an event may wait before it expires"
    )
    # failures
    failure_rate: float = Field(default=0.0, ge=0, le=1, description="chance a handler call raises")
    fail_first: int = Field(default=0, ge=0, description="the first N handler calls per priority raise")
    max_retries: int = Field(default=0, ge=0)
    stall_at: float | None = Field(
        default=None, ge=0, le=MAX_S, description="seconds from start: consumer 0 stalls"
    )
    stall: float | None = Field(default=None, gt=0, le=MAX_S, description="seconds consumer 0 stalls, once")
    # run length and shutdown
    duration: float | None = Field(default=None, gt=0, le=MAX_S, description="seconds of offered load")
    events: int | None = Field(default=None, ge=1, description="events offered in total")
    drain_timeout: float | None = Field(default=None, gt=0, le=MAX_S, description="seconds allowed to drain")
    seed: int = Field(default=1, ge=0)
    sample_interval: float | None = Field(
        default=None, ge=1e-6, le=MAX_S, description="queue-depth sampling, seconds"
    )

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.priority_weights is None:
            default = [1.0] * self.levels if self.levels != 3 else [0.1, 0.3, 0.6]
            object.__setattr__(self, "priority_weights", default)
        weights = self.priority_weights
        assert weights is not None
        if len(weights) != self.levels or any(w < 0 for w in weights) or not 0 < sum(weights) < math.inf:
            raise ValueError(f"priority_weights must be {self.levels} non-negative numbers, got {weights}")
        if self.maxsize != "unbounded" and self.maxsize < 1:  # the broker would refuse it mid-sweep
            raise ValueError(f"maxsize must be >= 1 or 'unbounded', got {self.maxsize}")
        if self.overflow is Overflow.TIMEOUT and self.put_timeout is None:
            raise ValueError("put_timeout is required with overflow 'timeout'")
        if self.discipline == "aging" and self.age_step is None:
            raise ValueError("age_step is required with discipline 'aging'")
        if self.weights is not None and (len(self.weights) != self.levels or min(self.weights) < 1):
            raise ValueError(f"weights must be {self.levels} integers >= 1, got {self.weights}")
        if self.duration is None and self.events is None:
            raise ValueError("give duration or events")
        if (self.stall is None) != (self.stall_at is None):
            raise ValueError("stall and stall_at go together: give both or neither")
        if self.arrival in ("constant", "poisson", "bursty") and (self.rate is None) == (self.load is None):
            raise ValueError(f"arrival {self.arrival!r} needs exactly one of rate or load")
        if self.arrival == "bursty" and (self.on is None or self.off is None):
            raise ValueError("arrival 'bursty' needs on and off")
        if self.arrival == "trace" and self.trace is None:
            raise ValueError("arrival 'trace' needs trace")
        if 0 < self.service_mean < 1e-9:  # times are whole nanoseconds: it would round to 0
            raise ValueError(f"service_mean must be 0 or >= 1e-9 (1 ns), got {self.service_mean}")
        if self.load is not None and self.service_mean == 0:
            raise ValueError("load needs service_mean > 0 (capacity is consumers / service_mean)")
        if self.clock == "virtual":
            if self.loop != "asyncio":
                raise ValueError("clock 'virtual' runs on its own loop; loop must be 'asyncio'")
            if self.arrival == "closed" and self.events is None and self.service_mean == 0:
                raise ValueError("closed loop on the virtual clock with service_mean 0 needs events")
            # A closed-loop producer that never waits for space (an unbounded buffer, or a
            # policy that drops or rejects at once) keeps the loop busy at one virtual
            # instant: time never reaches `duration` and the run never ends.
            if (
                self.arrival == "closed"
                and self.events is None
                and (self.maxsize == "unbounded" or not self.overflow.waits)
            ):
                raise ValueError(
                    f"closed loop on the virtual clock with overflow {self.overflow.value!r} and "
                    f"maxsize {self.maxsize!r} needs events: its producers never wait, so time stands still"
                )
        return self

    def normalized(self) -> Scenario:
        """The same scenario with parameters its policies ignore set to None, so
        that sweep points differing only in those collapse into one."""
        drop: dict[str, Any] = {}
        if self.maxsize == "unbounded" and self.overflow is not Overflow.BLOCK:
            return self.model_copy(update={"overflow": Overflow.BLOCK}).normalized()  # never full
        if self.overflow is not Overflow.TIMEOUT:
            drop["put_timeout"] = None
        if self.discipline != "aging":
            drop["age_step"] = None
        if self.discipline != "wrr":
            drop["weights"] = None
        if self.arrival in ("closed", "trace"):
            drop.update(rate=None, load=None)
        if self.arrival != "bursty":
            drop.update(on=None, off=None)
        if self.arrival != "trace":
            drop.update(trace=None, speed=1.0, rate_scale=1.0)
        if self.service != "lognormal":
            drop["service_sigma"] = 1.0  # the lognormal shape; other distributions ignore it
        return self.model_copy(update=drop)

    @property
    def capacity_hz(self) -> float | None:
        """Events/s the consumers can handle: consumers / service_mean."""
        return self.consumers / self.service_mean if self.service_mean > 0 else None

    @property
    def rate_hz(self) -> float | None:
        if self.rate is not None:
            return self.rate
        if self.load is not None and self.capacity_hz is not None:
            return self.load * self.capacity_hz
        return None

    def workload(self, index: int, trace: Trace | None = None) -> Workload:
        """The workload of producer ``index``."""
        assert self.priority_weights is not None
        return Workload(
            arrival=self.arrival,
            priority_weights=self.priority_weights,
            service=ServiceTime(self.service, self.service_mean, self.service_sigma),
            rate_hz=self.rate_hz or 0.0,
            on_s=self.on or 0.0,
            off_s=self.off or 0.0,
            trace=trace,
            speed=self.speed,
            rate_scale=self.rate_scale,
            producers=self.producers,
            index=index,
        )

    def load_trace(self) -> Trace | None:
        if self.arrival != "trace" or self.trace is None:
            return None
        trace = load_trace(self.trace)
        if (
            trace.priorities is not None
            and len(trace.priorities)
            and int(trace.priorities.max()) >= self.levels
        ):
            raise ConfigError(
                f"trace: {self.trace} has priority {int(trace.priorities.max())}, levels is {self.levels}"
            )
        return trace


def _one_line(exc: ValidationError, where: str) -> str:
    """The first validation error as 'where: field: problem, got value'. A misspelled
    field comes first: it usually explains the 'missing' error beside it."""
    errors = exc.errors()
    err = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    # Drop pydantic's union-member tags ("maxsize.int", "maxsize.literal[...]").
    parts = [
        str(p) for p in err["loc"] if str(p) not in ("int", "float", "str", "bool") and "[" not in str(p)
    ]
    field = ".".join(parts)
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        return f"{where}{field}: unknown field"
    if err["type"] == "missing":
        return f"{where}{field}: required field is missing"
    got = f", got {err['input']!r}" if field and not isinstance(err["input"], dict) else ""
    return f"{where}{field + ': ' if field else ''}{msg}{got}"


def parse_scenario(data: dict[str, Any], where: str = "") -> Scenario:
    """Validate one scenario; errors become a one-line ``ConfigError``."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, where)) from None


class Sweep(BaseModel):
    """A sweep file: base scenario, grids of values, repeats."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    repeats: int = Field(default=1, ge=1)
    warmup: int = Field(default=0, ge=0, description="runs per point discarded before the repeats")
    base: dict[str, Any] = Field(default_factory=dict)
    grid: list[dict[str, list[Any]]] = Field(default_factory=lambda: [dict[str, list[Any]]()])

    def points(self) -> list[tuple[str, dict[str, Any], Scenario]]:
        """Every distinct point: (its id, the parameters the sweep varies, the
        normalised scenario). The id names the values its own grid set."""
        varied = sorted({key for grid in self.grid for spec in grid for key in spec.split(",")})
        seen: set[str] = set()
        points = []
        for g, grid in enumerate(self.grid):
            for combo in _product(grid):
                data = {**self.base, **combo}
                where = f"grid[{g}] {_label(combo)}: " if combo else "base: "
                scenario = parse_scenario(data, where).normalized()
                key = scenario.model_dump_json()
                if key in seen:
                    continue
                seen.add(key)
                params = {k: _plain(getattr(scenario, k)) for k in varied}
                shown = {k: params[k] for k in combo if params[k] is not None}  # ignored ones go
                points.append((_label(shown) or "base", params, scenario))
        return points


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Overflow) else value


def _product(grid: dict[str, list[Any]]) -> Iterable[dict[str, Any]]:
    """Cartesian product; a key "a,b" zips its values: [[1, 2], [3, 4]] -> a=1,b=2; a=3,b=4."""
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        combo: dict[str, Any] = {}
        for key, value in zip(keys, values, strict=True):
            names = key.split(",")
            if len(names) == 1:
                combo[key] = value
            else:
                if not isinstance(value, list) or len(value) != len(names):
                    raise ConfigError(f"grid.{key}: each value must be a list of {len(names)}, got {value!r}")
                combo.update(zip(names, value, strict=True))
        yield combo


def _label(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items())


def read_toml(path: Path, what: str) -> dict[str, Any]:
    """A TOML file's table; any reason it cannot be read is one ``ConfigError`` line
    starting with ``what`` ("sweep file", "budget")."""
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{what} {str(path)!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path}: not UTF-8 text (is it a TOML file?)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path}: not valid TOML: {exc}") from None


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep TOML file, expanding every point once so that
    any bad value is reported now, not halfway through the run."""
    path = Path(path)
    data = read_toml(path, "sweep file")
    if isinstance(data.get("grid"), dict):
        data["grid"] = [data["grid"]]
    if not isinstance(data.get("grid", []), list) or not all(
        isinstance(g, dict) for g in data.get("grid", [])
    ):
        raise ConfigError(f"{path}: grid: must be [[grid]] tables of lists, got {data['grid']!r}")
    for g, grid in enumerate(data.get("grid", [])):
        for key, values in grid.items() if isinstance(grid, dict) else ():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path}: grid[{g}].{key}: must be a non-empty list, got {values!r}")
    try:
        sweep = Sweep.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_one_line(exc, '')}") from None
    sweep.points()
    return sweep
