"""benchmarks/autograde.py runs end to end and finds the same scores both ways (its targets need 24 submissions).

A smoke run: two submissions of the first assignment, graded by stock nbgrader (the course's config
and nbgrader's defaults) and by course grade, the floor, the stage table, and a class of four."""

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def test_benchmark_runs_and_scores_agree():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.autograde",
            "--assignment",
            "logistic_regression",
            "--submissions",
            "2",
            "--jobs",
            "2",
            "--class-size",
            "4",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode in (0, 1), run.stdout + run.stderr[-2000:]  # 1: targets need the full 24
    identical = [line for line in run.stdout.splitlines() if "scores identical to stock, cell by cell:" in line]
    assert identical and identical[0].split(":")[1].split() == ["yes"], run.stdout + run.stderr[-2000:]
    for label in (
        "stock nbgrader autograde, course's config",
        "stock nbgrader autograde, its defaults",
        "CPU per submission",
        "speedup",
        "floor, the cells in a warm kernel",
        "worker time per submission",
        "first student graded after",
        "cell execution",
        "verification",
        "gradebook write (coordinator)",
        "quarter 4",
        "peak memory, last half / first half",
        "targets",
    ):
        assert f"  {label}" in run.stdout, f"{label} missing:\n{run.stdout}"
