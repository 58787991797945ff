"""The committed release: in sync with source/, blank, free of solutions and hidden tests, its checks short."""

import filecmp
import re
from pathlib import Path

import pytest
from nbgrader.validator import Validator

from course import notebooks
from course.common import course_config

from conftest import ASSIGNMENTS, REPO, VISIBLE_LINES, VISIBLE_WIDTH, reference_answers, release_notebook
from private import private_lines

# Code that computes an answer the way a solution does: none of it may appear in a visible check.
SOLUTION_TELLS = [
    ".fit(",  # a reference model fitted in the test
    "LogisticRegression(",
    "StandardScaler(",
    ".transform(",
    ".predict(",
    ".predict_proba(",
    "[:, 1]",  # the column of P(class 1), taken as the answer takes it
    "np.mean(",  # an accuracy, a recall or a mean loss, computed as the answer computes it
    "1 / (1 + np.exp(",  # the sigmoid
]
ASSIGNMENT_TELLS = {
    "logistic_regression": [".score(", "coef_", "intercept_"],  # exercise 3 asks where the model keeps w and b
    "logistic_regression_from_scratch": [
        "np.clip(",
        "* np.log(",
        "X.T @",
        "for _ in range(",
    ],  # loss, gradient, descent
    "logistic_regression_evaluation": [
        "make_pipeline(",
        "GridSearchCV(",
        "cross_val_predict(",
        "StratifiedKFold(",
        "log_loss(",
        "confusion_matrix(",
        "for t in (0, 1)",  # a confusion matrix counted by hand
        "precision_score(",
        "recall_score(",
        "roc_auc_score(",
        "brier_score_loss(",
        "** 2",  # the Brier score by hand
    ],
}
# x - x.mean(...): a z-score, the scaling an answer does.
Z_SCORE = re.compile(r"-\s*[\w.\[\]:, ]+\.mean\(")


def files_below(folder):
    return sorted(p.relative_to(folder) for p in Path(folder).rglob("*") if p.is_file())


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_matches_a_fresh_generation(course, assignment):
    fresh, committed = course / "release" / assignment, REPO / "release" / assignment
    assert files_below(fresh) == files_below(committed), "run `make release` and commit release/"
    for relative in files_below(fresh):
        assert filecmp.cmp(fresh / relative, committed / relative, shallow=False), (
            f"release/{assignment}/{relative} is out of date: run `make release` and commit it"
        )


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_holds_no_solution_hidden_test_or_mark_scheme(assignment):
    text = (REPO / "release" / assignment / f"{assignment}.ipynb").read_text()
    for marker in ["BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS", "MARK SCHEME"]:
        assert marker not in text
    lines = {
        line.strip()
        for cell in notebooks.read(REPO / "release" / assignment / f"{assignment}.ipynb").cells
        for line in cell.source.splitlines()
    }
    secret = private_lines(assignment)
    assert secret and not secret & lines, secret & lines


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_self_contained(assignment):
    release = REPO / "release" / assignment
    for path in (release / "data").glob("*.csv"):
        assert filecmp.cmp(path, REPO / "data" / path.name, shallow=False)
    source_text = (REPO / "source" / assignment / f"{assignment}.ipynb").read_text()
    for name in re.findall(r"data/([\w.]+\.csv)", source_text):
        assert (release / "data" / name).is_file(), f"the release lacks data/{name}"


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_fails_validation(course, assignment):
    """`nbgrader validate --invert` through the API: no test cell may pass on the blank notebook."""
    path = REPO / "release" / assignment / f"{assignment}.ipynb"
    config = course_config(course)
    assert Validator(invert=True, config=config).validate(str(path)) == {}
    failed = Validator(config=config).validate(str(path)).get("failed", [])
    graded = [c for c in notebooks.read(path).cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(failed) == len(graded)


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solved_release_passes_validation(course, tmp_path, assignment):
    solved = notebooks.fill(release_notebook(REPO, assignment), reference_answers(assignment))
    notebooks.write_submission(solved, tmp_path, "student", assignment)
    path = tmp_path / "submitted" / "student" / assignment / f"{assignment}.ipynb"
    (path.parent / "data").symlink_to(REPO / "release" / assignment / "data")
    assert Validator(config=course_config(course)).validate(str(path)) == {}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_visible_checks_are_short_and_give_no_answer_away(assignment):
    release = notebooks.read(REPO / "release" / assignment / f"{assignment}.ipynb")
    tests = [c for c in release.cells if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade")]
    assert tests
    tells = SOLUTION_TELLS + ASSIGNMENT_TELLS[assignment]
    for cell in tests:
        name, lines = notebooks.grade_id(cell), cell.source.splitlines()
        assert "assert " in cell.source, f"{name}: the student sees no check"
        assert len(lines) <= VISIBLE_LINES, f"{name}: {len(lines)} visible lines, more than {VISIBLE_LINES}"
        wide = [line for line in lines if len(line) > VISIBLE_WIDTH]
        assert not wide, f"{name}: visible lines wider than {VISIBLE_WIDTH} characters: {wide}"
        found = [tell for tell in tells if tell in cell.source] + Z_SCORE.findall(cell.source)
        assert not found, f"{name}: the visible check computes the answer: {found}"
