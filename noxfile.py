"""Sessions: tests (every installed Python 3.11-3.13), lint, bench (the main job)."""

from __future__ import annotations

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


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite (pytest; posargs go to pytest)."""
    session.install(".", *nox.project.dependency_groups(PYPROJECT, "test"))
    session.run("pytest", *session.posargs)


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
