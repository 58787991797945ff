"""Export the gradebook as a CSV file that Canvas's gradebook import takes.

The layout is the one Canvas's own gradebook export writes and its import reads
(instructure/canvas-lms: lib/gradebook_exporter.rb, app/models/gradebook_importer.rb;
docs/canvas.md): the columns Student, ID, SIS User ID, SIS Login ID and Section, then one
column per assignment; a first row under the header whose Student cell is "    Points Possible"
and which holds each assignment's points; then one row per student. Canvas finds the student
by ID (its own user id), else by SIS User ID, else by SIS Login ID, else by name.

The score of a student on an assignment is gradebook.Total.final, as in every other output;
0 for an assignment they did not submit, as in the plain CSV export (export.grade_rows).

nbgrader's student ids are not Canvas's, so a roster links them: a CSV file with a column
`student_id` (the nbgrader id) and Canvas's columns ID, SIS User ID, SIS Login ID (at least
one of them filled in for every student) and, if wanted, Student (the name Canvas shows) and Section.
"""

import csv
from collections import defaultdict
from pathlib import Path

from .common import CourseError
from .export import cell_text, exported, grade_rows
from .gradebook import open_gradebook

STUDENT_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
IDENTIFIERS = ["ID", "SIS User ID", "SIS Login ID"]  # how Canvas finds the student, in its order
POINTS_POSSIBLE = "    Points Possible"  # as Canvas's export writes it; its import looks for "Points Possible"
ROSTER_ID = "student_id"


def read_roster(path):
    """{nbgrader student id: {Canvas column: value}} from the roster CSV, checked; CourseError says what is wrong."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as file:  # a spreadsheet may add a byte-order mark
            reader = csv.DictReader(file)
            columns = [name.strip() for name in reader.fieldnames or []]
            rows = [{key.strip(): (value or "").strip() for key, value in row.items() if key} for row in reader]
    except FileNotFoundError:
        raise CourseError(f"no roster at {path}") from None
    except (UnicodeDecodeError, csv.Error) as error:
        raise CourseError(f"the roster {path} is not a UTF-8 CSV file: {error}") from None
    if ROSTER_ID not in columns or not set(IDENTIFIERS) & set(columns):
        raise CourseError(
            f"the roster {path} needs a column {ROSTER_ID} (the nbgrader student id) and at least one of "
            f"{', '.join(IDENTIFIERS)} (Canvas's ids); it has: {', '.join(columns) or 'no header'}"
        )
    roster, problems = {}, []
    for line, row in enumerate(rows, start=2):
        student = row.get(ROSTER_ID, "")
        if not student:
            problems.append(f"line {line} has no {ROSTER_ID}")
        elif student in roster:
            problems.append(f"{student} is listed twice")
        elif not any(row.get(column) for column in IDENTIFIERS):
            problems.append(f"{student} has none of {', '.join(IDENTIFIERS)}")
        else:
            roster[student] = {column: row.get(column, "") for column in STUDENT_COLUMNS}
    if problems:
        raise CourseError(f"the roster {path}: {'; '.join(problems)}")
    return roster


def student_name(row, first_name, last_name, student):
    """The Student cell: the roster's, else "Last, First" as Canvas sorts names, else the nbgrader id."""
    if row.get("Student"):
        return row["Student"]
    names = [name for name in (last_name, first_name) if name]
    return ", ".join(names) if names else student


def canvas_table(gradebook, roster, assignments, allow_missing=False):
    """(rows to write, {"not in the roster": [...], "not in the gradebook": [...]}) for `assignments`,
    [(name, points possible)], in that order.

    CourseError, naming every unmatched student either way in one message, unless `allow_missing`.
    """
    scores, people = defaultdict(dict), {}
    for row in grade_rows(gradebook, [name for name, _ in assignments]):
        scores[row["student_id"]][row["assignment"]] = row["score"]
    for student in gradebook.students:  # a student with no exported assignment is in the gradebook too
        people[student.id] = (student.first_name, student.last_name)
    unmatched = {
        "not in the roster": sorted(set(people) - set(roster)),
        "not in the gradebook": sorted(set(roster) - set(people)),
    }
    if any(unmatched.values()) and not allow_missing:
        which = "; ".join(f"{what}: {', '.join(students)}" for what, students in unmatched.items() if students)
        raise CourseError(
            f"the roster and the gradebook do not match ({which}); no file written: fix the roster, "
            "or give --allow-missing to export the students found in both"
        )
    header = STUDENT_COLUMNS + [name for name, _ in assignments]
    rows = [header, [POINTS_POSSIBLE, "", "", "", "", *(points for _, points in assignments)]]
    matched = sorted(set(people) & set(roster), key=lambda s: (student_name(roster[s], *people[s], s), s))
    for student in matched:
        row = roster[student]
        rows.append(
            [
                student_name(row, *people[student], student),
                *(row[column] for column in IDENTIFIERS),
                row["Section"],
                *(float(scores[student].get(name, 0.0)) for name, _ in assignments),
            ]
        )
    return rows, unmatched


def number_text(value):
    """A score as Canvas's export writes it: at most two decimals, no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def write_rows(path, rows):
    """The rows, every text cell through export.cell_text (no spreadsheet formula), numbers as numbers."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        for row in rows:
            writer.writerow(number_text(cell) if isinstance(cell, float) else cell_text(cell) for cell in row)


def export_canvas(api, roster_path, destination="canvas_grades.csv", allow_missing=False):
    """Write the Canvas import file; return (its path, the unmatched students {why: [students]}).

    The assignments are those the plain export writes (released, or with a submission in the
    gradebook). Relative paths are taken from the course root. Nothing is written when students
    do not match and `allow_missing` is False (CourseError).
    """
    root = Path(api.coursedir.root)
    roster = read_roster(root / roster_path)
    with open_gradebook(api) as gradebook:
        names = set(exported(api, gradebook))
        assignments = [(a.name, float(a.max_score or 0.0)) for a in gradebook.assignments if a.name in names]
        rows, unmatched = canvas_table(gradebook, roster, assignments, allow_missing)
    path = root / destination
    write_rows(path, rows)
    return path, unmatched
