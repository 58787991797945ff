"""benchmarks/autograde.py runs end to end and finds the same scores both ways (its targets need 24 submissions)."""

import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]


def test_benchmark_runs_and_scores_agree():
    run = subprocess.run(
        [sys.executable, "-m", "benchmarks.autograde", "--submissions", "3", "--jobs", "2", "--floor-runs", "1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert "scores identical, cell by cell:        yes" in run.stdout, run.stdout + run.stderr[-2000:]
    for line in ("speedup:", "per-submission work / floor:", "bare kernel importing the libraries:"):
        assert line in run.stdout
