"""Export the gradebook to CSV in nbgrader's format, safe to open in a spreadsheet."""

import csv
from pathlib import Path

from nbgrader.api import MissingEntry

from .gradebook import open_gradebook, submission_total

COLUMNS = [
    "assignment",
    "duedate",
    "timestamp",
    "student_id",
    "last_name",
    "first_name",
    "email",
    "raw_score",
    "late_submission_penalty",
    "score",
    "max_score",
]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")  # OWASP's list: a spreadsheet may run such a cell


def cell_text(value):
    """A CSV cell: numbers as they are, text that a spreadsheet would read as a formula prefixed with '."""
    if value is None:
        return ""
    if isinstance(value, (int, float)):
        return str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def write_csv(path, columns, rows):
    """Write `rows` (dicts) under a header of `columns`, every cell through cell_text."""
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows([cell_text(row[column]) for column in columns] for row in rows)


def grade_rows(gradebook, assignments):
    """One row per assignment named in `assignments` and student, as nbgrader's CsvExportPlugin computes it
    (0 if not submitted)."""
    for assignment in gradebook.assignments:
        if assignment.name not in assignments:
            continue
        for student in gradebook.students:
            row = {
                "assignment": assignment.name,
                "duedate": assignment.duedate,
                "student_id": student.id,
                "last_name": student.last_name,
                "first_name": student.first_name,
                "email": student.email,
                "max_score": assignment.max_score,
                "timestamp": "",
                "raw_score": 0.0,
                "late_submission_penalty": 0.0,
                "score": 0.0,
            }
            try:
                submission = gradebook.find_submission(assignment.name, student.id)
            except MissingEntry:
                yield row
                continue
            total = submission_total(submission)
            yield {
                **row,
                "timestamp": submission.timestamp,
                "raw_score": total.raw,
                "late_submission_penalty": total.penalty,
                "score": total.final,
            }


def ungraded(api, assignment):
    """Students with a submission of `assignment` in submitted/ that is not autograded."""
    return sorted(set(api.get_submitted_students(assignment)) - set(api.get_autograded_students(assignment)))


def exported(api, gradebook):
    """The assignments to export: those released to the exchange or with a submission in the gradebook."""
    released = set(api.get_released_assignments())
    return sorted(
        assignment.name
        for assignment in gradebook.assignments
        if assignment.name in released or gradebook.assignment_submissions(assignment.name)
    )


def export_csv(api, destination="grades.csv"):
    """Write one row per student and released assignment.

    Return (the path, {assignment: [ungraded students]}, [assignments left out: not released]).
    A relative destination is taken from the course root.
    """
    destination = Path(api.coursedir.root) / destination
    with open_gradebook(api) as gradebook:
        assignments = exported(api, gradebook)
        write_csv(destination, COLUMNS, grade_rows(gradebook, assignments))
        skipped = sorted(assignment.name for assignment in gradebook.assignments if assignment.name not in assignments)
    left_out = {assignment: ungraded(api, assignment) for assignment in assignments}
    return destination, {assignment: students for assignment, students in left_out.items() if students}, skipped
