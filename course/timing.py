"""Wall-clock seconds per grading stage, for `course grade --timings` and the benchmark's breakdown.

A grading worker opens a `Stages` for each student (`recording`); the code of each stage adds its
time to the current one (`current().add(...)`, or `with stage(name):`), the autograde plugins
included. Outside a recording, `current()` is a `Stages` nobody reads, so the plugins time
themselves at no cost to anyone when stock nbgrader runs them.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager

# The stages a student's grading is split into, in the order the benchmark prints them.
WORKER_STAGES = (
    "unpack",  # the submission into the worker's private course, its gradebook reset
    "nbgrader setup",  # nbgrader's converter, reading and writing the notebook, the sanitizing steps
    "kernel start",  # a kernel from the sandbox's server, until it answers
    "cell execution",  # the notebook's cells, the tests and their recording cells
    "kernel stop",  # the kernel's shutdown, the sandbox's wipe
    "verification",  # the re-check of every passing test outside the kernel (course/plugins/verify.py)
    "gradebook write (worker)",  # nbgrader's SaveAutoGrades and late penalty, in the private gradebook
    "results",  # the grades and autograded files read back as plain data
)
ONCE_PER_WORKER = (
    "sandbox start",  # the worker's sandbox and its kernel server (again after a wipe that failed)
    "private course",  # the worker's private course of the assignment (course/worker.py)
)
COORDINATOR_STAGES = ("pack", "gradebook write (coordinator)")
CPU_STAGES = ("worker cpu", "kernel cpu", "sandbox server cpu")  # CPU seconds, not wall-clock time


class Stages:
    """Seconds spent in each named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    @contextmanager
    def stage(self, name: str, cpu: bool = False) -> Iterator[None]:
        """Add the block's wall-clock time to `name` (and, with `cpu`, this thread's CPU time to "`name` cpu")."""
        started, used = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)
            if cpu:
                self.add(f"{name} cpu", time.thread_time() - used)


_current = [Stages()]


def current() -> Stages:
    """The stages of the student being graded in this process (a throw-away one outside a recording)."""
    return _current[-1]


@contextmanager
def recording(stages: Stages) -> Iterator[Stages]:
    """Make `stages` current while the block runs."""
    _current.append(stages)
    try:
        yield stages
    finally:
        _current.pop()


def stage(name: str):
    """`with stage(name):` adds the block's time to the current student's stage `name`."""
    return current().stage(name)
