"""How good is the regression gate on this machine? (``nox -s gate_quality``)

Each trial runs the quick sweep three times, each in a fresh process: a baseline, the
same code again (A/A) and the code with the test-only slowdown knob
(``STREAMSIM_SLOWDOWN``, A/B), the last two in alternating order. Both are checked
against the trial's baseline with ``streamsim check``. A false alarm is an A/A
failure; a detection is an A/B failure. Goal: A/A passes every time, A/B fails in at
least 95% of trials.

The reports are kept (``--keep DIR``) so that ``--recheck DIR`` can replay the checks
under another budget without running anything again; tune on one batch, then measure
on a fresh one.

Usage: python bench/gate_quality.py [--trials 20] [--slowdown 0.2] [--budget bench/budget.toml]
       [--sweep bench/quick.toml] [--keep DIR] [--recheck DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sweep(sweep_file: str, out: Path, slowdown: float | None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "STREAMSIM_SLOWDOWN"}
    if slowdown is not None:
        env["STREAMSIM_SLOWDOWN"] = str(slowdown)
    cmd = [sys.executable, "-m", "streamsim", "sweep", sweep_file, "--out", str(out), "--no-plots"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"gate_quality: {' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")


def check(base: Path, current: Path, budget: str) -> tuple[bool, list[str]]:
    """Whether the gate passed, and the failing lines if not."""
    cmd = [
        sys.executable,
        "-m",
        "streamsim",
        "check",
        "--baseline",
        str(base),
        str(current),
        "--budget",
        budget,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        sys.exit(f"gate_quality: {' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()}")
    lines, failing = [], False
    for line in done.stdout.splitlines():
        if line.startswith("Worse beyond budget"):
            failing = True
        elif failing and line.startswith("  "):
            lines.append(line.strip())
        elif not line.strip():
            failing = False
    return done.returncode == 0, lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--slowdown", type=float, default=0.2, help="STREAMSIM_SLOWDOWN for the A/B runs")
    parser.add_argument("--sweep", default="bench/quick.toml")
    parser.add_argument("--budget", default="bench/budget.toml")
    parser.add_argument("--keep", help="keep the reports here (default: a temporary directory)")
    parser.add_argument("--recheck", metavar="DIR", help="only re-run the checks on reports kept in DIR")
    args = parser.parse_args()
    os.chdir(ROOT)

    if args.recheck:
        root = Path(args.recheck)
        trials = sorted(d for d in root.iterdir() if (d / "ab" / "report.json").exists())
    else:
        root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gate-quality-"))
        trials = [root / f"trial-{i:02d}" for i in range(args.trials)]
    print(f"gate quality: {len(trials)} trials of {args.sweep}, budget {args.budget}, reports in {root}")
    aa_passed = ab_failed = 0
    started = time.monotonic()
    for n, trial in enumerate(trials, start=1):
        if not args.recheck:
            sweep(args.sweep, trial / "base", None)
            order = [("aa", None), ("ab", args.slowdown)]
            for name, slowdown in order if n % 2 else order[::-1]:  # alternate which runs first
                sweep(args.sweep, trial / name, slowdown)
        aa_ok, aa_lines = check(trial / "base", trial / "aa", args.budget)
        ab_ok, ab_lines = check(trial / "base", trial / "ab", args.budget)
        aa_passed += aa_ok
        ab_failed += not ab_ok
        elapsed = time.monotonic() - started
        print(
            f"trial {n:2d}/{len(trials)}: A/A {'pass' if aa_ok else 'FALSE ALARM'}, "
            f"A/B {'detected' if not ab_ok else 'MISSED'}  ({elapsed:.0f} s)",
            flush=True,
        )
        for line in aa_lines:
            print(f"    A/A: {line}")
        for line in ab_lines[:3]:
            print(f"    A/B: {line}")
    total = len(trials)
    print(f"\nA/A (same code twice): {aa_passed}/{total} passed ({total - aa_passed} false alarms)")
    print(f"A/B (STREAMSIM_SLOWDOWN={args.slowdown}): {ab_failed}/{total} failed (detected)")
    # `nox -s check` fails only when a second run fails too: pair each trial's runs with the
    # next trial's (the same code, a minute later), both against this trial's baseline.
    aa_confirmed = ab_confirmed = 0
    for n, trial in enumerate(trials):
        later = trials[(n + 1) % total]
        aa_confirmed += (
            not check(trial / "base", trial / "aa", args.budget)[0]
            and not check(trial / "base", later / "aa", args.budget)[0]
        )
        ab_confirmed += (
            not check(trial / "base", trial / "ab", args.budget)[0]
            and not check(trial / "base", later / "ab", args.budget)[0]
        )
    print(
        f"confirmed by a second run: A/A {total - aa_confirmed}/{total} passed, "
        f"A/B {ab_confirmed}/{total} failed"
    )
    goal = aa_passed == total and ab_failed >= 0.95 * total
    print("goal (A/A all pass, A/B >= 95% fail):", "met" if goal else "NOT met")
    return 0 if goal else 1


if __name__ == "__main__":
    sys.exit(main())
