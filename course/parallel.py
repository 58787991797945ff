"""Autograde several students at once; only this process writes the gradebook.

Each student is graded by nbgrader's own autograder in a worker: a local
process, or a Dask distributed worker on this or another machine. The worker
gets plain data: the assignment's world (the course's configuration, the
assignment's source files and its definition as release recorded it in the
gradebook) and one student's submission with that student's earlier grading, if
any; no other student's data. It grades the student in a private course of its
own (course/worker.py), built once per assignment, and hands back plain data: the
autograded files and each cell's results. The coordinator records them in the real
gradebook through nbgrader's API. A worker that fails or is killed costs that one
student, who is reported and can be regraded alone.

Workers keep one warm sandbox (course/sandbox/) for all the students they grade; this module
alone uses that package.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import multiprocessing
import os
import queue
import resource
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.util import Finalize
from pathlib import Path
from typing import TYPE_CHECKING, Any

from traitlets import Integer
from traitlets.config import Configurable

from .errors import CourseError
from .sandbox.bwrap import SandboxError, check_available
from .sandbox.limits import SandboxLimits
from .sandbox.warm import Sandbox
from .sandbox.zygote import PRELOAD
from .studentfiles import read_folder, remove_tree
from .timing import Stages, recording, stage

if TYPE_CHECKING:  # nbgrader is imported where it is used: `course grade` starts a sandbox before it imports it
    from nbgrader.api import Gradebook
    from nbgrader.apps import NbGraderAPI
    from nbgrader.coursedir import CourseDirectory

    from .worker import PrivateCourse

_sandbox = None  # this worker's warm sandbox
_startup = Stages()  # what the worker did before its first student (start_worker): reported with that student
_private: dict[str, PrivateCourse] = {}  # this worker's private courses, by digest of their Course
PRIVATE_COURSES = 4  # kept at once by a worker; the oldest goes first
Course = dict[str, Any]  # an assignment's world, as plain data (course/worker.py)
Payload = dict[str, Any]  # one student's grading, as plain data sent to a worker
Outcome = dict[str, Any]  # what a worker sends back: results, or {"failure": "Name: message"}


class ParallelGrading(Configurable):
    """How `course grade` hands students to its workers."""

    cluster_window = Integer(
        64, help="Students in flight on a Dask cluster at once: only their submissions are in the coordinator's memory"
    ).tag(config=True)


_one_at_a_time = threading.Lock()  # a sandbox runs one kernel; Dask may run tasks in several threads


def course_folder(coursedir: CourseDirectory, kind: str, student: str, assignment: str) -> Path:
    """The folder of `kind` (a CourseDirectory trait: "submitted_directory", ...) for one student, as configured."""
    return Path(coursedir.format_path(getattr(coursedir, kind), student, assignment))


def assignment_world(api: NbGraderAPI, assignment: str) -> Course:
    """What every worker needs to grade `assignment`, as plain data, and nothing about any student.

    The configuration file, the source folder's files that nbgrader copies next to each submission
    (every file but the notebooks, by paths from the course root), and the assignment's definition
    from the gradebook: its notebooks and cells as release recorded them, and its due date.
    """
    from nbgrader.utils import find_all_files

    from .gradebook import assignment_definition, open_gradebook

    root = Path(api.coursedir.root)
    source = course_folder(api.coursedir, "source_directory", ".", assignment)
    with open_gradebook(api) as gradebook:
        definition = assignment_definition(gradebook, assignment)
    return {
        "assignment": assignment,
        "config": (root / "nbgrader_config.py").read_bytes(),
        "source": {
            str(Path(path).relative_to(root)): Path(path).read_bytes()
            for path in sorted(find_all_files(str(source), api.coursedir.ignore + ["*.ipynb"]))
        },
        "definition": definition,
    }


def pack(
    coursedir: CourseDirectory,
    course: Course,
    digest: str,
    student: str,
    record: dict[str, Any] | None,
    limits: SandboxLimits,
) -> Payload:
    """Everything a worker needs to grade one student, as plain data: the assignment's world (`course`,
    named by `digest`), that student's submission and earlier grading (`record`), the sandbox's limits.

    The submission is read without following links (course/studentfiles.py):
    a link, a FIFO or a hard link raises InvalidSubmission, which fails that student only.
    """
    submitted = course_folder(coursedir, "submitted_directory", student, course["assignment"])
    return {
        "assignment": course["assignment"],
        "student": student,
        "course": course,
        "digest": digest,
        "submission": read_folder(submitted, limits.folder_bytes),
        "record": record,
        "sandbox_limits": limits.as_dict(),
    }


def private_course(payload: Payload) -> PrivateCourse:
    """This worker's private course for the payload's assignment world, built on first use."""
    from .worker import PrivateCourse

    digest = payload["digest"]
    if digest not in _private:
        while len(_private) >= PRIVATE_COURSES:
            _private.pop(next(iter(_private))).close()
        with stage("private course"):
            private = PrivateCourse(Path(tempfile.mkdtemp(prefix="course-private-")), payload["course"])
        atexit.register(private.close)
        Finalize(private, private.close, exitpriority=10)
        _private[digest] = private
    return _private[digest]


def warm_sandbox(limits: dict[str, int] | None = None, taken: Sandbox | None = None) -> Sandbox:
    """This worker's sandbox, started on first use (or `taken`, one its coordinator started), and again
    if its server died or the limits changed."""
    global _sandbox
    limits = SandboxLimits(**(limits or {}))
    if _sandbox is None and taken is not None:
        try:
            taken.wait_ready()
            _own(taken)
        except SandboxError:  # a fresh one is started below, and says why if it fails too
            pass
    if _sandbox is not None and (not _sandbox.alive() or _sandbox.limits.as_dict() != limits.as_dict()):
        _sandbox.close()
        _sandbox = None
    if _sandbox is None:
        _own(Sandbox(limits))
    return _sandbox


def _own(sandbox: Sandbox) -> None:
    """Make `sandbox` this worker's: closed when the worker ends, its kernelspec found by nbgrader."""
    global _sandbox
    _sandbox = sandbox
    atexit.register(sandbox.close)
    Finalize(sandbox, sandbox.close, exitpriority=10)  # pool workers leave by os._exit, past atexit
    os.environ.update(sandbox.jupyter_environment())


# ---- A sandbox started at once by `course grade`, before the coordinator imports nbgrader ----
# The coordinator's imports take a second, on one core; the first sandbox's server imports numpy,
# scikit-learn and IPython on the other meanwhile. The first local worker forked takes it; the
# others close their copies of its sockets and start their own.

_early: Sandbox | None = None
_early_unclaimed: Any = None  # a multiprocessing.Value, 1 until a worker takes _early


def start_early_sandbox() -> None:
    """Coordinator: start a sandbox now (with the default limits: a worker whose course sets others
    starts its own), without waiting for its server. Anything that fails here is left to the workers."""
    global _early, _early_unclaimed
    if _early is None:
        with contextlib.suppress(Exception):
            _early_unclaimed = multiprocessing.get_context("fork").Value("i", 1)
            _early = Sandbox(wait=False)


def take_early_sandbox() -> Sandbox | None:
    """Pool initializer: the coordinator's early sandbox, for the first worker that asks; None for the others."""
    global _early
    early, _early = _early, None
    if early is None or _early_unclaimed is None:
        return None
    with _early_unclaimed.get_lock():
        mine, _early_unclaimed.value = _early_unclaimed.value > 0, 0
    if not mine:
        early.release()
        return None
    return early


def discard_early_sandbox() -> None:
    """Coordinator: stop the early sandbox (its worker is done with it, or gone: so is any kernel it left)."""
    global _early
    if _early is not None:
        _early.close()
    _early = None


DIRTY = (
    "the sandbox could not be emptied after this notebook (see the server log); a fresh sandbox grades the next student"
)


def grade_payload(payload: Payload, sandboxed: bool = True) -> Outcome:
    """Worker: grade one packed student with nbgrader's autograder; return plain data.

    Every failure but a SandboxError comes back as {"failure": "Name: message"},
    never as an exception, whose traceback might not pickle (Dask would then wait forever).
    The outcome carries the seconds of each stage of this student's grading ("timings").
    """
    with _one_at_a_time:
        stages, started, cpu = Stages(), time.perf_counter(), time.process_time()
        if _startup.seconds:  # the worker's start, before its first student: counted in, CPU included
            for name, seconds in _startup.seconds.items():
                stages.add(name, seconds)
                started -= seconds
            _startup.seconds.clear()
            cpu = 0.0
        try:
            with recording(stages):
                with stage("sandbox start"):  # at once, unless the sandbox stopped or start_worker could not start it
                    sandbox = warm_sandbox(payload.get("sandbox_limits")) if sandboxed else None
                result = grade_in_private_course(payload, sandbox)
            if sandbox and not sandbox.alive():  # the server stops when it cannot wipe: the next student gets a new one
                result["note"] = DIRTY
        except SandboxError:
            raise
        except Exception as error:
            result = {"failure": f"{type(error).__name__}: {str(error)[:2000]}"}
        stages.add("worker total", time.perf_counter() - started)
        stages.add("worker cpu", time.process_time() - cpu)
        return {**result, "timings": stages.seconds}


def grade_in_private_course(payload: Payload, sandbox: Sandbox | None) -> Outcome:
    """Grade one packed student in this worker's private course of its assignment."""
    course = private_course(payload)
    try:
        return course.grade(
            payload["student"],
            payload["submission"],
            payload.get("record"),
            sandbox.nbgrader_overrides() if sandbox else course.unsandboxed_overrides(),
        )
    finally:
        if sandbox:
            sandbox.clear_runtime()


def remove_quietly(folder: Path | str) -> None:
    """Remove a grader's folder; a failure leaves it, and costs no student."""
    try:
        remove_tree(folder)
    except OSError:
        pass


def record_results(api: NbGraderAPI, gradebook: Gradebook, assignment: str, student: str, results: Outcome) -> None:
    """Coordinator: put a worker's autograded files in place and its results in the (open) gradebook.

    nbgrader's methods commit as they go (GradebookWriter batches them: one_transaction).
    """
    graded = course_folder(api.coursedir, "autograded_directory", student, assignment)
    if graded.is_dir():
        remove_tree(graded)
    for name, data in results["files"].items():
        (graded / name).parent.mkdir(parents=True, exist_ok=True)
        (graded / name).write_bytes(data)
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
    jobs: int,
    students: Iterable[str],
    payload: Callable[[str], Payload],
    sandboxed: bool,
    sandbox_limits: dict[str, int] | None = None,
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

        import_recheck_libraries()  # once, while the early sandbox's server imports its own: workers inherit them

        def fresh(workers):  # workers keep their temporary files here: gone even if a worker is killed
            executor = new_pool(workers, scratch, sandbox_limits if sandboxed else None)
            if _early is not None:  # forked: its worker has it, and the coordinator's copies go
                _early.release()
            return executor

        def pool(workers):  # `course serve`'s warm workers, when this run is theirs and they are whole
            resident = _resident.pool() if _resident is not None and sandboxed else None
            return contextlib.nullcontext(resident) if resident is not None else fresh(workers)

        queue, in_flight = list(students), []
        while queue:
            unsent = []
            with pool(min(jobs, len(queue))) as workers:  # a sandbox costs seconds of CPU: none spare
                for student, outcome in outcomes(workers, queue, payload, sandboxed, 2 * jobs):
                    if isinstance(outcome, NotSent):
                        unsent.append(student)
                    elif isinstance(outcome, BrokenProcessPool):
                        in_flight.append(student)
                        discard_early_sandbox()  # its worker may be the one killed, its kernel still running
                    else:
                        yield student, outcome
            if len(unsent) == len(queue):  # a pool that breaks before taking anyone: no more pools
                in_flight += unsent
                unsent = []
            queue = unsent
        for student in in_flight:
            with fresh(1) as worker:
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
        discard_early_sandbox()
        remove_quietly(scratch)


def new_pool(workers: int, scratch: str, sandbox_limits: dict[str, int] | None, ready: Any = None) -> Executor:
    """`workers` worker processes, forked now: their sandboxes start while the first payloads are made."""
    executor = ProcessPoolExecutor(
        max_workers=workers, initializer=start_worker, initargs=(scratch, sandbox_limits, ready)
    )
    executor.submit(os.getpid)
    return executor


class ResidentWorkers:
    """`course serve`'s workers (course/serve.py): forked once and kept, with their warm sandboxes and
    private courses, for every `course grade` run it answers; forked again when a killed worker breaks
    the pool. While they exist, on_local_workers grades sandboxed runs with them."""

    def __init__(self, jobs: int, config: Any) -> None:
        """`jobs` workers, their sandboxes with the limits of the course's `config` (c.SandboxLimits)."""
        self.jobs, self.sandbox_limits = jobs, SandboxLimits(config=config).as_dict()
        self.scratch = tempfile.mkdtemp(prefix="course-serve-workers-")
        Path(self.scratch).chmod(0o711)  # the sandbox's user binds folders from in here
        self.warm = multiprocessing.get_context("fork").Semaphore(0)  # released by each worker once warm
        self.executor: ProcessPoolExecutor | None = None

    def __enter__(self) -> ResidentWorkers:
        global _resident
        from . import worker  # noqa: F401  (nbgrader's autograder: the workers inherit it)

        import_recheck_libraries()
        _resident = self
        self.refresh()
        return self

    def pool(self) -> ProcessPoolExecutor | None:
        """The live pool; None once a killed worker broke it (refresh() forks it again, between runs)."""
        if self.executor is None or self.executor._broken:
            return None
        return self.executor

    def refresh(self) -> None:
        """Fork the pool again if it broke: never during a run, whose workers would keep the gradebook's
        claim (course/graders.py) open after it ends."""
        if self.executor is not None and self.executor._broken:
            self.executor.shutdown(wait=False, cancel_futures=True)
            self.executor = None
        if self.executor is None:
            self.executor = new_pool(self.jobs, self.scratch, self.sandbox_limits, self.warm)

    def warm_up(self, api: NbGraderAPI, assignments: list[str]) -> None:
        """Grade the reference solution of each of `assignments` once in every worker, the results thrown
        away: nbgrader's pipeline, the private courses and the re-check are warm before the first student.

        Nothing is written to the course; a warm-up that fails only leaves that worker colder.
        """
        from nbformat import writes

        from . import notebooks
        from .worker import course_digest

        futures = []
        for assignment in assignments:
            with contextlib.suppress(Exception):  # say, a released assignment whose source is gone
                world = assignment_world(api, assignment)
                root = Path(api.coursedir.root)
                submission = {
                    release.name: writes(
                        notebooks.fill(
                            notebooks.read(release),
                            notebooks.solutions(
                                notebooks.read(root / api.coursedir.source_directory / assignment / release.name),
                                api.config,
                            ),
                        )
                    ).encode()
                    for release in sorted((root / api.coursedir.release_directory / assignment).glob("*.ipynb"))
                }
                payload = {
                    "assignment": assignment,
                    "student": "course-serve-warm-up",
                    "course": world,
                    "digest": course_digest(world),
                    "submission": submission,
                    "record": None,
                    "sandbox_limits": self.sandbox_limits,
                }
                futures += [self.executor.submit(grade_payload, payload) for _ in range(self.jobs)]
        for future in futures:
            with contextlib.suppress(Exception):
                future.result()

    def wait_warm(self, timeout: float = 120.0) -> None:
        """Until every worker has its sandbox ready (or could not start one: its first student will say why)."""
        for _ in range(self.jobs):
            self.warm.acquire(timeout=timeout)

    def __exit__(self, *_: Any) -> None:
        global _resident
        _resident = None
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
        remove_quietly(self.scratch)


_resident: ResidentWorkers | None = None


def use_temporary_folder(folder: str) -> None:
    """The worker's temporary files go under `folder`."""
    tempfile.tempdir = folder


RECHECK_LIBRARIES = [name for name in PRELOAD if name.split(".")[0] in ("numpy", "scipy", "sklearn")]


def import_recheck_libraries() -> None:
    """Import what the re-check of test cells runs on (course/plugins/verify.py): numpy and scikit-learn."""
    for name in RECHECK_LIBRARIES + ["sklearn.pipeline"]:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)


def start_worker(folder: str, sandbox_limits: dict[str, int] | None = None, ready: Any = None) -> None:
    """Pool initializer: temporary files under `folder`; the sandbox started at once (or taken from the
    coordinator), while the coordinator gets the first students ready; the re-check's libraries, which
    a local worker inherits, imported in a thread where they are not (a Dask worker's own pool).
    `ready`, a semaphore, is released once the sandbox is ready (or could not start)."""
    use_temporary_folder(folder)
    if ready is not None:  # a resident worker: Ctrl-C and SIGTERM are for its server, which stops it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=import_recheck_libraries, name="import-recheck-libraries", daemon=True).start()
    taken = take_early_sandbox()
    if sandbox_limits is not None:
        with contextlib.suppress(Exception), _startup.stage("sandbox start"):  # else the first student tries again
            warm_sandbox(sandbox_limits, taken)
    elif taken is not None:
        taken.release()
    if ready is not None:
        ready.release()


def check_sandbox() -> None:
    """Raise CourseError, saying why and how to fix it, unless student code can be sandboxed here."""
    try:
        check_available()
    except SandboxError as error:
        raise CourseError(str(error)) from None


@contextlib.contextmanager
def one_transaction(gradebook: Gradebook) -> Iterator[None]:
    """nbgrader's Gradebook methods commit after each change: within this block they only flush, and
    the block commits once at its end (or, if it raises, commits nothing)."""
    session = gradebook.db.registry()  # this thread's session
    session.commit = session.flush
    try:
        yield
    finally:
        del session.commit
    session.commit()


class GradebookWriter:
    """The coordinator's one writer of the gradebook, in a thread of its own, recording in batches.

    The loop that hands students to workers queues each outcome here (`put`) and goes on at once;
    the writer records whatever has arrived since its last commit in one transaction, then reports
    each student (`on_done`), in the order they came. A result that cannot be recorded costs its
    student alone: the batch is rolled back and its students are recorded one by one.
    """

    def __init__(
        self,
        api: NbGraderAPI,
        gradebook: Gradebook,
        assignment: str,
        on_done: Callable[[str, dict], None] | None,
        stages: Stages,
    ) -> None:
        self.api, self.gradebook, self.assignment, self.on_done, self.stages = (
            api,
            gradebook,
            assignment,
            on_done,
            stages,
        )
        self.results: dict[str, dict] = {}
        self.reported: list[float] = []  # when each student was reported (time.time()), in order
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._run, name="gradebook-writer", daemon=True)

    def put(self, student: str, outcome: Outcome | Exception) -> None:
        self.queue.put((student, outcome))
        if not self.thread.is_alive():  # started with the first result: the local workers are forked by then
            self.thread.start()

    def close(self) -> dict[str, dict]:
        """Record what is queued, stop; return {student: result dict}."""
        self.queue.put(None)
        if not self.thread.is_alive() and self.thread.ident is None:
            self.thread.start()
        self.thread.join()
        return self.results

    def _run(self) -> None:
        while True:
            batch = [self.queue.get()]
            with contextlib.suppress(queue.Empty):
                while True:
                    batch.append(self.queue.get_nowait())
            self._write([item for item in batch if item is not None])
            if None in batch:
                return

    def _write(self, batch: list[tuple[str, Outcome | Exception]]) -> None:
        graded = [
            (student, outcome) for student, outcome in batch if isinstance(outcome, dict) and "failure" not in outcome
        ]
        errors: dict[str, Exception] = {}
        with self.stages.stage("gradebook write (coordinator)", cpu=True):
            try:
                with one_transaction(self.gradebook):
                    for student, outcome in graded:
                        record_results(self.api, self.gradebook, self.assignment, student, outcome)
            except Exception:
                self.gradebook.db.rollback()
                for student, outcome in graded:  # one by one: a result that cannot be recorded costs its student
                    try:
                        with one_transaction(self.gradebook):
                            record_results(self.api, self.gradebook, self.assignment, student, outcome)
                    except Exception as error:
                        self.gradebook.db.rollback()
                        errors[student] = error
        for student, outcome in batch:
            if isinstance(outcome, Exception):  # a killed worker, a submission that could not be packed
                error = outcome
            else:
                error = errors.get(student)
            if error is not None:
                result = {"success": False, "error": f"{type(error).__name__}: {error}"}
            elif "failure" in outcome:  # already "Name: message", from the worker
                result = {"success": False, "error": outcome["failure"]}
            else:
                result = {"success": True, **({"note": outcome["note"]} if "note" in outcome else {})}
            self.results[student] = result
            self.reported.append(time.time())
            if self.on_done:
                try:
                    self.on_done(student, result)
                except Exception:  # a progress report must not stop the recording
                    pass


def grade_parallel(
    api: NbGraderAPI,
    assignment: str,
    students: Iterable[str],
    jobs: int,
    on_done: Callable[[str, dict], None] | None = None,
    sandboxed: bool = True,
    scheduler: str | None = None,
    timings: Path | str | None = None,
) -> dict[str, dict]:
    """Grade `students` with `jobs` local workers or on a Dask cluster; return {student: result dict}.

    A SandboxError, the machine's problem rather than a student's, stops the grading as a CourseError
    (the results that came before it are recorded).
    `timings`, a file, receives each student's seconds per stage as JSON (benchmarks/autograde.py reads it).
    """
    from .gradebook import open_gradebook, student_records
    from .worker import course_digest

    started, students = time.time(), list(students)
    coordinator, per_student = Stages(), {}
    limits = SandboxLimits(config=api.config)
    window = ParallelGrading(config=api.config).cluster_window
    with open_gradebook(api) as gradebook:
        world: dict[str, Any] = {}  # made with the first payload: the local workers start meanwhile

        def payload(student):
            with coordinator.stage("pack", cpu=True):
                if not world:
                    world["course"] = assignment_world(api, assignment)
                    world["digest"] = course_digest(world["course"])
                    world["records"] = student_records(gradebook, assignment, students)
                    gradebook.db.commit()  # ends this thread's read: the writer's thread writes
                record = world["records"].get(student)
                return pack(api.coursedir, world["course"], world["digest"], student, record, limits)

        graded = (
            on_cluster(scheduler, students, payload, sandboxed, window)
            if scheduler
            else on_local_workers(jobs, students, payload, sandboxed, limits.as_dict())
        )
        writer = GradebookWriter(api, gradebook, assignment, on_done, coordinator)
        try:
            for student, outcome in graded:
                if isinstance(outcome, SandboxError):  # the machine's problem, not the student's: stop
                    raise CourseError(str(outcome)) from None
                if isinstance(outcome, dict):
                    per_student[student] = outcome.get("timings", {})
                writer.put(student, outcome)
        finally:
            results = writer.close()
    if timings:
        Path(timings).write_text(
            json.dumps(
                {
                    "started": started,
                    "reported": writer.reported,
                    "finished": time.time(),
                    "coordinator": coordinator.seconds,
                    "coordinator cpu": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
                    "students": per_student,
                },
                indent=1,
            )
        )
    return results
