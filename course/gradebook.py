"""Read the course's gradebook without ever creating one; build a grading worker's private one from plain data."""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy
from nbgrader.api import (
    Assignment,
    Base,
    Gradebook,
    GradeCell,
    MissingEntry,
    Notebook,
    SolutionCell,
    SourceCell,
    TaskCell,
)
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


# ---- What a grading worker's private gradebook is built from (course/worker.py) ----

CELL_KINDS = {kind.__name__: kind for kind in (GradeCell, SolutionCell, TaskCell, SourceCell)}
Definition = dict[str, Any]  # an assignment as release recorded it, as plain data: no student in it
Record = dict[str, Any]  # one student's earlier grading of one assignment, as plain data


def _columns(row: Any) -> dict[str, Any]:
    """Every column of an ORM row (of each table of its class, for nbgrader's cell subclasses), by attribute."""
    mapper = sqlalchemy.inspect(type(row))
    return {
        mapper.get_property_by_column(column).key: getattr(row, mapper.get_property_by_column(column).key)
        for table in mapper.tables
        for column in table.columns
    }


def assignment_definition(gradebook: Gradebook, assignment: str) -> Definition:
    """The assignment as `generate_assignment` recorded it: its row (due date included), its notebooks
    and their grade, solution, task and source cells (hidden tests included), every column as stored.

    This is what nbgrader's autograder reads from the gradebook besides the student's own rows; it
    holds no student's data.
    """
    recorded = recorded_assignment(gradebook, assignment)
    cells = []
    for notebook in recorded.notebooks:
        for cell in notebook.grade_cells + notebook.solution_cells + notebook.task_cells:
            cells.append((type(cell).__name__, _columns(cell)))
        cells += [("SourceCell", _columns(cell)) for cell in notebook.source_cells]
    return {
        "course_id": recorded.course_id,
        "alembic_version": gradebook.db.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar(),
        "assignment": _columns(recorded),
        "notebooks": [_columns(notebook) for notebook in recorded.notebooks],
        "cells": cells,
    }


def _row(kind: type, columns: dict[str, Any]) -> Any:
    """An ORM row of `kind` with these columns (nbgrader's constructors take only some of them)."""
    row = kind.__mapper__.class_manager.new_instance()
    for name, value in columns.items():
        setattr(row, name, value)
    return row


def build_gradebook(db_url: str, definition: Definition) -> None:
    """Create the gradebook at `db_url` holding the assignment of `definition` and nothing else.

    The tables are made here, with the real gradebook's schema version: nbgrader's Gradebook would
    ask a new `alembic` process for it, seconds on a busy machine.
    """
    engine = sqlalchemy.create_engine(db_url)
    try:
        Base.metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(sqlalchemy.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            connection.execute(
                sqlalchemy.text("INSERT INTO alembic_version (version_num) VALUES (:version)"),
                {"version": definition["alembic_version"]},
            )
    finally:
        engine.dispose()
    with Gradebook(db_url, definition["course_id"]) as gradebook:
        gradebook.db.add(_row(Assignment, definition["assignment"]))
        gradebook.db.add_all(_row(Notebook, columns) for columns in definition["notebooks"])
        gradebook.db.add_all(_row(CELL_KINDS[kind], columns) for kind, columns in definition["cells"])
        gradebook.db.commit()


def student_records(gradebook: Gradebook, assignment: str, students: Collection[str]) -> dict[str, Record]:
    """{student: their earlier grading} for those of `students` with a submission of `assignment` in the gradebook.

    That is what autograding a student again reads of it: the submission's time and extension, and
    each grade's scores (manual scores and extra credit count in the late penalty, and a manual score
    makes nbgrader ask for a review).
    """
    wanted = set(students)
    return {
        submission.student.id: _record(submission)
        for submission in gradebook.assignment_submissions(assignment)
        if submission.student.id in wanted
    }


def _record(submission: Any) -> Record:
    return {
        "timestamp": submission.timestamp,
        "extension": submission.extension.total_seconds() if submission.extension is not None else None,
        "grades": {
            notebook.name: {
                grade.name: [grade.auto_score, grade.manual_score, grade.extra_credit, grade.needs_manual_grade]
                for grade in notebook.grades
            }
            for notebook in submission.notebooks
        },
    }


def restore_record(gradebook: Gradebook, assignment: str, student: str, record: Record) -> None:
    """Give `student` in a private gradebook the earlier grading `record` (student_record) of the real one."""
    gradebook.update_or_create_student(student)
    extension = timedelta(seconds=record["extension"]) if record["extension"] is not None else None
    submission = gradebook.update_or_create_submission(assignment, student, extension=extension)
    submission.timestamp = record["timestamp"]  # as stored: update_or_create_submission would parse it
    for notebook in submission.notebooks:
        for grade in notebook.grades:
            values = record["grades"].get(notebook.name, {}).get(grade.name)
            if values is not None:
                grade.auto_score, grade.manual_score, grade.extra_credit, grade.needs_manual_grade = values
    gradebook.db.commit()
