"""The command line as a user meets it: bad input is one line and exit 2; a quick
sweep end to end writes a valid report, a summary and PNGs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from streamsim.report import Report, read_report

ROOT = Path(__file__).resolve().parent.parent


def streamsim(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streamsim", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--maxsize", "0"], "maxsize"),
        (["--maxsize", "-5"], "maxsize"),
        (["--consumers", "0"], "consumers"),
        (["--overflow", "drop-everything"], "overflow"),
        (["--loop", "trio"], "loop"),
        (["--priority-weights", "1,1"], "priority_weights"),
        (["--overflow", "timeout"], "put_timeout"),
        (["--clock", "virtual", "--loop", "uvloop"], "loop"),
        (["--maxsize", "ten"], "maxsize"),
        (["--events", "0"], "events"),
        (["--ttl", "inf"], "ttl"),
        (["--duration", "inf"], "duration"),
        (["--stall", "1", "--stall-at", "inf"], "stall_at"),
        (["--priority-weights", "nan,1,1"], "priority_weights"),
        (["--rate", "1e-10"], "rate"),
        (["--service-mean", "1e10"], "service_mean"),
        (["--service-mean", "1e-10"], "service_mean"),
        (["--seed", "-1"], "seed"),
        (["--sample-interval", "1e-9"], "sample_interval"),
        (["--repeats", "0"], "--repeats"),
        (["--out", "/proc/streamsim-cannot-write-here"], "--out"),
    ],
)
def test_bad_run_flag_is_one_line_naming_the_field(args: list[str], field: str) -> None:
    result = streamsim("run", "--duration", "0.05", *args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert "Traceback" not in result.stderr


SWEEP_ERRORS = [
    ('name = "x"\n[base]\nmaxsize = 0\nduration = 0.1\nload = 0.5\n', "maxsize"),
    (
        'name = "x"\n[base]\nmaxsize = 10\nduration = 0.1\nload = 0.5\n[[grid]]\nconsumers = [1, 0]\n',
        "consumers",
    ),
    ('name = "x"\n[base]\nmaxsze = 10\nduration = 0.1\nload = 0.5\n', "maxsze"),
    ('name = "x"\n[base]\nduration = 0.1\nload = 0.5\n[[grid]]\noverflow = ["drop-all"]\n', "overflow"),
    (
        'name = "x"\n[base]\nduration = 0.1\nload = 0.5\nlevels = 2\npriority_weights = [1, 2, 3]\n',
        "priority_weights",
    ),
    ('name = "x"\nrepeats = 0\n[base]\nduration = 0.1\nload = 0.5\n', "repeats"),
    ('name = "x"\n[base\nduration = 0.1\n', "TOML"),
    ('name = "x"\n[base]\nduration = 0.1\nload = 0.5\n[[grid]]\nmaxsize = []\n', "maxsize"),
    ('nmae = "x"\n', "nmae"),
    ('name = "x"\ngrid = 3\n', "grid"),
    ('name = "x"\n[base]\nduration = 0.1\nload = 0.5\n[[grid]]\nttl = [0.5, 1e400]\n', "ttl"),
    ("\udcff\udcfe not text", "UTF-8"),
]


@pytest.mark.parametrize(("text", "field"), SWEEP_ERRORS)
def test_bad_sweep_file_is_one_line_naming_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(text.encode("utf-8", "surrogateescape"))  # lone surrogates: raw non-UTF-8 bytes
    result = streamsim("sweep", str(path), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert field in lines[0]
    assert not (tmp_path / "out").exists()


def test_missing_sweep_file_is_one_line(tmp_path: Path) -> None:
    result = streamsim("sweep", str(tmp_path / "nope.toml"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_subcommand_exits_2_in_one_line() -> None:
    result = streamsim("explode")
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1


QUICK = """
name = "tiny"
repeats = 2
warmup = 0

[base]
arrival = "poisson"
duration = 0.15
service_mean = 0.002
producers = 2
consumers = 2
maxsize = 5
levels = 3
drain_timeout = 5.0

[[grid]]
overflow = ["block", "shed-lowest"]
load = [0.5, 1.5]

[[grid]]
loop = ["asyncio", "uvloop"]
load = [0.8]
"""


def test_quick_sweep_writes_valid_report_summary_and_plots(tmp_path: Path) -> None:
    sweep = tmp_path / "tiny.toml"
    sweep.write_text(QUICK)
    out = tmp_path / "out"
    result = streamsim("sweep", str(sweep), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "processed/s" in result.stdout  # the summary table is printed

    raw = (out / "report.json").read_text()

    def refuse(constant: str) -> None:  # strict JSON: no NaN or Infinity anywhere
        raise AssertionError(f"report.json holds {constant}")

    report = Report.model_validate(json.loads(raw, parse_constant=refuse))
    assert read_report(out) == report
    assert report.schema_version == 1
    assert report.environment.packages["numpy"] != "missing"
    assert (
        len(report.points) == 6
    )  # 2 x 2, plus the uvloop point (its asyncio twin exists above? no: load 0.8)
    for point in report.points:
        assert point.status == "ok"
        assert point.repeats == 2
        for level in point.priorities:
            outcomes = (
                level.processed + level.dropped_full + level.dropped_timeout + level.rejected_full
                + level.rejected_closed + level.rejected_cancelled + level.evicted + level.expired
                + level.dead_lettered + level.abandoned
            )  # fmt: skip
            assert outcomes == level.offered

    shed = next(p for p in report.points if p.params["overflow"] == "shed-lowest" and p.params["load"] == 1.5)
    # Nothing is more urgent than p0, so shed-lowest never evicts one; p0 is dropped only
    # when the whole buffer is p0 (possible with maxsize 5), so it loses less than p2.
    p0, p2 = shed.priorities[0], shed.priorities[2]
    assert p0.evicted == 0
    assert p0.drop_rate is not None
    assert p2.drop_rate is not None
    assert p0.drop_rate < p2.drop_rate

    summary = (out / "summary.md").read_text()
    assert summary.count("\n| ") >= 7  # header + 6 points

    pngs = sorted((out / "plots").glob("*.png"))
    assert pngs, "no plots written"
    for png in pngs:
        data = png.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", png
        assert len(data) > 1000, png


def test_run_writes_the_same_report_format(tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = streamsim(
        "run", "--clock", "virtual", "--events", "300", "--load", "0.9", "--consumers", "2",
        "--maxsize", "3", "--overflow", "drop-oldest", "--out", str(out), "--no-plots",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = read_report(out / "report.json")
    (point,) = report.points
    assert sum(level.offered for level in point.priorities) == 300
    assert point.scenario["overflow"] == "drop-oldest"


def test_plot_redraws_from_a_report(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert (
        streamsim("run", "--clock", "virtual", "--events", "200", "--out", str(out), "--no-plots").returncode
        == 0
    )
    result = streamsim("plot", str(out / "report.json"), "--out", str(tmp_path / "pngs"))
    assert result.returncode == 0, result.stderr
    assert list((tmp_path / "pngs").glob("*.png"))


def test_plot_of_a_missing_report_is_one_line(tmp_path: Path) -> None:
    result = streamsim("plot", str(tmp_path / "none.json"))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
