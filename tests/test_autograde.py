"""Real `nbgrader autograde` on the reference solution, the blank release and the catalogue."""

import pytest

from catalogue import CATALOGUES
from conftest import REFERENCE, UNTOUCHED
from grades import autograded_cells, cell_errors

pytestmark = [pytest.mark.slow]

VARIANTS = [(assignment, variant) for assignment, variants in CATALOGUES.items() for variant in variants]


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_autograde_run_completes(graded_catalogue, assignment):
    _, runs = graded_catalogue
    assert runs[assignment]
    for run in runs[assignment]:
        assert run.returncode == 0, run.stderr[-3000:]


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_untouched_test_cells_raise_no_false_alarm(graded_catalogue, assignment):
    """Stock nbgrader warns that every test cell with hidden tests 'has changed' (#1961); the course's does not."""
    _, runs = graded_catalogue
    for run in runs[assignment]:
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
