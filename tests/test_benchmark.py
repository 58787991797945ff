"""benchmarks/autograde.py runs end to end and finds the same scores both ways (its targets need 24 submissions).

A smoke run: two submissions of the first assignment, graded by stock nbgrader (the course's config
and nbgrader's defaults) and by course grade, cold and with `course serve` running, the floor, the stage
table, and a class of four. And
benchmarks/gradebook_scale.py's full course: the class it puts in the gradebook is one nbgrader reads."""

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
        "  with course serve running",
        "the class again, course serve running",
        "cell execution",
        "verification",
        "gradebook write (coordinator)",
        "quarter 4",
        "peak memory, last half / first half",
    ):
        assert f"  {label}" in run.stdout, f"{label} missing:\n{run.stdout}"
    assert "\ntargets: " in run.stdout, run.stdout


def test_the_scale_benchmark_fills_a_gradebook_nbgrader_reads_as_a_class(graded_catalogue, tmp_path):
    """benchmarks/gradebook_scale.py's class: copies of a graded student, each whole and a student of its own."""
    import shutil

    from nbgrader.api import Gradebook

    from benchmarks.gradebook_scale import fill_gradebook
    from course.gradebook import student_totals

    from conftest import REFERENCE

    roots, _ = graded_catalogue
    gradebook = tmp_path / "gradebook.db"
    shutil.copy(roots["logistic_regression", REFERENCE] / "gradebook.db", gradebook)
    fill_gradebook(gradebook, REFERENCE, 5)
    with Gradebook(f"sqlite:///{gradebook}", "logistic-regression") as opened:
        totals = student_totals(opened, "logistic_regression")
        copies = {f"class{number:05d}" for number in range(5)}
        assert copies <= set(totals) and {totals[name] for name in copies} == {totals[REFERENCE]}
        assert totals[REFERENCE].raw > 0  # the written answer waits for its hand grade
        for name in copies:
            assert len(opened.find_submission("logistic_regression", name).notebooks[0].grades) == len(
                opened.find_submission("logistic_regression", REFERENCE).notebooks[0].grades
            )
