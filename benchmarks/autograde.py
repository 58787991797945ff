"""Time `python -m course grade --jobs N` against stock sequential `nbgrader autograde`.

    .venv/bin/python -m benchmarks.autograde [--submissions 24] [--jobs 2]   (from the repository root)

Two courses get identical copies of the same submissions (the demo's sample
students, perfect, typical and blank, in turn). One is graded by stock
`nbgrader autograde`, one student after another, each in a fresh unsandboxed
kernel; the other by `course grade`: sandboxed, N workers, warm kernels. The
scores must be identical cell by cell. The floor is a bare kernel that starts,
imports the libraries the notebooks use and stops: the least that grading a
notebook in a fresh kernel costs. Per-submission work is the workers' time,
wall time x jobs / submissions, so it counts the idle time of a worker too.

Targets (2 cores): a speedup of at least 1.8x, and per-submission work within
1.5x of the floor. The exit status is 1 when a target is missed or scores differ.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from itertools import cycle
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

from nbgrader.api import Gradebook  # noqa: E402

from course import notebooks  # noqa: E402
from course.samples import STUDENTS, copy_course, sample_notebook  # noqa: E402

SPEEDUP_TARGET, OVERHEAD_TARGET = 1.8, 1.5
LIBRARIES = "import numpy, pandas, matplotlib.pyplot, sklearn.linear_model, sklearn.preprocessing"


def make_course(root, assignment, submissions):
    copy_course(REPO, root)
    kinds = cycle(STUDENTS.values())
    for number in range(submissions):
        notebook = sample_notebook(root, assignment, next(kinds))
        notebooks.write_submission(notebook, root, f"student{number:03d}", assignment)


def timed(command, cwd):
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    started = time.perf_counter()
    run = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(command[:4])} failed:\n{run.stdout[-2000:]}{run.stderr[-2000:]}")
    return time.perf_counter() - started


def cell_scores(root, assignment):
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        return {
            (submission.student.id, grade.name): grade.auto_score
            for submission in gradebook.assignment_submissions(assignment)
            for notebook in submission.notebooks
            for grade in notebook.grades
        }


def bare_kernel_seconds(runs):
    """Mean time to start a fresh kernel, import the libraries and shut it down."""
    from jupyter_client.manager import start_new_kernel

    started = time.perf_counter()
    for _ in range(runs):
        manager, client = start_new_kernel(kernel_name="python3", stderr=subprocess.DEVNULL)
        client.execute_interactive(LIBRARIES, timeout=120)
        client.stop_channels()
        manager.shutdown_kernel()
    return (time.perf_counter() - started) / runs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--assignment", default="logistic_regression")
    parser.add_argument("--floor-runs", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        stock, course = Path(scratch) / "stock", Path(scratch) / "course"
        for root in (stock, course):
            root.mkdir()
            make_course(root, args.assignment, args.submissions)
        floor = bare_kernel_seconds(args.floor_runs)
        stock_seconds = timed([sys.executable, "-m", "nbgrader", "autograde", args.assignment, "--force"], stock)
        course_seconds = timed(
            [sys.executable, "-m", "course", "grade", args.assignment, "--jobs", str(args.jobs)], course
        )
        identical = cell_scores(stock, args.assignment) == cell_scores(course, args.assignment)
    speedup = stock_seconds / course_seconds
    work = course_seconds * args.jobs / args.submissions
    print(f"{args.submissions} submissions of {args.assignment}, {os.cpu_count()} cores")
    print(
        f"stock nbgrader autograde, sequential:   {stock_seconds:6.1f} s  "
        f"({stock_seconds / args.submissions:.2f} s per submission)"
    )
    print(
        f"course grade --jobs {args.jobs}, sandboxed:      {course_seconds:6.1f} s  "
        f"({work:.2f} s of worker time per submission)"
    )
    print(f"bare kernel importing the libraries:   {floor:6.2f} s  (the floor)")
    print(f"scores identical, cell by cell:        {'yes' if identical else 'NO'}")
    print(f"speedup:                               {speedup:6.2f}x  (target >= {SPEEDUP_TARGET}x)")
    print(f"per-submission work / floor:           {work / floor:6.2f}   (target <= {OVERHEAD_TARGET})")
    return 0 if identical and speedup >= SPEEDUP_TARGET and work / floor <= OVERHEAD_TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
