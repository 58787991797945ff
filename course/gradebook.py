"""Read the course's gradebook without ever creating one."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

from nbgrader.api import Assignment, Gradebook, MissingEntry
from nbgrader.apps import NbGraderAPI

from .common import CourseError


def gradebook_path(api: NbGraderAPI) -> Path | None:
    """The gradebook's file, or None when it is not SQLite."""
    url = api.coursedir.db_url
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


@contextmanager
def open_gradebook(api: NbGraderAPI) -> Iterator[Gradebook]:
    """The gradebook, or CourseError when it does not exist yet (opening it would create it)."""
    path = gradebook_path(api)
    if path is not None and not path.is_file():
        raise CourseError(f"no gradebook at {path}: release an assignment first")
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        yield gradebook


def recorded_assignment(gradebook: Gradebook, assignment: str) -> Assignment:
    """The assignment's gradebook entry, or CourseError when it was never released."""
    try:
        return gradebook.find_assignment(assignment)
    except MissingEntry:
        raise CourseError(f"assignment {assignment!r} is not in the gradebook: release it first") from None


def pending_manual_grades(gradebook: Gradebook, assignment: str) -> dict[str, list[str]]:
    """{student: [cells]} of the graded submissions whose answers still wait for a hand grade."""
    pending = {}
    for submission in gradebook.assignment_submissions(assignment):
        cells = sorted(
            grade.name for notebook in submission.notebooks for grade in notebook.grades if grade.needs_manual_grade
        )
        if cells:
            pending[submission.student.id] = cells
    return pending


def check_nothing_pending(api: NbGraderAPI, assignment: str, students: Collection[str] | None = None) -> None:
    """Raise CourseError naming who waits for a hand grade, and on which cells, among `students` (all if None)."""
    with open_gradebook(api) as gradebook:
        recorded_assignment(gradebook, assignment)
        pending = pending_manual_grades(gradebook, assignment)
    pending = {student: cells for student, cells in pending.items() if students is None or student in students}
    if pending:
        who = "; ".join(f"{student} ({', '.join(cells)})" for student, cells in sorted(pending.items()))
        raise CourseError(
            f"manual grading is pending for {len(pending)} student(s): {who}. Grade them in "
            "Formgrader first, or give --allow-pending to send feedback that scores them 0"
        )


def exercise_of(grade_name: str, answer_names: Collection[str]) -> str:
    """The exercise a grade cell belongs to: test_E or test_E_suffix belongs to answer cell E."""
    if grade_name in answer_names:
        return grade_name
    stem = grade_name.removeprefix("test_")
    owners = [name for name in answer_names if stem == name or stem.startswith(name + "_")]
    return max(owners, key=len) if owners else stem


Scores = dict[str, dict[str, tuple[float, float, bool]]]


def cell_scores(gradebook: Gradebook, assignment: str) -> Scores:
    """{student: {exercise: (score, max_score, needs_manual_grade)}} for every graded submission."""
    recorded_assignment(gradebook, assignment)
    table = {}
    for submission in gradebook.assignment_submissions(assignment):
        exercises = {}
        for notebook in submission.notebooks:
            answers = {cell.name for cell in notebook.notebook.solution_cells}
            for grade in notebook.grades:
                name = exercise_of(grade.name, answers)
                score, maximum, manual = exercises.get(name, (0.0, 0.0, False))
                exercises[name] = (
                    score + (grade.score or 0.0),
                    maximum + grade.max_score,
                    manual or grade.needs_manual_grade,
                )
        table[submission.student.id] = exercises
    return table
