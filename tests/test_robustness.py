"""The robustness catalogue: broken and hostile notebooks graded with real nbgrader autograde."""

import pytest
from nbgrader.api import Gradebook

from catalogue import Variant
from conftest import make_course, nbgrader, submit_variants
from grades import autograded_cells, cell_errors
from hostile import HOSTILE

pytestmark = [pytest.mark.slow]

ASSIGNMENT = "logistic_regression"
HONEST = Variant("zz_honest_student", {})  # graded after every hostile one


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("robustness")
    make_course(root)
    submit_variants(root, ASSIGNMENT, HOSTILE + [HONEST])
    return root, nbgrader("autograde", ASSIGNMENT, "--force", cwd=root)


def test_run_completes_and_grades_everyone(graded):
    root, run = graded
    assert run.returncode == 0, run.stderr[-3000:]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        graded_students = {s.student.id for s in gradebook.assignment_submissions(ASSIGNMENT)}
    assert graded_students == {v.name for v in HOSTILE + [HONEST]}


def test_honest_student_is_graded_normally(graded):
    root, _ = graded
    scores = autograded_cells(root, ASSIGNMENT, HONEST.name)
    assert all(score == maximum for score, maximum in scores.values()), cell_errors(root, ASSIGNMENT, HONEST.name)


@pytest.mark.parametrize("variant", HOSTILE, ids=[v.name for v in HOSTILE])
def test_no_undeserved_points(graded, variant):
    root, _ = graded
    scores = autograded_cells(root, ASSIGNMENT, variant.name)
    honest = autograded_cells(root, ASSIGNMENT, HONEST.name)
    assert {name: m for name, (_, m) in scores.items()} == {name: m for name, (_, m) in honest.items()}, (
        "maximum points must come from the gradebook, not the submission")
    expected = {name: variant.expected.get(name, maximum) for name, (_, maximum) in scores.items()}
    assert {name: score for name, (score, _) in scores.items()} == expected, cell_errors(root, ASSIGNMENT, variant.name)


def test_endless_output_is_cut(graded):
    root, _ = graded
    path = root / "autograded" / "prints_300000_lines" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 1_000_000


def test_exploits_are_caught_outside_the_kernel(graded):
    """The patched comparisons pass inside the kernel; only the grader's re-check fails them."""
    root, _ = graded
    errors = cell_errors(root, ASSIGNMENT, "patched_numpy_comparisons")
    assert any("re-checked" in message for message in errors.values()), errors
