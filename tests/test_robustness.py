"""The robustness catalogue: broken and hostile notebooks graded with real nbgrader autograde."""

import pytest
from nbgrader.api import Gradebook

from conftest import HONEST
from grades import autograded_cells, cell_errors
from hostile import HOSTILE

pytestmark = [pytest.mark.slow]

ASSIGNMENT = "logistic_regression"


@pytest.fixture(scope="module")
def graded(graded_submissions):
    """The course in which stock nbgrader graded the hostile notebooks, the honest one after them, in one run."""
    root = graded_submissions["hostile_root"]
    return root, graded_submissions["runs"][root, ASSIGNMENT]


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
        "maximum points must come from the gradebook, not the submission"
    )
    expected = {name: variant.expected.get(name, maximum) for name, (_, maximum) in scores.items()}
    assert {name: score for name, (score, _) in scores.items()} == expected, cell_errors(root, ASSIGNMENT, variant.name)


def test_endless_output_is_cut(graded):
    root, _ = graded
    path = root / "autograded" / "prints_300000_lines" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert path.stat().st_size < 1_000_000


@pytest.mark.parametrize("student", ["patched_numpy_comparisons", "rewrites_the_data_it_is_tested_on"])
def test_exploits_are_caught_outside_the_kernel(graded, student):
    """The patched comparisons and the rewritten labels pass in the kernel; only the grader's re-check fails them."""
    root, _ = graded
    errors = cell_errors(root, ASSIGNMENT, student)
    assert any("re-checked" in message for message in errors.values()), errors


def test_the_hostile_course_shortens_only_the_cell_timeout(graded):
    """It grades with the course's config but a shorter per-cell timeout (HOSTILE_CELL_TIMEOUT): the config
    the course ships keeps its 30 s per cell and its 300 s per notebook."""
    from traitlets.config.loader import PyFileConfigLoader

    from conftest import HOSTILE_CELL_TIMEOUT, REPO

    def load(folder):
        return PyFileConfigLoader("nbgrader_config.py", path=str(folder)).load_config()

    from course.plugins.execute import RobustExecute

    shipped, test_course = load(REPO), load(graded[0])
    assert shipped.Execute.timeout == 30 and RobustExecute(config=shipped).notebook_timeout == 300
    assert test_course.Execute.timeout == HOSTILE_CELL_TIMEOUT < 30
    assert RobustExecute(config=test_course).notebook_timeout == 300
    text, shipped_text = (graded[0] / "nbgrader_config.py").read_text(), (REPO / "nbgrader_config.py").read_text()
    added = text[len(shipped_text) :] if text.startswith(shipped_text) else text
    assert [line for line in added.splitlines() if line.strip() and not line.startswith("#")] == [
        f"c.Execute.timeout = {HOSTILE_CELL_TIMEOUT}"
    ]
