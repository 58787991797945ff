"""The course's gradebook: read without ever creating one, copied, a student's total defined once,
and a grading worker's private one built from plain data.

The gradebook is where `c.CourseDirectory.db_url` says: nbgrader's SQLite file by default, or a
database server such as PostgreSQL (any SQLAlchemy URL nbgrader accepts).
"""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
    SubmittedAssignment,
    TaskCell,
)
from nbgrader.apps import NbGraderAPI
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from .common import CourseError

VERSION_TABLE = "alembic_version"  # nbgrader's schema version, which alembic keeps outside its tables


def gradebook_path(api: NbGraderAPI) -> Path | None:
    """The gradebook's file, or None when it is not SQLite."""
    return sqlite_path(api.coursedir.db_url)


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (sqlite:///relative or sqlite:////absolute), or None for another database."""
    prefix = "sqlite:///"
    return Path(url[len(prefix) :]) if url.startswith(prefix) else None


def shown_url(url: str) -> str:
    """A database URL as messages show it: without its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ValueError, SQLAlchemyError):
        return url


def first_line(error: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's background link."""
    text = str(getattr(error, "orig", None) or error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def has_gradebook(url: str) -> bool:
    """Whether the database at `url` holds a gradebook (nbgrader's tables); CourseError when it cannot be reached."""
    path = sqlite_path(url)
    if path is not None:
        return path.is_file()
    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return "assignment" in sqlalchemy.inspect(connection).get_table_names()
    except SQLAlchemyError as error:
        raise CourseError(f"cannot reach the gradebook at {shown_url(url)}: {first_line(error)}") from None
    finally:
        engine.dispose()


def check_gradebook(api: NbGraderAPI) -> None:
    """CourseError unless the gradebook exists (opening it would create it)."""
    url = api.coursedir.db_url
    if not has_gradebook(url):
        raise CourseError(f"no gradebook at {gradebook_path(api) or shown_url(url)}: release an assignment first")


@contextmanager
def open_gradebook(api: NbGraderAPI) -> Iterator[Gradebook]:
    """The gradebook, or CourseError when it does not exist yet (opening it would create it)."""
    check_gradebook(api)
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


# nbgrader's schema has no index on the columns a student's rows are looked up by: without these, each
# lookup reads the rows of the whole class (benchmarks/gradebook_scale.py). Extra indexes change no row.
LOOKUP_INDEXES = {
    "submitted_assignment": "student_id",
    "submitted_notebook": "assignment_id",
    "grade": "notebook_id",
    "comment": "notebook_id",
}


def index_lookups(gradebook: Gradebook) -> None:
    """Add LOOKUP_INDEXES to the gradebook, once (a concurrent run that adds them first is fine)."""
    for table, column in LOOKUP_INDEXES.items():
        try:
            gradebook.db.execute(
                sqlalchemy.text(f"CREATE INDEX IF NOT EXISTS course_{table}_{column} ON {table} ({column})")
            )
            gradebook.db.commit()
        except SQLAlchemyError:  # another run made it at the same moment
            gradebook.db.rollback()


def student_records(gradebook: Gradebook, assignment: str, students: Collection[str]) -> dict[str, Record]:
    """{student: their earlier grading} for those of `students` with a submission of `assignment` in the gradebook.

    That is what autograding a student again reads of it: the submission's time and extension, and
    each grade's scores (manual scores and extra credit count in the late penalty, and a manual score
    makes nbgrader ask for a review).
    """
    # those students' rows alone: the class in the gradebook costs nothing (benchmarks/gradebook_scale.py)
    return {
        submission.student_id: _record(submission) for submission in _submissions_of(gradebook, assignment, students)
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


# ---- A student's total: one definition for grade's summary, status, scores, the report and the export ----


@dataclass(frozen=True)
class Total:
    """A student's score on an assignment: the raw score (every cell's score, hand grades and extra
    credit included), the late penalty nbgrader's autograder recorded, and the final score."""

    raw: float
    penalty: float
    max_score: float

    @property
    def final(self) -> float:
        """The score that counts: the raw score less the late penalty, never below 0 (as nbgrader's CSV export)."""
        return max(0.0, self.raw - self.penalty)

    def text(self) -> str:
        """'15/20', or with a late penalty '13.6/20 (17 less 3.4 late)'."""
        shown = f"{self.final:g}/{self.max_score:g}"
        return shown + (f" ({self.raw:g} less {self.penalty:g} late)" if self.penalty else "")


def submission_total(submission: Any) -> Total:
    """The Total of one of nbgrader's SubmittedAssignment rows."""
    return Total(
        raw=float(submission.score or 0.0),
        penalty=float(submission.late_submission_penalty or 0.0),
        max_score=float(submission.max_score or 0.0),
    )


def student_totals(gradebook: Gradebook, assignment: str, students: Collection[str] | None = None) -> dict[str, Total]:
    """{student: Total} of every graded submission of `assignment`, or of those among `students` (read
    alone: grade's summary of a few students costs the same in a class of thousands)."""
    if students is None:
        submissions = gradebook.assignment_submissions(assignment)
    else:
        submissions = _submissions_of(gradebook, assignment, students)
    return {submission.student_id: submission_total(submission) for submission in submissions}


def _submissions_of(gradebook: Gradebook, assignment: str, students: Collection[str]) -> Any:
    return (
        gradebook.db.query(SubmittedAssignment)
        .join(Assignment)
        .filter(Assignment.name == assignment, SubmittedAssignment.student_id.in_(list(students)))
    )


# ---- Copying a gradebook: to another database (course copy-gradebook), or as a worker's SQLite snapshot ----


def gradebook_tables(engine: sqlalchemy.Engine) -> list[str]:
    with engine.connect() as connection:
        return sqlalchemy.inspect(connection).get_table_names()


def copy_gradebook(source_url: str, target_url: str) -> dict[str, int]:
    """Copy every row of the gradebook at `source_url` into the empty database at `target_url`.

    nbgrader's tables are created there with its own models, and its schema version is copied, so
    that nbgrader and Formgrader take the copy as they took the original. The rows are read in one
    transaction (REPEATABLE READ on a server), a consistent picture even while a grader writes.
    Return {table: rows copied}; CourseError when the target already holds tables or either cannot be reached.
    """
    source, target = sqlalchemy.create_engine(source_url), sqlalchemy.create_engine(target_url)
    counts = {}
    try:
        if not has_gradebook(source_url):
            raise CourseError(f"no gradebook at {shown_url(source_url)} to copy")
        existing = gradebook_tables(target)
        if existing:
            raise CourseError(
                f"the database at {shown_url(target_url)} is not empty (it has the tables "
                f"{', '.join(sorted(existing))}): copy into a new, empty database"
            )
        Base.metadata.create_all(target)
        isolation = {"isolation_level": "REPEATABLE READ"} if source.dialect.name == "postgresql" else {}
        with source.connect().execution_options(**isolation) as reading, target.begin() as writing:
            for table in Base.metadata.sorted_tables:
                rows = [dict(row) for row in reading.execute(table.select()).mappings()]
                if rows:
                    writing.execute(table.insert(), rows)
                counts[table.name] = len(rows)
            version = reading.execute(sqlalchemy.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar_one()
            writing.execute(sqlalchemy.text(f"CREATE TABLE {VERSION_TABLE} (version_num VARCHAR(32) NOT NULL)"))
            writing.execute(sqlalchemy.text(f"INSERT INTO {VERSION_TABLE} (version_num) VALUES (:v)"), {"v": version})
    except SQLAlchemyError as error:
        raise CourseError(f"could not copy the gradebook: {first_line(error)}") from None
    finally:
        source.dispose()
        target.dispose()
    return counts
