"""Several `course grade` runs on one gradebook: which run records which student, and when.

Only the coordinator of a run writes the gradebook (course/parallel.py); its workers grade
private copies. When two runs share a gradebook:

- SQLite: one run at a time. A run holds an exclusive lock (flock) on the file
  `<gradebook>.lock` beside the gradebook from before it records anything until it ends; a
  second run stops at once with one line saying who holds the gradebook. The lock goes with
  its process, however that ends.
- PostgreSQL: runs go on side by side. A run holds a session-level advisory lock for each
  student (keyed on the course and the student) from before the student is handed to a
  worker until their results are recorded. It grades first the students no other run holds,
  then waits for the others, one at a time and holding no lock while it waits (so two runs
  never wait for each other), and grades them after the other run: as if the runs had
  taken turns. Student and submission rows are only ever created by the run holding that
  student, so two runs never race to insert the same row.
- other databases: no coordination; grade with one run at a time.
"""

import fcntl
import hashlib
import os
import socket
import threading
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy

from .common import CourseError
from .gradebook import sqlite_path


class Claims:
    """The students this run may grade now; without coordination, every student at once."""

    def take(self, students: Collection[str]) -> list[str]:
        """Those of `students` no other run is grading, now claimed by this one (without waiting)."""
        return list(students)

    def wait_for(self, student: str) -> None:
        """Wait until no other run is grading `student`, and claim them."""

    def release(self, student: str) -> None:
        """Let other runs grade `student` (their results are recorded)."""

    def close(self) -> None:
        pass


class RunLock(Claims):
    """SQLite: the whole gradebook for this run, or CourseError naming the run that holds it."""

    def __init__(self, gradebook: Path, what: str):
        self.path = Path(f"{gradebook}.lock")
        try:
            self.file = open(self.path, "a+", encoding="utf-8")  # held until close
        except OSError as error:
            raise CourseError(f"cannot lock the gradebook {gradebook}: {error.strerror}: {self.path}") from None
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another run"
            self.file.close()
            raise CourseError(
                f"the gradebook {gradebook} is in use: {holder} is writing to it; run this again when it has finished"
            ) from None
        self.file.seek(0)
        self.file.truncate()
        self.file.write(
            f"{what} (pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')})\n"
        )
        self.file.flush()

    def close(self) -> None:
        self.file.truncate(0)
        self.file.close()  # and with it the lock


def advisory_key(course_id: str, student: str) -> int:
    """The advisory lock of one student of one course: a signed 64-bit number, the same in every run."""
    digest = hashlib.blake2b(f"nbgrader course\0{course_id}\0{student}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


class AdvisoryLocks(Claims):
    """PostgreSQL: one session-level advisory lock per student, on a connection of this run's own."""

    def __init__(self, url: str, course_id: str):
        self.course_id = course_id
        self.engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
        self.connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        self.held: set[str] = set()
        self.lock = threading.Lock()  # students are released from the gradebook writer's thread

    def _call(self, function: str, student: str) -> object:
        key = advisory_key(self.course_id, student)
        with self.lock:
            return self.connection.execute(sqlalchemy.text(f"SELECT {function}(:key)"), {"key": key}).scalar()

    def take(self, students: Collection[str]) -> list[str]:
        taken = [student for student in students if student in self.held or self._call("pg_try_advisory_lock", student)]
        self.held.update(taken)
        return taken

    def wait_for(self, student: str) -> None:
        if student not in self.held:
            self._call("pg_advisory_lock", student)
            self.held.add(student)

    def release(self, student: str) -> None:
        if student in self.held:
            self._call("pg_advisory_unlock", student)
            self.held.discard(student)

    def close(self) -> None:
        try:
            self.connection.close()  # the server releases what the session still holds
        finally:
            self.engine.dispose()


@contextmanager
def grading_claims(db_url: str, course_id: str, what: str) -> Iterator[Claims]:
    """This run's claims on the gradebook at `db_url`, given up when the block ends; `what` (e.g.
    "course grade logistic_regression") names the run to another that finds the SQLite gradebook in use."""
    path = sqlite_path(db_url)
    if path is not None:
        claims = RunLock(path, what)
    elif sqlalchemy.engine.make_url(db_url).get_backend_name() == "postgresql":
        claims = AdvisoryLocks(db_url, course_id)
    else:
        claims = Claims()
    try:
        yield claims
    finally:
        claims.close()


def in_turns(claims: Claims, students: list[str], on_wait=None) -> Iterator[list[str]]:
    """Batches of `students` that this run holds, until every one has had its turn.

    First those no other run is grading; then, for the rest, it waits for one (holding nothing
    while it waits) and takes along those that are free by then. `on_wait(students)` is told who
    is waited for. The caller grades each batch and releases each student once recorded.
    """
    remaining = list(students)
    while remaining:
        batch = claims.take(remaining)
        if not batch:
            if on_wait:
                on_wait(remaining)
            claims.wait_for(remaining[0])
            batch = [remaining[0], *claims.take(remaining[1:])]
        yield batch
        remaining = [student for student in remaining if student not in batch]
