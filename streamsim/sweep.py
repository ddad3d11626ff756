"""Run every point of a sweep (warm-up, then repeats, each on a fresh loop), with a
progress bar, writing the report after each point."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from .clock import uvloop_available
from .interrupt import INTERRUPTS, Interrupted
from .reference import run_with_reference
from .report import Point, Report, build_point, new_report, write_report
from .runner import run_scenario

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .config import Scenario, Sweep

__all__ = ("Progress", "default_out_dir", "run_points", "run_sweep")


def default_out_dir(name: str, root: Path = Path("results")) -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return root / f"{stamp}-{name}"


class Progress:
    """A one-line progress bar on stderr: points done, total, elapsed and ETA."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()
        self.stream = stream
        self.live = stream.isatty()

    def show(self, label: str) -> None:
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * (self.total - self.done) if self.done else None
        width = 24
        filled = width * self.done // max(self.total, 1)
        bar = "#" * filled + "." * (width - filled)
        eta_text = "--:--" if eta is None else _clock(eta)
        line = f"[{bar}] {self.done}/{self.total} points  {_clock(elapsed)} elapsed  ETA {eta_text}  {label}"
        if self.live:
            self.stream.write("\r\x1b[2K" + line[:160])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def advance(self, label: str) -> None:
        self.done += 1
        self.show(label)

    def start(self, label: str) -> None:
        """A point begins: redraw in place on a terminal; in a log, wait for the end."""
        if self.live:
            self.show(label)

    def close(self) -> None:
        if self.live:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}:{secs:02d}"


def run_points(
    points: list[tuple[str, dict[str, Any], Scenario]],
    *,
    sweep_def: dict[str, Any],
    repeats: int,
    warmup: int,
    out_dir: Path | None,
    progress: Progress | None = None,
    completed: Sequence[Point] = (),
) -> Report:
    """Run each (id, params, scenario), writing ``out_dir/report.json`` after every point.
    Points found finished in ``completed`` (a resumed sweep) are kept, not rerun.

    Raises:
        Interrupted: a signal stopped the sweep; the report holds the finished points
            and the interrupted one, marked.
    """
    finished = {(p.id, json.dumps(p.scenario, sort_keys=True)): p for p in completed if p.status == "ok"}
    done: list[Point] = []
    warned_uvloop = False
    have_uvloop = uvloop_available()
    for point_id, params, scenario in points:
        previous = finished.get((point_id, json.dumps(scenario.model_dump(mode="json"), sort_keys=True)))
        if previous is not None:
            done.append(previous)
            if progress is not None:
                progress.advance(point_id + " (done before)")
            continue
        if progress is not None:
            progress.start(point_id)
        started = time.perf_counter()
        if scenario.loop == "uvloop" and not have_uvloop:
            if not warned_uvloop:
                print(
                    "warning: uvloop is not installed (pip install uvloop): skipping its points",
                    file=sys.stderr,
                )
                warned_uvloop = True
            point = Point(
                id=point_id, params=params, scenario=scenario.model_dump(mode="json"),
                status="skipped", note="uvloop not installed",
            )  # fmt: skip
        else:
            trace = scenario.load_trace()
            # Virtual-clock runs are deterministic: one run per seed, no warm-up needed.
            n_warm = 0 if scenario.clock == "virtual" else warmup
            for w in range(n_warm):
                if not INTERRUPTS.level:
                    run_scenario(scenario, seed=scenario.seed + 10_000 + w, trace=trace)
            results, references = [], []
            for r in range(repeats):
                # Wall clock: the in-process reference pipeline runs around each repeat.
                result, reference = run_with_reference(scenario, seed=scenario.seed + r, trace=trace)
                results.append(result)
                references.append(reference)
                if result.interrupted:
                    break
            point = build_point(
                point_id, params, scenario.model_dump(mode="json"), results, time.perf_counter() - started,
                references,
            )  # fmt: skip
            if results[-1].interrupted:
                point = point.model_copy(update={"status": "interrupted", "note": "stopped by a signal"})
        done.append(point)
        report = new_report(sweep_def, done)
        if out_dir is not None:
            write_report(report, out_dir / "report.json")
        if progress is not None:
            progress.advance(point_id)
        if INTERRUPTS.level:
            raise Interrupted(INTERRUPTS.signum or signal.SIGINT)
    return new_report(sweep_def, done)


def run_sweep(
    sweep: Sweep, out_dir: Path | None, *, show_progress: bool = True, completed: Sequence[Point] = ()
) -> Report:
    points = [(point_id, params, sc) for point_id, params, sc in sweep.points()]
    progress = Progress(len(points)) if show_progress else None
    try:
        return run_points(
            points,
            sweep_def=sweep.model_dump(mode="json"),
            repeats=sweep.repeats,
            warmup=sweep.warmup,
            out_dir=out_dir,
            progress=progress,
            completed=completed,
        )
    finally:
        if progress is not None:
            progress.close()
