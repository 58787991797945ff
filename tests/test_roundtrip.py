"""One real grading round trip for `make test-fast`: release, submit, `course grade` in the sandbox, feedback."""

import pytest

from course import notebooks
from course.__main__ import main

from conftest import REFERENCE, UNTOUCHED, make_course, reference_answers, release_notebook
from grades import autograded_cells

ASSIGNMENT = "logistic_regression"

pytestmark = [pytest.mark.sandbox]


def test_reference_scores_full_marks_and_the_blank_release_none(tmp_path, capsys):
    make_course(tmp_path)
    release = release_notebook(tmp_path, ASSIGNMENT)
    notebooks.write_submission(notebooks.fill(release, reference_answers(ASSIGNMENT)), tmp_path, REFERENCE, ASSIGNMENT)
    notebooks.write_submission(release, tmp_path, UNTOUCHED, ASSIGNMENT)
    assert main(["--root", str(tmp_path), "grade", ASSIGNMENT, "--jobs", "1"]) == 0, capsys.readouterr()
    full = autograded_cells(tmp_path, ASSIGNMENT, REFERENCE)
    blank = autograded_cells(tmp_path, ASSIGNMENT, UNTOUCHED)
    assert full and all(score == maximum for score, maximum in full.values()), full
    assert blank and all(score == 0 for score, _ in blank.values()), blank
    capsys.readouterr()
    assert main(["--root", str(tmp_path), "feedback", ASSIGNMENT]) == 1
    refusal = capsys.readouterr().err
    assert refusal == (
        f"error: manual grading is pending for 1 student(s): {REFERENCE} (reflection). Grade them "
        "in Formgrader first, or give --allow-pending to send feedback that scores them 0\n"
    )
    assert not (tmp_path / "feedback").exists()
    assert main(["--root", str(tmp_path), "feedback", ASSIGNMENT, "--allow-pending"]) == 0, capsys.readouterr()
    page = tmp_path / "feedback" / REFERENCE / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert page.is_file() and "BEGIN HIDDEN TESTS" not in page.read_text()
