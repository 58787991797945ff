"""`course grade --jobs N` gives the grades of stock sequential `nbgrader autograde`, cell by cell."""

import subprocess
import sys

import pytest
from nbgrader.api import Gradebook

from catalogue import CATALOGUES, Variant
from conftest import make_course, nbgrader, submit_variants
from hostile import HOSTILE

ASSIGNMENT = "logistic_regression"
STUDENTS = [Variant("ref", {})] + CATALOGUES[ASSIGNMENT][:3] + CATALOGUES[ASSIGNMENT][-2:] + [
    next(v for v in HOSTILE if v.name == "kills_its_kernel")]


def cell_results(root):
    """{(student, cell): (auto_score, needs_manual_grade)} and {student: late penalty} of a gradebook."""
    cells, penalties = {}, {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for submission in gradebook.assignment_submissions(ASSIGNMENT):
            penalties[submission.student.id] = submission.late_submission_penalty
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    cells[submission.student.id, grade.name] = (grade.auto_score, grade.needs_manual_grade)
    return cells, penalties


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    stock, parallel = tmp_path_factory.mktemp("stock"), tmp_path_factory.mktemp("parallel")
    for root in (stock, parallel):
        make_course(root)
        submit_variants(root, ASSIGNMENT, STUDENTS)
    broken = parallel / "submitted" / "broken" / ASSIGNMENT
    broken.mkdir(parents=True)
    (broken / f"{ASSIGNMENT}.ipynb").write_text("{ this is not a notebook")
    assert nbgrader("autograde", ASSIGNMENT, "--force", cwd=stock).returncode == 0
    run = subprocess.run([sys.executable, "-m", "course", "--root", str(parallel), "grade", ASSIGNMENT,
                          "--jobs", "2"], capture_output=True, text=True, timeout=1800)
    return stock, parallel, run


def test_grades_are_identical_to_stock_nbgrader(both):
    stock, parallel, _ = both
    stock_cells, stock_penalties = cell_results(stock)
    parallel_cells, parallel_penalties = cell_results(parallel)
    assert len(stock_cells) == len(STUDENTS) * 12
    assert {k: v for k, v in parallel_cells.items() if k[0] != "broken"} == stock_cells
    assert {k: v for k, v in parallel_penalties.items() if k != "broken"} == stock_penalties
    for variant in STUDENTS:
        assert (parallel / "autograded" / variant.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()


def test_a_failing_worker_costs_one_student(both):
    _, parallel, run = both
    assert run.returncode == 1
    assert f"graded {len(STUDENTS)} of {len(STUDENTS) + 1} submissions" in run.stdout
    assert "failed: broken (regrade one with --student ID)" in run.stdout
