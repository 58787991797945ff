"""The per-exercise score table the instructor reads after grading."""

from pathlib import Path

from . import notebooks
from .common import render_table
from .gradebook import cell_scores, open_gradebook, student_totals


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


def format_table(table, order, totals):
    """Rows of exercises, columns of students: 'score/max', '?' where manual grading is pending; then,
    when anyone was late, each student's late penalty, and each student's total (gradebook.Total.final)."""
    students = sorted(table)
    exercises = [name for name in order if any(name in table[s] for s in students)]
    exercises += sorted({name for s in students for name in table[s]} - set(exercises))

    def cell(student, exercise):
        score, maximum, manual = table[student].get(exercise, (0.0, 0.0, False))
        return f"{'?' if manual else f'{score:g}'}/{maximum:g}"

    rows = [["exercise"] + students]
    rows += [[exercise] + [cell(s, exercise) for s in students] for exercise in exercises]
    if any(totals[s].penalty for s in students):
        rows.append(["late penalty"] + [f"-{totals[s].penalty:g}" if totals[s].penalty else "" for s in students])
    rows.append(["total"] + [f"{totals[s].final:g}/{totals[s].max_score:g}" for s in students])
    return render_table(rows)


def score_table(api, assignment):
    with open_gradebook(api) as gradebook:
        table = cell_scores(gradebook, assignment)
        student_scores = student_totals(gradebook, assignment)
    return format_table(table, exercise_order(api, assignment), student_scores)


def totals(api, assignment, students):
    """{student: gradebook.Total} of the graded ones among `students`: raw score, late penalty, final score."""
    with open_gradebook(api) as gradebook:
        return student_totals(gradebook, assignment, set(students))
