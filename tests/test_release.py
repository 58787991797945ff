"""The committed release: in sync with source/, blank, free of solutions and hidden tests."""

import filecmp
import re
from pathlib import Path

import pytest
from nbgrader.validator import Validator

from course import notebooks
from course.common import course_config

from conftest import ASSIGNMENTS, REPO, reference_answers, release_notebook
from private import private_lines

pytestmark = [pytest.mark.slow]


def files_below(folder):
    return sorted(p.relative_to(folder) for p in Path(folder).rglob("*") if p.is_file())


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_committed_release_matches_a_fresh_generation(course, assignment):
    fresh, committed = course / "release" / assignment, REPO / "release" / assignment
    assert files_below(fresh) == files_below(committed), "run `make release` and commit release/"
    for relative in files_below(fresh):
        assert filecmp.cmp(fresh / relative, committed / relative, shallow=False), (
            f"release/{assignment}/{relative} is out of date: run `make release` and commit it"
        )


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


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_is_self_contained(assignment):
    release = REPO / "release" / assignment
    for path in (release / "data").glob("*.csv"):
        assert filecmp.cmp(path, REPO / "data" / path.name, shallow=False)
    source_text = (REPO / "source" / assignment / f"{assignment}.ipynb").read_text()
    for name in re.findall(r"data/([\w.]+\.csv)", source_text):
        assert (release / "data" / name).is_file(), f"the release lacks data/{name}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_fails_validation(course, assignment):
    """`nbgrader validate --invert` through the API: no test cell may pass on the blank notebook."""
    path = REPO / "release" / assignment / f"{assignment}.ipynb"
    config = course_config(course)
    assert Validator(invert=True, config=config).validate(str(path)) == {}
    failed = Validator(config=config).validate(str(path)).get("failed", [])
    graded = [c for c in notebooks.read(path).cells if c.metadata.get("nbgrader", {}).get("grade")]
    assert len(failed) == len(graded)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solved_release_passes_validation(course, tmp_path, assignment):
    solved = notebooks.fill(release_notebook(REPO, assignment), reference_answers(assignment))
    notebooks.write_submission(solved, tmp_path, "student", assignment)
    path = tmp_path / "submitted" / "student" / assignment / f"{assignment}.ipynb"
    (path.parent / "data").symlink_to(REPO / "release" / assignment / "data")
    assert Validator(config=course_config(course)).validate(str(path)) == {}
