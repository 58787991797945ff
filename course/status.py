"""Who submitted, who is graded, who needs manual grading, who is late."""

from pathlib import Path

from .collect import recorded_time
from .common import check_assignment, render_table
from .gradebook import open_gradebook, pending_manual_grades, recorded_assignment, submission_total


def status_rows(api, assignment):
    """One row per student who submitted or is in the gradebook for `assignment`."""
    check_assignment(api, assignment)
    records = {}
    with open_gradebook(api) as gradebook:  # first: nbgrader's own queries would create a gradebook
        recorded_assignment(gradebook, assignment)
        submitted = set(api.get_submitted_students(assignment))
        autograded = set(api.get_autograded_students(assignment))
        pending = pending_manual_grades(gradebook, assignment)
        for submission in gradebook.assignment_submissions(assignment):
            student = submission.student.id
            records[student] = (submission.total_seconds_late, pending.get(student, []), submission_total(submission))
    rows = []
    for student in sorted(submitted | set(records)):
        seconds_late, pending, total = records.get(student, (0, [], None))
        rows.append(
            {
                "student": student,
                "submitted": _submitted(api, assignment, student) if student in submitted else "no",
                "late": _duration(seconds_late) if seconds_late > 0 else "",
                "graded": "yes" if student in autograded and _autograded(api, assignment, student).is_dir() else "no",
                "needs manual grading": ", ".join(pending),
                "score": total.text() if total else "",
            }
        )
    return rows


def _autograded(api, assignment, student):
    return Path(api.coursedir.format_path(api.coursedir.autograded_directory, student, assignment))


def _submitted(api, assignment, student):
    """When the submission was made (UTC), from the timestamp.txt collect wrote; a broken one costs only this row."""
    when = recorded_time(Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment)))
    return f"{when:%Y-%m-%d %H:%M}" if when else "yes, no valid timestamp.txt"


def _duration(seconds):
    hours, rest = divmod(int(seconds), 3600)
    return f"{hours}h{rest // 60:02d}m late"


def format_rows(rows):
    if not rows:
        return "no submissions yet"
    columns = list(rows[0])
    return render_table([columns] + [[row[column] for column in columns] for row in rows])
