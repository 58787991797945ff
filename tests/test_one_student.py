"""One student never costs the class: notebook-level attacks graded next to honest students.

Every submission below is graded once, with `python -m course grade`, then
given feedback, a report and an export. nbgrader rejects some of them (a
notebook that is not JSON, renamed or replaced by a folder, a duplicated
grade_id, an added cell worth 1e9 points, locked flags removed); others are
too large (a 30 MB attachment, a 200 MB notebook) or too slow (cells that
sleep past the notebook's time budget); some student ids are spreadsheet
formulas. The honest students keep full marks and get their feedback; each
other student is named with the reason.
"""

import copy
import csv

import nbformat
import pytest
from nbgrader.api import Gradebook

from course import notebooks
from course.collect import collect
from course.common import open_api
from course.plugins.attachments import StripCarriedIn
from course.plugins.execute import Execute, RobustExecute

from conftest import course_cli, make_course, reference_answers, release_notebook

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT = "logistic_regression"
FULL = 17.0  # autograded points of the reference solution
BUDGET, NAPS = 15, 5  # seconds per notebook in this course (an honest one takes a few); 4 s naps
HONEST = ["honest", "+1+1"]  # the second one's id is a formula
FORMULA_STUDENT = {
    "student_id": "@SUM(1+1)*cmd|' -C calc'!A0",
    "first_name": '=HYPERLINK("http://evil")',
    "last_name": "-2+3",
    "email": "\tx@example.org",
}  # in the gradebook only
REJECTED = ["duplicated_grade_id", "folder", "garbage", "huge", "renamed", "unlocked", "worth_a_billion"]
ATTACHMENT_BYTES, HUGE_BYTES = 30_000_000, 200_000_000
CONFIG = f"""
c.SubmissionLimits.max_notebook_bytes = 40_000_000
c.SubmissionLimits.max_submission_bytes = 50_000_000
c.RobustExecute.notebook_timeout = {BUDGET}
"""


def solved(root):
    return notebooks.fill(release_notebook(root, ASSIGNMENT), reference_answers(ASSIGNMENT))


def index_of(notebook, grade_id):
    return next(i for i, cell in enumerate(notebook.cells) if notebooks.grade_id(cell) == grade_id)


def duplicated_grade_id(notebook):
    duplicate = copy.deepcopy(notebook.cells[index_of(notebook, "sigmoid")])
    duplicate.id = "duplicate"
    notebook.cells.insert(0, duplicate)


def cell_worth_a_billion(notebook):
    cell = nbformat.v4.new_code_cell("pass")
    cell.metadata["nbgrader"] = {
        "grade": True,
        "solution": False,
        "locked": False,
        "points": 1e9,
        "grade_id": "free_points",
        "schema_version": 3,
    }
    notebook.cells.append(cell)


def unlocked(notebook):
    for cell in notebook.cells:
        cell.metadata.get("nbgrader", {}).pop("locked", None)


def with_attachment(notebook):
    cell = nbformat.v4.new_markdown_cell("![big](attachment:big.png) ![gone](attachment:gone.png)")
    cell.attachments = {"big.png": {"image/png": "A" * ATTACHMENT_BYTES}}
    notebook.cells.insert(1, cell)


def napping(notebook):
    """Naps before the sigmoid exercise: the budget runs out in one of them."""
    where = index_of(notebook, "sigmoid_text")
    for _ in range(NAPS):
        notebook.cells.insert(where, nbformat.v4.new_code_cell("import time\ntime.sleep(4)"))


EDITED = {
    "duplicated_grade_id": duplicated_grade_id,
    "worth_a_billion": cell_worth_a_billion,
    "unlocked": unlocked,
    "attachment": with_attachment,
    "sleeper": napping,
}
SCORED_BEFORE_NAPS = [
    "test_scale_hours",
    "test_scale_hours_guessed",
    "test_fit_hours_model",
    "test_coefficients",
    "test_pass_probabilities",
]


def write_huge(path):
    """A notebook of one markdown cell of HUGE_BYTES, written a megabyte at a time."""
    with open(path, "wb") as file:
        file.write(
            b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "markdown", '
            b'"id": "huge", "metadata": {}, "source": "'
        )
        for _ in range(HUGE_BYTES // 1_000_000):
            file.write(b"x" * 1_000_000)
        file.write(b'"}]}')


@pytest.fixture(scope="module")
def term(tmp_path_factory):
    root = tmp_path_factory.mktemp("one-student")
    make_course(root)
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(CONFIG)
    for student in HONEST:
        notebooks.write_submission(solved(root), root, student, ASSIGNMENT)
    for student, edit in EDITED.items():
        notebook = solved(root)
        edit(notebook)
        notebooks.write_submission(notebook, root, student, ASSIGNMENT)
    notebooks.write_submission(solved(root), root, "renamed", ASSIGNMENT, name="my_work")
    submitted = root / "submitted"
    (submitted / "garbage" / ASSIGNMENT).mkdir(parents=True)
    (submitted / "garbage" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").write_text("this is not JSON")
    (submitted / "folder" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").mkdir(parents=True)
    (submitted / "huge" / ASSIGNMENT).mkdir(parents=True)
    write_huge(submitted / "huge" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    out = {"grade": course_cli(root, "grade", ASSIGNMENT, "--jobs", "2")}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        gradebook.update_or_create_student(**FORMULA_STUDENT)
    for command, args in [
        ("feedback", ["feedback", ASSIGNMENT, "--allow-pending"]),
        ("report", ["report", ASSIGNMENT]),
        ("export", ["export"]),
    ]:
        out[command] = course_cli(root, *args)
    return root, out


def scores(root):
    """{student: {grade cell: score}} of every graded submission."""
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        return {
            submission.student.id: {
                grade.name: grade.score for notebook in submission.notebooks for grade in notebook.grades
            }
            for submission in gradebook.assignment_submissions(ASSIGNMENT)
        }


def test_honest_students_keep_their_grades_and_get_feedback(term):
    root, _ = term
    graded = scores(root)
    assert set(graded) == set(HONEST) | {"attachment", "sleeper"}, "no rejected submission is in the gradebook"
    for student in HONEST + ["attachment"]:
        assert sum(graded[student].values()) == FULL, student
    for student in graded:
        assert (root / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").is_file(), student


def test_grade_names_each_rejected_student_with_the_reason(term):
    _, out = term
    lines = out["grade"].stdout.splitlines()
    assert out["grade"].returncode == 1
    assert "graded 4 of 11 submissions of logistic_regression; mean score 14.5" in lines
    assert f"failed: {', '.join(REJECTED)} (regrade one with --student ID)" in lines
    reasons = {line.split(": ", 1)[0].strip(): line.split(": ", 1)[1] for line in lines if line.startswith("  ")}
    assert reasons == {
        "duplicated_grade_id": "RuntimeError: KeyError: 'grade_id'",
        "folder": f"InvalidSubmission: {ASSIGNMENT}.ipynb is a folder, not a notebook",
        "garbage": "RuntimeError: nbformat.reader.NotJSONError: Notebook does not appear to be JSON: "
        "'this is not JSON'",
        "huge": f"InvalidSubmission: {ASSIGNMENT}.ipynb has {HUGE_BYTES + 134} bytes, over the limit of 40000000 "
        "(c.SubmissionLimits.max_notebook_bytes)",
        "renamed": f"InvalidSubmission: {ASSIGNMENT}.ipynb is missing (notebooks submitted: my_work.ipynb)",
        "unlocked": "RuntimeError: jsonschema.exceptions.ValidationError: Notebook failed to validate; "
        "the nbgrader metadata may be corrupted.",
        "worth_a_billion": "RuntimeError: KeyError: 'grade_id'",
    }


def test_feedback_names_those_left_out_and_fails(term):
    root, out = term
    assert out["feedback"].returncode == 1
    lines = out["feedback"].stdout.splitlines()
    assert lines[0] == "wrote feedback for 4 of 11 students under feedback/"
    assert lines[1:] == [
        f"no feedback for {student}: not autograded: its grading failed or has not run (see `course grade`)"
        for student in REJECTED
    ]
    assert not any((root / "feedback" / student).exists() for student in REJECTED)


def test_report_and_export_cover_the_graded_and_name_the_others(term):
    root, out = term
    assert out["report"].returncode == out["export"].returncode == 1
    assert out["report"].stdout.splitlines()[1:] == [
        f"no score in the report for {s}: not autograded" for s in REJECTED
    ]
    assert out["export"].stdout.splitlines()[1:] == [
        f"no score in the export for {s} on {ASSIGNMENT}: not autograded" for s in REJECTED
    ]
    page = (root / "reports" / ASSIGNMENT / "index.html").read_text()
    assert "4 students autograded" in page
    every_row = list(csv.DictReader(open(root / "grades.csv")))
    assert {row["assignment"] for row in every_row} == {ASSIGNMENT}, "an assignment nobody got is not exported"
    rows = {row["student_id"]: row for row in every_row}
    assert float(rows["honest"]["score"]) == FULL and float(rows["sleeper"]["score"]) == 7.0


def test_huge_notebook_is_refused_before_it_is_packed(term):
    """The coordinator refuses it with its size (its message: the test above); no worker grades it."""
    root, out = term
    assert "huge: FAILED" in out["grade"].stderr + out["grade"].stdout
    assert not (root / "autograded" / "huge").exists()


def test_big_attachment_is_stripped_with_a_note(term):
    root, _ = term
    graded = root / "autograded" / "attachment" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    assert graded.stat().st_size < 1_000_000
    note = f"*[the grader removed the attachment big.png: {ATTACHMENT_BYTES + 17} bytes, over the limit of 1000000]*"
    assert notebooks.read(graded).cells[1].source == (
        f"![big](removed-attachment:big.png) ![gone](removed-attachment:gone.png)\n\n{note}"
    )
    feedback = root / "feedback" / "attachment" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    assert feedback.stat().st_size < 2_000_000 and "the grader removed the attachment big.png" in feedback.read_text()


def test_time_budget_interrupts_and_keeps_earlier_scores(term):
    root, _ = term
    sleeper = scores(root)["sleeper"]
    honest = scores(root)["honest"]
    assert {name: sleeper[name] for name in SCORED_BEFORE_NAPS} == {name: honest[name] for name in SCORED_BEFORE_NAPS}
    assert sum(sleeper.values()) == 7.0, "every test after the naps scores 0"
    cells = notebooks.read(root / "autograded" / "sleeper" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").cells
    errors = [f"{o.ename}: {o.evalue}" for cell in cells for o in cell.get("outputs", []) if o.output_type == "error"]
    interrupted = f"NotebookTimeout: interrupted: the notebook used up its time budget of {BUDGET} s in this cell"
    not_run = f"NotebookTimeout: not run: the notebook used up its time budget of {BUDGET} s"
    assert errors.count(interrupted) == 1
    assert errors[errors.index(interrupted) + 1 :] == [not_run] * len(errors[errors.index(interrupted) + 1 :])
    sigmoid_test = next(cell for cell in cells if notebooks.grade_id(cell) == "test_sigmoid")
    assert [f"{o.ename}: {o.evalue}" for o in sigmoid_test.outputs] == [not_run]


def test_no_formula_in_any_csv_cell(term):
    root, _ = term
    rows = list(csv.reader(open(root / "grades.csv", newline="")))
    header, body = rows[0], rows[1:]
    assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows for cell in row)
    by_id = {
        row[header.index("student_id")]: dict(zip(header, row, strict=True)) for row in body if row[0] == ASSIGNMENT
    }
    assert by_id["'+1+1"]["score"] == "17.0"
    formula = by_id["'" + FORMULA_STUDENT["student_id"]]
    assert (formula["first_name"], formula["last_name"], formula["email"]) == (
        "'" + FORMULA_STUDENT["first_name"],
        "'-2+3",
        "'\tx@example.org",
    )
    assert all(
        float(row[header.index(column)]) >= 0
        for row in body
        for column in ("raw_score", "late_submission_penalty", "score", "max_score")
    )


def test_output_cap_starts_again_with_each_notebook(monkeypatch):
    """RobustExecute counts a cell's output bytes; the count must not carry over to the next notebook."""

    def run_one_cell(self, nb, resources=None, km=None):
        self.nb, self.clear_before_next_output, outs = nb, False, []
        message = {
            "msg_type": "stream",
            "parent_header": {},
            "header": {"msg_type": "stream"},
            "content": {"name": "stdout", "text": "x" * 600},
        }
        self.output(outs, message, None, 0)
        return outs

    monkeypatch.setattr(Execute, "preprocess", run_one_cell)
    execute = RobustExecute(max_output_bytes=1000)
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('x' * 600)")])
    first, second = execute.preprocess(notebook, {}), execute.preprocess(notebook, {})
    assert [output.text for output in first] == [output.text for output in second] == ["x" * 600]


def test_strip_carried_in_leaves_code_and_small_attachments_alone():
    code = nbformat.v4.new_code_cell("reference = 'attachment:plot.png'")
    text = nbformat.v4.new_markdown_cell("![plot](attachment:plot.png) ![lost](attachment:lost.png)")
    text.attachments = {"plot.png": {"image/png": "iVBORw0KGgo="}}
    notebook = nbformat.v4.new_notebook(cells=[code, text])
    notebook, _ = StripCarriedIn(max_attachment_bytes=1000).preprocess(notebook, {})
    assert code.source == "reference = 'attachment:plot.png'"
    assert text.source == "![plot](attachment:plot.png) ![lost](removed-attachment:lost.png)"
    assert list(text.attachments) == ["plot.png"]


def test_collect_takes_the_latest_sound_entry(term, tmp_path):
    """Without separate users: an oversized latest entry is refused and the student's earlier one counts."""
    root, _ = term
    inbound = tmp_path / "exchange" / "logistic-regression" / "inbound"
    inbound.mkdir(parents=True)
    api = open_api(
        root,
        Exchange={"root": str(tmp_path / "exchange")},
        ExchangeCollect={"check_owner": False},
        SubmissionLimits={"max_submission_bytes": 1_000_000},
    )
    earlier, later = (inbound / f"ada+{ASSIGNMENT}+2027-01-0{day} 10:00:00.000000 UTC+x{day}" for day in (1, 2))
    for entry in (earlier, later):
        entry.mkdir()
        notebooks.write(solved(root), entry / f"{ASSIGNMENT}.ipynb")
        (entry / "timestamp.txt").write_text("2027-01-01 10:00:00.000000 UTC")
    (later / "data.bin").write_bytes(b"x" * 1_000_001)
    (inbound / f"..+{ASSIGNMENT}+2027-01-01 10:00:00.000000 UTC+x3").mkdir()
    students, lines = collect(api, ASSIGNMENT)
    assert "ada" in students
    assert lines[:2] == [
        f"refused inbound entry ..+{ASSIGNMENT}+2027-01-01 10:00:00.000000 UTC+x3: it names no valid student id",
        f"refused ada's inbound entry {later.name}: the submission has more than 1000000 bytes "
        "(c.SubmissionLimits.max_submission_bytes)",
    ]
    assert lines[2].startswith("ada: its timestamp.txt says 2027-01-01 10:00:00 UTC; the exchange recorded ")
    assert sorted(path.name for path in (root / "submitted" / "ada" / ASSIGNMENT).iterdir()) == [
        f"{ASSIGNMENT}.ipynb",
        "timestamp.txt",
    ]
