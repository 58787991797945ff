"""The reference solution, the blank release and the catalogue, graded by `course grade` (nbgrader's own
autograder in the sandbox; test_parallel.py shows its grades equal stock `nbgrader autograde`'s), and
stock `nbgrader autograde` with the course's config."""

import pytest

from catalogue import CATALOGUES
from conftest import REFERENCE, UNTOUCHED
from grades import autograded_cells, cell_errors

pytestmark = [pytest.mark.slow]

VARIANTS = [(assignment, variant) for assignment, variants in CATALOGUES.items() for variant in variants]


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_course_grade_grades_everyone(graded_catalogue, assignment):
    roots, runs = graded_catalogue
    students = sum(1 for (a, _) in roots if a == assignment)
    for run in runs[assignment]:
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        assert f"graded {students} of {students} submissions" in run.stdout, run.stdout[-2000:]


def stock_runs(graded_submissions, assignment):
    """Stock nbgrader's runs of `assignment` on honest notebooks (the hostile ones tamper with their cells)."""
    hostile = graded_submissions["hostile_root"]
    return [run for (root, a), run in graded_submissions["runs"].items() if a == assignment and root != hostile]


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_stock_autograde_run_completes(graded_submissions, assignment):
    for run in stock_runs(graded_submissions, assignment):
        assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_untouched_test_cells_raise_no_false_alarm(graded_submissions, assignment):
    """Stock nbgrader warns that every test cell with hidden tests 'has changed' (#1961); the course's does not."""
    for run in stock_runs(graded_submissions, assignment):
        assert "Autograding" in run.stderr
        assert "has changed!" not in run.stderr, [line for line in run.stderr.splitlines() if "has changed!" in line][
            :3
        ]


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_reference_solution_scores_full_marks(graded_catalogue, assignment):
    roots, _ = graded_catalogue
    course = roots[assignment, REFERENCE]
    scores = autograded_cells(course, assignment, REFERENCE)
    lost = {name: score for name, score in scores.items() if score[0] != score[1]}
    assert scores and not lost, f"{lost}; errors: {cell_errors(course, assignment, REFERENCE)}"


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_untouched_release_scores_zero(graded_catalogue, assignment):
    roots, _ = graded_catalogue
    scores = autograded_cells(roots[assignment, UNTOUCHED], assignment, UNTOUCHED)
    assert scores and all(score == 0 for score, _ in scores.values()), scores


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_catalogue_is_large_enough(assignment):
    variants = CATALOGUES[assignment]
    assert sum(not v.is_right for v in variants) >= 12 and sum(v.is_right for v in variants) >= 8


@pytest.mark.parametrize("assignment,variant", VARIANTS, ids=[f"{a}-{v.name}" for a, v in VARIANTS])
def test_variant_scores_as_expected(graded_catalogue, assignment, variant):
    roots, _ = graded_catalogue
    course = roots[assignment, variant.name]
    scores = autograded_cells(course, assignment, variant.name)
    errors = cell_errors(course, assignment, variant.name)
    expected = {name: variant.expected.get(name, maximum) for name, (_, maximum) in scores.items()}
    actual = {name: score for name, (score, _) in scores.items()}
    assert actual == expected, f"errors: {errors}"
    for name in variant.expected:
        assert variant.message in errors.get(name, ""), (
            f"{name} should explain the mistake with {variant.message!r}; it says {errors.get(name)!r}"
        )
