"""Sessions: tests (every installed Python 3.11-3.13), lint, bench (the main job), check (the CI
regression gate) and baseline, microbench, perf, gate_quality. `nox -l` lists them."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
PYPROJECT = nox.project.load_toml("pyproject.toml")
SUPPORTED = ("3.11", "3.12", "3.13")


def _installed_pythons() -> list[str]:
    """Supported versions found on PATH or under pyenv (whose shims hide the
    versions that are not the global one)."""
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = []
    for version in SUPPORTED:
        for candidate in sorted(pyenv.glob(f"{version}.*/bin"), reverse=True):
            if (candidate / f"python{version}").exists():
                os.environ["PATH"] = f"{candidate}{os.pathsep}{os.environ['PATH']}"
                break
        exe = shutil.which(f"python{version}")
        if exe is not None and os.access(exe, os.X_OK) and "shims" not in exe:
            found.append(version)
    return found or ["3.11"]


PYTHONS = _installed_pythons()
GATE_SWEEP = "bench/quick.toml"
BASELINE = "results/baseline"
BUDGET = "bench/budget.toml"


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest; posargs go to pytest)."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "test"))
    # Two workers: the queueing-theory oracles are CPU-bound simulations of a million events.
    session.run("pytest", "-n", "2", "--dist", "loadgroup", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff and mypy --strict over the package, tests and this file."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "test", "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """The main job: run a sweep (default bench/default.toml) and write results/."""
    session.install(".")
    args = session.posargs or ["bench/default.toml"]
    if args[0].endswith(".toml"):
        session.run("streamsim", "sweep", *args)
    else:
        session.run("streamsim", "sweep", "bench/default.toml", *args)


@nox.session(default=False)
def perf(session: nox.Session) -> None:
    """The harness's own costs: virtual-clock speed, measurement overhead, memory."""
    session.install(".")
    session.run("python", "bench/perf.py", *session.posargs)


def _gate_run(session: nox.Session, out: str) -> str:
    """Run the gate's sweep into ``out`` and check it against the baseline; the output."""
    session.run("streamsim", "sweep", GATE_SWEEP, "--out", out, "--no-plots")
    result = session.run(
        "streamsim", "check", "--baseline", BASELINE, out, "--budget", BUDGET,
        success_codes=[0, 1], silent=True,
    )  # fmt: skip
    text = str(result)
    print(text, end="")
    return text


@nox.session(default=False)
def check(session: nox.Session) -> None:
    """The CI gate: the quick sweep checked against results/baseline and bench/budget.toml."""
    session.install(".")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    if "streamsim check: FAIL" in _gate_run(session, f"results/check-{stamp}"):
        # A wall-clock failure is confirmed by a second, independent run before it blocks a
        # merge: a real regression fails both, a burst of machine noise rarely does.
        session.log("the gate failed; confirming with a second run")
        if "streamsim check: FAIL" in _gate_run(session, f"results/check-{stamp}-confirm"):
            session.error("performance regression: the gate failed twice (see above)")


@nox.session(default=False)
def baseline(session: nox.Session) -> None:
    """Refresh results/baseline (the gate's reference) from the quick sweep; commit it."""
    session.install(".")
    shutil.rmtree(BASELINE, ignore_errors=True)
    session.run("streamsim", "sweep", GATE_SWEEP, "--out", BASELINE, "--no-plots")


@nox.session(default=False)
def microbench(session: nox.Session) -> None:
    """pytest-benchmark microbenchmarks of the broker's hot operations (posargs go to pytest)."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "bench"))
    session.run(
        "pytest", "bench/test_microbench.py", "--benchmark-only",
        # CPU time of this process: other processes' load on a shared machine counts less.
        "--benchmark-timer=time.process_time",
        # pytest-benchmark warns (an error under filterwarnings) when there is nothing to compare yet.
        "-W", "default::pytest_benchmark.logger.PytestBenchmarkWarning",
        *session.posargs,
    )  # fmt: skip


@nox.session(default=False)
def gate_quality(session: nox.Session) -> None:
    """How often the gate false-alarms (A/A) and catches a 20% slower pipeline (A/B), 20 trials."""
    session.install(".")
    session.run("python", "bench/gate_quality.py", *session.posargs)
