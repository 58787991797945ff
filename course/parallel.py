"""Autograde several students at once; only this process writes the gradebook.

Each student is graded by nbgrader's own autograder in a worker: a local
process, or a Dask distributed worker on this or another machine. The worker
gets plain data (the config and tooling, the assignment's source, the
student's submission and a snapshot of the gradebook), grades it in a
throw-away folder and hands back plain data: the autograded files and each
cell's results. The coordinator records them in the real gradebook through
nbgrader's API. A worker that fails or is killed costs that one student, who
is reported and can be regraded alone.

Workers keep one warm sandbox (course/sandbox/) for all the students they grade; this module
alone uses that package.
"""

import atexit
import os
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.util import Finalize
from pathlib import Path
from typing import Any

from nbgrader.api import Gradebook
from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from traitlets import Integer
from traitlets.config import Configurable

from .common import CourseError, last_line, open_api
from .gradebook import gradebook_snapshot
from .sandbox.bwrap import SandboxError, check_available
from .sandbox.limits import SandboxLimits
from .sandbox.warm import Sandbox
from .studentfiles import read_folder, remove_tree

_sandbox = None  # this worker's warm sandbox
Payload = dict[str, Any]  # one student's grading, as plain data sent to a worker
Outcome = dict[str, Any]  # what a worker sends back: results, or {"failure": "Name: message"}


class ParallelGrading(Configurable):
    """How `course grade` hands students to its workers."""

    cluster_window = Integer(
        64, help="Students in flight on a Dask cluster at once: only their submissions are in the coordinator's memory"
    ).tag(config=True)


_one_at_a_time = threading.Lock()  # a sandbox runs one kernel; Dask may run tasks in several threads


def folder_bytes(folder: Path | str, under: Path | str) -> dict[str, bytes]:
    """{path under `under`: bytes} of every file in `folder`, caches left out."""
    return {
        str(Path(under) / path.relative_to(folder)): path.read_bytes()
        for path in sorted(Path(folder).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts
    }


def course_folder(coursedir: CourseDirectory, kind: str, student: str, assignment: str) -> Path:
    """The folder of `kind` (a CourseDirectory trait: "submitted_directory", ...) for one student, as configured."""
    return Path(coursedir.format_path(getattr(coursedir, kind), student, assignment))


def pack(coursedir: CourseDirectory, assignment: str, student: str, gradebook: bytes, limits: SandboxLimits) -> Payload:
    """Everything a worker needs to grade one student, as plain data, by paths relative to the course root.

    The submission is read without following links (course/studentfiles.py):
    a link, a FIFO or a hard link raises InvalidSubmission, which fails that student only.
    """
    root = Path(coursedir.root)
    source = course_folder(coursedir, "source_directory", ".", assignment)
    submitted = course_folder(coursedir, "submitted_directory", student, assignment)
    files = {
        "nbgrader_config.py": (root / "nbgrader_config.py").read_bytes(),
        **folder_bytes(root / "course", "course"),
        **folder_bytes(source, source.relative_to(root)),
        **{
            str(submitted.relative_to(root) / name): data
            for name, data in read_folder(submitted, limits.folder_bytes).items()
        },
    }
    return {
        "assignment": assignment,
        "student": student,
        "files": files,
        "gradebook": gradebook,
        "sandbox_limits": limits.as_dict(),
    }


PRIVATE_GRADEBOOK = "gradebook.db"  # a worker's own, in its folder, whatever db_url the course sets


def unpack(payload: Payload, folder: Path) -> None:
    """Write a payload's files and gradebook snapshot into a worker's folder."""
    for name, data in payload["files"].items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    (folder / PRIVATE_GRADEBOOK).write_bytes(payload["gradebook"])


def read_results(api: NbGraderAPI, assignment: str, student: str) -> Outcome:
    """The grading in the worker's course as plain data: autograded files and per-notebook, per-cell results."""
    graded = course_folder(api.coursedir, "autograded_directory", student, assignment)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        notebooks = {
            notebook.name: {
                "grades": {g.name: [g.auto_score, g.needs_manual_grade] for g in notebook.grades},
                "comments": {c.name: c.auto_comment for c in notebook.comments},
                "late_submission_penalty": notebook.late_submission_penalty,
            }
            for notebook in submission.notebooks
        }
        timestamp = submission.timestamp.isoformat() if submission.timestamp else None
    return {"files": folder_bytes(graded, "."), "notebooks": notebooks, "timestamp": timestamp}


def warm_sandbox(limits: dict[str, int] | None = None) -> Sandbox:
    """This worker's sandbox, started on first use, and again if its server died or the limits changed."""
    global _sandbox
    limits = SandboxLimits(**(limits or {}))
    if _sandbox is not None and (not _sandbox.alive() or _sandbox.limits.as_dict() != limits.as_dict()):
        _sandbox.close()
        _sandbox = None
    if _sandbox is None:
        _sandbox = Sandbox(limits)
        atexit.register(_sandbox.close)
        Finalize(_sandbox, _sandbox.close, exitpriority=10)  # pool workers leave by os._exit, past atexit
        os.environ.update(_sandbox.jupyter_environment())
    return _sandbox


DIRTY = (
    "the sandbox could not be emptied after this notebook (see the server log); a fresh sandbox grades the next student"
)


def grade_payload(payload: Payload, sandboxed: bool = True) -> Outcome:
    """Worker: grade one packed student with nbgrader's autograder; return plain data.

    Every failure but a SandboxError comes back as {"failure": "Name: message"},
    never as an exception, whose traceback might not pickle (Dask would then wait forever).
    """
    with _one_at_a_time:
        try:
            sandbox = warm_sandbox(payload.get("sandbox_limits")) if sandboxed else None
            result = grade_in_folder(payload, sandbox)
        except SandboxError:
            raise
        except Exception as error:
            return {"failure": f"{type(error).__name__}: {str(error)[:2000]}"}
        if sandbox and not sandbox.alive():  # the server stops when it cannot wipe: the next student gets a new one
            result["note"] = DIRTY
        return result


def grade_in_folder(payload: Payload, sandbox: Sandbox | None) -> Outcome:
    """Grade one packed student in a folder of its own, removed afterwards whatever happens."""
    assignment, student = payload["assignment"], payload["student"]
    folder = Path(tempfile.mkdtemp(prefix=f"grade-{student}-"))
    try:
        unpack(payload, folder)
        private = {"CourseDirectory": {"db_url": f"sqlite:///{folder / PRIVATE_GRADEBOOK}"}}
        api = open_api(folder, **private, **(sandbox.nbgrader_overrides() if sandbox else {}))
        try:
            result = api.autograde(assignment, student, force=True, create=True)
        finally:
            if sandbox:
                sandbox.clear_runtime()
        if not result["success"]:
            raise RuntimeError(last_line(result))
        return read_results(api, assignment, student)
    finally:
        remove_quietly(folder)


def remove_quietly(folder: Path | str) -> None:
    """Remove a grader's folder; a failure leaves it, and costs no student."""
    try:
        remove_tree(folder)
    except OSError:
        pass


def record_results(api: NbGraderAPI, assignment: str, student: str, results: Outcome) -> None:
    """Coordinator: put a worker's autograded files in place and its results in the gradebook."""
    graded = course_folder(api.coursedir, "autograded_directory", student, assignment)
    for path in sorted(graded.rglob("*"), reverse=True) if graded.is_dir() else ():
        path.rmdir() if path.is_dir() else path.unlink()
    for name, data in results["files"].items():
        (graded / name).parent.mkdir(parents=True, exist_ok=True)
        (graded / name).write_bytes(data)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        gradebook.update_or_create_student(student)
        timestamp = {"timestamp": results["timestamp"]} if results["timestamp"] else {}
        gradebook.update_or_create_submission(assignment, student, **timestamp)
        for notebook_name, notebook in results["notebooks"].items():
            submitted = gradebook.find_submission_notebook(notebook_name, assignment, student)
            for grade in submitted.grades:
                grade.auto_score, grade.needs_manual_grade = notebook["grades"][grade.name]
            for comment in submitted.comments:
                comment.auto_comment = notebook["comments"][comment.name]
            submitted.late_submission_penalty = notebook["late_submission_penalty"]
        gradebook.db.commit()


class NotSent(Exception):
    """The pool broke before this student was handed to it."""


def outcomes(
    pool: Executor, students: Iterable[str], payload: Callable[[str], Payload], sandboxed: bool, window: int
) -> Iterator[tuple[str, Outcome | Exception]]:
    """(student, plain-data results or the exception) for each student, as they finish.

    At most `window` students are in flight, so only that many payloads (`payload(student)`) are in memory.
    """
    waiting, pending = list(students), {}
    while waiting or pending:
        while waiting and len(pending) < window:
            student = waiting.pop(0)
            try:
                pending[pool.submit(grade_payload, payload(student), sandboxed)] = student
            except BrokenProcessPool:
                yield student, NotSent()
            except Exception as error:  # the submission could not be packed
                yield student, error
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for future in done:
            student = pending.pop(future)
            try:
                yield student, future.result()
            except Exception as error:
                yield student, error


def on_cluster(
    scheduler: str, students: Iterable[str], payload: Callable[[str], Payload], sandboxed: bool, window: int
) -> Iterator[tuple[str, Outcome | Exception]]:
    """Grade on the workers of a Dask scheduler; Dask itself reruns the work of a worker that dies."""
    from distributed import Client

    with Client(scheduler, timeout=30) as client:
        yield from outcomes(client.get_executor(pure=False), students, payload, sandboxed, window)


def on_local_workers(
    jobs: int, students: Iterable[str], payload: Callable[[str], Payload], sandboxed: bool
) -> Iterator[tuple[str, Outcome | Exception]]:
    """Grade with `jobs` worker processes.

    A worker that is killed breaks the whole pool. The students who were in
    flight are graded again, one at a time, each in a worker of its own, so that
    a student whose grading kills its worker again costs only that student; the
    students not yet handed out go on to a fresh pool.
    """
    scratch = tempfile.mkdtemp(prefix="course-grade-")
    try:
        Path(scratch).chmod(0o711)  # the sandbox's user binds folders from in here

        def pool(workers):  # workers keep their temporary files here: gone even if a worker is killed
            return ProcessPoolExecutor(max_workers=workers, initializer=use_temporary_folder, initargs=(scratch,))

        queue, in_flight = list(students), []
        while queue:
            unsent = []
            with pool(jobs) as workers:
                for student, outcome in outcomes(workers, queue, payload, sandboxed, 2 * jobs):
                    if isinstance(outcome, NotSent):
                        unsent.append(student)
                    elif isinstance(outcome, BrokenProcessPool):
                        in_flight.append(student)
                    else:
                        yield student, outcome
            if len(unsent) == len(queue):  # a pool that breaks before taking anyone: no more pools
                in_flight += unsent
                unsent = []
            queue = unsent
        for student in in_flight:
            with pool(1) as worker:
                for _, outcome in outcomes(worker, [student], payload, sandboxed, 1):
                    yield (
                        student,
                        (
                            RuntimeError("its grading worker was killed, twice")
                            if isinstance(outcome, BrokenProcessPool)
                            else outcome
                        ),
                    )
    finally:
        remove_quietly(scratch)


def use_temporary_folder(folder: str) -> None:
    """Pool initializer: the worker's temporary files go under `folder`."""
    tempfile.tempdir = folder


def check_sandbox() -> None:
    """Raise CourseError, saying why and how to fix it, unless student code can be sandboxed here."""
    try:
        check_available()
    except SandboxError as error:
        raise CourseError(str(error)) from None


def grade_parallel(
    api: NbGraderAPI,
    assignment: str,
    students: Iterable[str],
    jobs: int,
    on_done: Callable[[str, dict], None] | None = None,
    sandboxed: bool = True,
    scheduler: str | None = None,
) -> dict[str, dict]:
    """Grade `students` with `jobs` local workers or on a Dask cluster; return {student: result dict}.

    A SandboxError, the machine's problem rather than a student's, stops the grading as a CourseError.
    """
    snapshot = gradebook_snapshot(api)  # SQLite bytes, also of a gradebook on a server (course/gradebook.py)
    limits = SandboxLimits(config=api.config)

    def payload(student):
        return pack(api.coursedir, assignment, student, snapshot, limits)

    window = ParallelGrading(config=api.config).cluster_window
    graded = (
        on_cluster(scheduler, students, payload, sandboxed, window)
        if scheduler
        else on_local_workers(jobs, students, payload, sandboxed)
    )
    results = {}
    for student, outcome in graded:
        if isinstance(outcome, SandboxError):  # the machine's problem, not the student's: stop
            raise CourseError(str(outcome)) from None
        try:
            if isinstance(outcome, Exception):
                raise outcome
            if "failure" in outcome:  # already "Name: message", from the worker
                results[student] = {"success": False, "error": outcome["failure"]}
            else:
                record_results(api, assignment, student, outcome)
                results[student] = {"success": True, **({"note": outcome["note"]} if "note" in outcome else {})}
        except Exception as error:  # a failed or killed worker costs this student only
            results[student] = {"success": False, "error": f"{type(error).__name__}: {error}"}
        if on_done:
            on_done(student, results[student])
    return results
