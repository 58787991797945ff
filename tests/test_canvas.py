"""The Canvas export: the layout of docs/canvas.md's example, which Canvas's import rules read as they
read Canvas's own export; rosters checked; a roster that does not match the gradebook stops the export
with one message naming every unmatched student, unless --allow-missing; cells safe in a spreadsheet."""

import csv
import re

import pytest
from nbgrader.api import Gradebook

from course.__main__ import main
from course.canvas import canvas_table, read_roster, write_rows
from course.common import CourseError

from conftest import REPO, make_course

# ---- The Canvas export's layout ----


def docs_example(title):
    """The ```csv block under the heading `title` in docs/canvas.md."""
    text = (REPO / "docs" / "canvas.md").read_text()
    match = re.search(rf"^#+ {re.escape(title)}\n.*?```csv\n(.*?)```", text, re.S | re.M)
    assert match, f"docs/canvas.md has no csv example under {title!r}"
    return match.group(1)


def canvas_reads(text):
    """What Canvas's gradebook import takes from a CSV file, by the rules of its importer
    (instructure/canvas-lms, app/models/gradebook_importer.rb: header?, update_column_count,
    check_for_non_student_row, process_student): {"assignments": [...], "points": {...},
    "students": [(ID, SIS User ID, SIS Login ID, name, {assignment: grade})]}."""
    rows = list(csv.reader(text.splitlines()))
    header = rows[0]
    assert len(header) > 3 and "Student" in header[0] and "ID" in header[1], "Canvas: invalid header row"
    columns = 3
    if re.search(r"SIS\s+User\s+ID", header[2]) and re.search(r"SIS\s+Login\s+ID", header[3]):
        columns += 2
    assert "Section" in header[columns - 1], "Canvas: invalid header row (the last student column is Section)"
    totals = ("Current Score", "Current Points", "Current Grade", "Final Score", "Final Points", "Final Grade")
    assignments = [name for name in header[columns:] if not any(total in name for total in totals)]
    index = {name: header.index(name) for name in assignments}
    points, students = {}, []
    for row in rows[1:]:
        if "Points Possible" in row[0]:
            points = {name: row[index[name]] for name in assignments}
            continue
        grades = {name: row[index[name]].strip() for name in assignments}
        students.append((row[1], row[2], row[3], row[0], grades))
    return {"assignments": assignments, "points": points, "students": students}


@pytest.fixture(scope="module")
def small_gradebook(tmp_path_factory):
    """Two assignments; ada late on the first and absent from the second, ben on time on both."""
    url = f"sqlite:///{tmp_path_factory.mktemp('canvas') / 'gradebook.db'}"
    with Gradebook(url, "logistic-regression") as gradebook:
        for assignment, cells in (("logistic_regression", (17, 3)), ("logistic_regression_from_scratch", (11, 2))):
            gradebook.add_assignment(assignment)
            gradebook.add_notebook(assignment, assignment)
            for number, points in enumerate(cells):
                gradebook.add_grade_cell(f"cell{number}", assignment, assignment, max_score=points, cell_type="code")
        gradebook.add_student("ada", first_name="Ada", last_name="Lovelace")
        gradebook.add_student("ben")
        for assignment, student, scores, penalty in (
            ("logistic_regression", "ada", (17, 3), 2.0),
            ("logistic_regression", "ben", (11, None), 0.0),
            ("logistic_regression_from_scratch", "ben", (8, 0), 0.0),
        ):
            submission = gradebook.add_submission(assignment, student)
            notebook = submission.notebooks[0]
            for grade, score in zip(sorted(notebook.grades, key=lambda g: g.name), scores, strict=True):
                grade.auto_score = score
            notebook.late_submission_penalty = penalty
        gradebook.db.commit()
    yield url


ROSTER = """\
student_id,Student,ID,SIS User ID,SIS Login ID,Section
ada,"Lovelace, Ada",1001,S-1001,alovelace,Period 1
ben,,1002,S-1002,bjones,Period 2
"""


def canvas_file(url, roster_text, tmp_path, allow_missing=False):
    roster = tmp_path / "roster.csv"
    roster.write_text(roster_text)
    with Gradebook(url, "logistic-regression") as gradebook:
        assignments = [(a.name, float(a.max_score)) for a in gradebook.assignments]
        rows, unmatched = canvas_table(gradebook, read_roster(roster), assignments, allow_missing)
    write_rows(tmp_path / "canvas.csv", rows)
    return (tmp_path / "canvas.csv").read_text(), unmatched


def test_the_canvas_file_is_the_documented_example(small_gradebook, tmp_path):
    text, unmatched = canvas_file(small_gradebook, ROSTER, tmp_path)
    assert unmatched == {"not in the roster": [], "not in the gradebook": []}
    assert text.replace("\r\n", "\n") == docs_example("What course export --format canvas writes")


def test_canvas_reads_our_file_as_it_reads_its_own_export(small_gradebook, tmp_path):
    ours = canvas_reads(canvas_file(small_gradebook, ROSTER, tmp_path)[0])
    theirs = canvas_reads(docs_example("What Canvas's own gradebook export looks like"))
    assert ours["points"] == {"logistic_regression": "20", "logistic_regression_from_scratch": "13"}
    assert [student[:3] for student in ours["students"]] == [
        ("1001", "S-1001", "alovelace"),
        ("1002", "S-1002", "bjones"),
    ]
    assert [student[4] for student in ours["students"]] == [
        {"logistic_regression": "18", "logistic_regression_from_scratch": "0"},
        {"logistic_regression": "11", "logistic_regression_from_scratch": "8"},
    ]
    assert theirs["assignments"] == ["Logistic regression (4757)", "Logistic regression from scratch (4766)"]
    assert theirs["points"] and [student[:3] for student in theirs["students"]] == [
        ("1001", "S-1001", "alovelace"),
        ("1002", "S-1002", "bjones"),
    ], "Canvas's own export is read by the same rules"


def test_an_unmatched_roster_stops_the_export_with_one_message(small_gradebook, tmp_path):
    roster = ROSTER.replace("ben,,1002", "ben_typo,,1002") + "cy,,1003,,,\n"
    with pytest.raises(CourseError) as error:
        canvas_file(small_gradebook, roster, tmp_path)
    assert str(error.value) == (
        "the roster and the gradebook do not match (not in the roster: ben; not in the gradebook: ben_typo, cy); "
        "no file written: fix the roster, or give --allow-missing to export the students found in both"
    )
    assert not (tmp_path / "canvas.csv").exists()
    text, unmatched = canvas_file(small_gradebook, roster, tmp_path, allow_missing=True)
    assert unmatched == {"not in the roster": ["ben"], "not in the gradebook": ["ben_typo", "cy"]}
    assert [row[3] for row in csv.reader(text.splitlines())][2:] == ["alovelace"]


@pytest.mark.parametrize(
    "roster,message",
    [
        ("id,name\n", "needs a column student_id (the nbgrader student id) and at least one of ID"),
        ("student_id,ID\nada,1\nada,2\n", "ada is listed twice"),
        ("student_id,ID,SIS Login ID\nada,,\n", "ada has none of ID, SIS User ID, SIS Login ID"),
    ],
)
def test_a_broken_roster_is_named(tmp_path, roster, message):
    (tmp_path / "roster.csv").write_text(roster)
    with pytest.raises(CourseError, match=re.escape(message)):
        read_roster(tmp_path / "roster.csv")


def test_canvas_cells_are_spreadsheet_safe(small_gradebook, tmp_path):
    roster = ROSTER.replace('"Lovelace, Ada"', '"=HYPERLINK(""http://evil"")"').replace("Period 2", "+Period 2")
    rows = list(csv.reader(canvas_file(small_gradebook, roster, tmp_path)[0].splitlines()))
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)
    assert rows[2][0] == '\'=HYPERLINK("http://evil")' and rows[3][4] == "'+Period 2"


def test_export_refuses_canvas_options_without_canvas_and_canvas_without_a_roster(tmp_path, capsys):
    make_course(tmp_path)
    assert main(["--root", str(tmp_path), "export", "--roster", "roster.csv"]) == 1
    assert capsys.readouterr().err.strip() == "error: --roster and --allow-missing go with --format canvas"
    assert main(["--root", str(tmp_path), "export", "--format", "canvas"]) == 1
    assert capsys.readouterr().err.strip().startswith("error: --format canvas needs --roster FILE")
    assert main(["--root", str(tmp_path), "export", "--format", "canvas", "--roster", "missing.csv"]) == 1
    assert capsys.readouterr().err.strip() == f"error: no roster at {tmp_path / 'missing.csv'}"
    assert not (tmp_path / "canvas_grades.csv").exists()
