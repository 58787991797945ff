"""The per-exercise score table the instructor reads after grading."""

from pathlib import Path

from . import notebooks
from .common import render_table
from .gradebook import cell_scores, open_gradebook


def exercise_order(api, assignment):
    """Exercise names in the order their cells appear in the released notebooks."""
    release = Path(api.coursedir.root) / api.coursedir.release_directory / assignment
    order = []
    for path in sorted(release.glob("*.ipynb")):
        for cell in notebooks.read(path).cells:
            info = cell.metadata.get("nbgrader", {})
            if info.get("solution") or info.get("grade"):
                order.append(info["grade_id"])
    return order


def format_table(table, order):
    """Rows of exercises, columns of students: 'score/max', '?' where manual grading is pending."""
    students = sorted(table)
    exercises = [name for name in order if any(name in table[s] for s in students)]
    exercises += sorted({name for s in students for name in table[s]} - set(exercises))

    def cell(student, exercise):
        score, maximum, manual = table[student].get(exercise, (0.0, 0.0, False))
        return f"{'?' if manual else f'{score:g}'}/{maximum:g}"

    def total(student):
        values = table[student].values()
        return f"{sum(v[0] for v in values):g}/{sum(v[1] for v in values):g}"

    rows = [["exercise"] + students]
    rows += [[exercise] + [cell(s, exercise) for s in students] for exercise in exercises]
    rows.append(["total"] + [total(s) for s in students])
    return render_table(rows)


def score_table(api, assignment):
    with open_gradebook(api) as gradebook:
        table = cell_scores(gradebook, assignment)
    return format_table(table, exercise_order(api, assignment))


def totals(api, assignment, students):
    """{student: total score after any late penalty} for the graded ones among `students`."""
    with open_gradebook(api) as gradebook:
        return {s.student.id: s.score for s in gradebook.assignment_submissions(assignment) if s.student.id in students}
