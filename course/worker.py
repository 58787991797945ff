"""A grading worker's private course: one assignment, graded for one student at a time.

The coordinator (course/parallel.py) sends a worker plain data: the course's configuration, the
assignment's source files and its definition as release recorded it in the gradebook (notebooks,
grade, solution, task and source cells, due date: course/gradebook.py), and one student's submission
with that student's earlier grading, if any. Nothing of any other student travels.

The worker builds a private course from the first three once (`PrivateCourse`) and keeps it for
every student of that assignment it grades: a folder with the configuration and the source files, and
a private gradebook built from the definition. For each student it empties the folder's student
files, resets the gradebook to the definition alone, writes the submission and runs nbgrader's own
autograder; then it reads the grades and the autograded files back as plain data. The private
gradebook is always the worker's own file, whatever `c.CourseDirectory.db_url` the course sets.

This module never imports course/sandbox/: course/parallel.py hands it the sandbox's settings.
"""

import hashlib
import json
import pickle
import time
from pathlib import Path
from typing import Any

import jsonschema
import nbgrader.api
import nbgrader.nbgraderformat.common
import sqlalchemy
from nbgrader import utils
from nbgrader.api import Gradebook, GradeCell, MissingEntry, SolutionCell
from nbgrader.apps import NbGraderAPI
from nbgrader.converters import Autograde
from nbgrader.preprocessors import SaveAutoGrades
from nbgrader.preprocessors.base import NbGraderPreprocessor
from nbgrader.utils import capture_log, temp_attrs
from sqlalchemy import event
from sqlalchemy.engine import Engine

from .common import last_line, open_api
from .gradebook import Record, build_gradebook, restore_record
from .studentfiles import remove_tree, write_folder
from .timing import CPU_STAGES, current, stage

Course = dict[str, Any]  # the assignment's world as plain data: config, source files, definition
Outcome = dict[str, Any]  # results as plain data, or {"failure": "Name: message"}
PRIVATE_GRADEBOOK = "gradebook.db"


def course_digest(course: Course) -> str:
    """A name for a course's contents: a worker keeps one private course per digest."""
    return hashlib.sha256(pickle.dumps(sorted(course.items()), protocol=4)).hexdigest()


_private_folders: set[str] = set()


@event.listens_for(Engine, "connect")
def _private_sqlite_without_sync(connection: Any, _record: Any) -> None:
    """Private gradebooks are thrown away: SQLite need not wait for the disk at each of nbgrader's commits.

    Only connections to a gradebook in a private course's folder are changed; the course's own
    gradebook, which only the coordinator writes, keeps SQLite's defaults.
    """
    if not _private_folders or type(connection).__module__ != "sqlite3":
        return
    rows = connection.execute("PRAGMA database_list").fetchall()
    if any(row[2] and str(Path(row[2]).parent) in _private_folders for row in rows):
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("PRAGMA journal_mode = MEMORY")


class SchemaCheckedOnce:
    """The jsonschema module as nbgrader's metadata check uses it, each schema checked once, each valid
    value once.

    nbgrader validates every cell's metadata with `jsonschema.validate`, twice per student, and
    that checks the schema itself against its meta-schema first, every time: most of the time of
    the check. This does what `jsonschema.validate` does, with the same validator class, errors and
    exceptions, but keeps each schema's checked validator, and remembers the metadata it found valid
    (as canonical JSON: the released cells' metadata, which most students leave alone), up to
    MAX_REMEMBERED values. A value not seen valid before is validated in full.
    """

    MAX_REMEMBERED = 4096

    def __init__(self) -> None:
        self._validators: dict[int, tuple[Any, Any]] = {}
        self._valid: set[tuple[int, str]] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(jsonschema, name)

    def validate(self, instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
        if cls is not None or args or kwargs:
            return jsonschema.validate(instance, schema, cls, *args, **kwargs)
        known = self._validators.get(id(schema))
        if known is None or known[0] is not schema:
            validator_class = jsonschema.validators.validator_for(schema)
            validator_class.check_schema(schema)
            known = self._validators[id(schema)] = (schema, validator_class(schema))
        try:
            key = (id(schema), json.dumps(instance, sort_keys=True))
        except (TypeError, ValueError):
            key = None
        if key is not None and key in self._valid:
            return
        error = jsonschema.exceptions.best_match(known[1].iter_errors(instance))
        if error is not None:
            raise error
        if key is not None and len(self._valid) < self.MAX_REMEMBERED:
            self._valid.add(key)


_engines: dict[str, Engine] = {}


def _create_engine(db_url: str, **options: Any) -> Engine:
    """nbgrader.api's create_engine in a grading worker: one engine per private gradebook.

    nbgrader opens the gradebook a dozen times per student, each time with a new engine, which
    compiles every query again. A private gradebook keeps its engine, with its compiled queries;
    closing a Gradebook still closes the engine's connections.
    """
    if db_url not in {f"sqlite:///{Path(folder) / PRIVATE_GRADEBOOK}" for folder in _private_folders}:
        return sqlalchemy.create_engine(db_url, **options)
    if db_url not in _engines:
        _engines[db_url] = sqlalchemy.create_engine(db_url, **options)
    return _engines[db_url]


def worker_fast_paths() -> None:
    """In a grading worker: nbgrader's metadata check uses SchemaCheckedOnce, and its gradebooks _create_engine."""
    if not isinstance(nbgrader.nbgraderformat.common.jsonschema, SchemaCheckedOnce):
        nbgrader.nbgraderformat.common.jsonschema = SchemaCheckedOnce()
    nbgrader.api.create_engine = _create_engine


WORKER_STAGE_OF = {
    "VerifyRecords": "verification",
    "SaveAutoGradesAtOnce": "gradebook write (worker)",
    "AssignLatePenalties": "gradebook write (worker)",
}
TIMED_BY_ITSELF = ("RobustExecute", "VerifyRecords")  # their stages are timed inside (course/plugins/)


class Timed:
    """A preprocessor whose calls add their time to the current student's stage."""

    def __init__(self, preprocessor: Any, stage_name: str) -> None:
        self.preprocessor, self.stage_name = preprocessor, stage_name

    def __getattr__(self, name: str) -> Any:
        return getattr(self.preprocessor, name)

    def __call__(self, nb: Any, resources: Any) -> Any:
        with stage(self.stage_name):
            return self.preprocessor(nb, resources)


class SaveAutoGradesAtOnce(SaveAutoGrades):
    """nbgrader's SaveAutoGrades, writing one notebook's grades and comments in one transaction.

    nbgrader looks each grade and comment up with its own query and commits after each cell; this
    reads the submitted notebook's grades and comments once and commits once. The values written are
    SaveAutoGrades's: the same auto score, review flag and "No response." comment.
    """

    def preprocess(self, nb: Any, resources: Any) -> Any:
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.student_id = resources["nbgrader"]["student"]
        self.db_url = resources["nbgrader"]["db_url"]
        with Gradebook(self.db_url) as self.gradebook:
            submitted = self.gradebook.find_submission_notebook(self.notebook_id, self.assignment_id, self.student_id)
            # as find_grade and find_comment: a grade (solution) cell's row first, else a task cell's
            self.grades = {g.name: g for g in submitted.grades if not isinstance(g.cell, GradeCell)}
            self.grades.update({g.name: g for g in submitted.grades if isinstance(g.cell, GradeCell)})
            self.comments = {c.name: c for c in submitted.comments if not isinstance(c.cell, SolutionCell)}
            self.comments.update({c.name: c for c in submitted.comments if isinstance(c.cell, SolutionCell)})
            nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
            self.gradebook.db.commit()
        return nb, resources

    def _add_score(self, cell: Any, resources: Any) -> None:
        grade = self._row(self.grades, "grade", cell)
        grade.auto_score, _ = utils.determine_grade(cell, self.log)
        grade.needs_manual_grade = grade.manual_score is not None or grade.auto_score is None

    def _add_comment(self, cell: Any, resources: Any) -> None:
        comment = self._row(self.comments, "comment", cell)
        unchanged = cell.metadata.nbgrader.get("checksum", None) == utils.compute_checksum(cell)
        comment.auto_comment = "No response." if unchanged and not utils.is_task(cell) else None

    def _row(self, rows: dict[str, Any], kind: str, cell: Any) -> Any:
        name = cell.metadata["nbgrader"]["grade_id"]
        if name not in rows:
            raise MissingEntry(f"No such {kind}: {self.assignment_id}/{self.notebook_id}/{name} for {self.student_id}")
        return rows[name]


class PrivateAutograde(Autograde):
    """nbgrader's Autograde, with each preprocessor's time added to its grading stage, and SaveAutoGradesAtOnce."""

    def _init_preprocessors(self) -> None:
        super()._init_preprocessors()
        self.exporter._preprocessors = [
            SaveAutoGradesAtOnce(parent=self.exporter) if type(preprocessor) is SaveAutoGrades else preprocessor
            for preprocessor in self.exporter._preprocessors
        ]
        self.exporter._preprocessors = [
            preprocessor
            if type(preprocessor).__name__ in TIMED_BY_ITSELF
            else Timed(preprocessor, WORKER_STAGE_OF.get(type(preprocessor).__name__, "nbgrader setup"))
            for preprocessor in self.exporter._preprocessors
        ]


class PrivateCourse:
    """One assignment's private course in a grading worker (see the module's docstring)."""

    def __init__(self, folder: Path, course: Course) -> None:
        worker_fast_paths()
        self.folder, self.assignment = Path(folder), course["assignment"]
        self.folder.mkdir(parents=True, exist_ok=True)
        _private_folders.add(str(self.folder))
        (self.folder / "nbgrader_config.py").write_bytes(course["config"])
        write_folder(course["source"], self.folder)
        self.gradebook = self.folder / PRIVATE_GRADEBOOK
        self.db_url = f"sqlite:///{self.gradebook}"
        build_gradebook(self.db_url, course["definition"])
        self.template = self.gradebook.read_bytes()
        self.course_id = course["definition"]["course_id"]
        self._apis: dict[str, NbGraderAPI] = {}

    def api(self, overrides: dict[str, Any]) -> NbGraderAPI:
        """nbgrader's API on the private course, with `overrides` (the sandbox's kernel settings) and its gradebook."""
        key = json.dumps(overrides, sort_keys=True)
        if key not in self._apis:
            self._apis = {key: open_api(self.folder, **overrides, CourseDirectory={"db_url": self.db_url})}
        return self._apis[key]

    def unsandboxed_overrides(self) -> dict[str, Any]:
        """Config for kernels run without the sandbox: IPC sockets in this worker's own folder (mkdtemp: 0700),
        not TCP ports, which every user of the machine can reach (reading a kernel's outputs needs no key)."""
        return {"KernelManager": {"transport": "ipc", "ip": str(self.folder / "kernel")}}

    def folder_of(self, api: NbGraderAPI, kind: str, student: str) -> Path:
        return Path(api.coursedir.format_path(getattr(api.coursedir, kind), student, self.assignment))

    def reset(self, api: NbGraderAPI) -> None:
        """Remove the last student's files and grades: the gradebook holds the definition alone again."""
        for kind in ("submitted_directory", "autograded_directory"):
            top = self.folder / getattr(api.coursedir, kind)
            if top.is_dir():
                remove_tree(top)
        self.gradebook.write_bytes(self.template)

    def grade(
        self, student: str, submission: dict[str, bytes], record: Record | None, overrides: dict[str, Any]
    ) -> Outcome:
        """Autograde one student's submission with nbgrader's autograder; return the results as plain data."""
        api = self.api(overrides)
        with stage("unpack"):
            self.reset(api)
            write_folder(submission, self.folder_of(api, "submitted_directory", student))
            if record is not None:
                with Gradebook(self.db_url, self.course_id) as gradebook:
                    restore_record(gradebook, self.assignment, student, record)
        result = self.autograde(api, student)
        if not result["success"]:
            raise RuntimeError(last_line(result))
        with stage("results"):
            return self.read_results(api, student)

    def autograde(self, api: NbGraderAPI, student: str) -> dict[str, Any]:
        """nbgrader's autograder on one student (as NbGraderAPI.autograde runs it), its stages timed."""
        stages, started = current(), time.perf_counter()
        before = sum(seconds for name, seconds in stages.seconds.items() if name not in CPU_STAGES)
        with temp_attrs(api.coursedir, assignment_id=self.assignment, student_id=student):
            app = PrivateAutograde(coursedir=api.coursedir, parent=api)
            app.force, app.create_student = True, True
            result = capture_log(app)
        # the stages timed within (the kernel's CPU is no wall-clock time): the rest is nbgrader's own work
        inside = sum(seconds for name, seconds in stages.seconds.items() if name not in CPU_STAGES) - before
        stages.add("nbgrader setup", time.perf_counter() - started - inside)
        return result

    def read_results(self, api: NbGraderAPI, student: str) -> Outcome:
        """Autograded files and per-notebook, per-cell results of `student`."""
        graded = self.folder_of(api, "autograded_directory", student)
        with Gradebook(self.db_url, self.course_id) as gradebook:
            submission = gradebook.find_submission(self.assignment, student)
            notebooks = {
                notebook.name: {
                    "grades": {g.name: [g.auto_score, g.needs_manual_grade] for g in notebook.grades},
                    "comments": {c.name: c.auto_comment for c in notebook.comments},
                    "late_submission_penalty": notebook.late_submission_penalty,
                }
                for notebook in submission.notebooks
            }
            timestamp = submission.timestamp.isoformat() if submission.timestamp else None
        files = {
            str(path.relative_to(graded)): path.read_bytes()
            for path in sorted(graded.rglob("*"))
            if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts
        }
        return {"files": files, "notebooks": notebooks, "timestamp": timestamp}

    def close(self) -> None:
        _private_folders.discard(str(self.folder))
        engine = _engines.pop(self.db_url, None)
        if engine is not None:
            engine.dispose()
        try:
            remove_tree(self.folder)
        except OSError:
            pass
