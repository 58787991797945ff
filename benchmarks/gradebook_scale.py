"""What a big class in the gradebook costs `course grade`: the same submissions, an empty course and a full one.

    .venv/bin/python -m benchmarks.gradebook_scale [--assignment NAME] [--class-size 3000] [--graded 16]
                                                   [--rounds 5] [--jobs 2]     (from the repository root)

Two copies of the course hold the same `--graded` varied submissions (benchmarks/autograde.py's mix).
Each is graded once to warm up; then the full course's gradebook gets `--class-size` more graded
students (copies of a graded student's rows, each under a name of its own), and both courses are
graded again `--rounds` times, in turn. The figure is the best round of the full course over the
best round of the empty one: a worker gets one student's world, so the class in the gradebook
should cost nothing but the coordinator's reading of the graded students' own rows. Target: at
most 1.08x, with the same scores in both courses. The exit status is 1 when it is missed.
"""

import argparse
import json
import os
import sys
import tempfile
import uuid
from pathlib import Path

import sqlalchemy
from nbgrader.api import Base

from benchmarks.autograde import (
    ASSIGNMENTS,
    REPO,
    cell_scores,
    course_copy,
    course_grade,
    varied_notebooks,
    write_class,
)
from course.samples import copy_course

SCALE_TARGET = 1.08
STUDENT_TABLES = ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")


def student_rows(connection, student):
    """{table: rows} of one student's graded submissions, in the order the tables must be filled."""
    tables, rows, parents = Base.metadata.tables, {}, {student}
    for name, key in (
        ("student", "id"),
        ("submitted_assignment", "student_id"),
        ("submitted_notebook", "assignment_id"),
        ("grade", "notebook_id"),
        ("comment", "notebook_id"),
    ):
        table = tables[name]
        rows[name] = [
            dict(row) for row in connection.execute(table.select().where(table.c[key].in_(parents))).mappings()
        ]
        if name != "grade":  # grades and comments both belong to the submitted notebooks
            parents = {row["id"] for row in rows[name]}
    return rows


def fill_gradebook(gradebook, template, size):
    """Give the gradebook `size` more graded students, each a copy of `template`'s rows under a new id."""
    engine = sqlalchemy.create_engine(f"sqlite:///{gradebook}")
    tables = Base.metadata.tables
    try:
        with engine.begin() as connection:
            original = student_rows(connection, template)
            copies = {name: [] for name in STUDENT_TABLES}
            for number in range(size):
                ids = {template: f"class{number:05d}"}
                for name in STUDENT_TABLES:
                    for row in original[name]:
                        copy = {column: ids.get(value, value) for column, value in row.items()}
                        copy["id"] = ids.setdefault(row["id"], uuid.uuid4().hex)
                        copies[name].append(copy)
            for name in STUDENT_TABLES:
                connection.execute(tables[name].insert(), copies[name])
    finally:
        engine.dispose()


def scale(assignment, size, graded, rounds, jobs, scratch):
    """Grade `graded` submissions in an empty course and beside `size` graded students; print; return the misses."""
    template = scratch / "template"
    copy_course(REPO, template)
    kinds = varied_notebooks(template, assignment, graded)
    roots = {name: scratch / name for name in ("empty", "full")}
    for root in roots.values():
        course_copy(template, root)
        write_class(root, assignment, kinds, graded)
        course_grade(root, assignment, jobs, scratch / "timings.json")  # warm-up: both gradebooks hold the graded
    gradebook = roots["full"] / "gradebook.db"
    fill_gradebook(gradebook, "student0000", size)
    seconds, coordinator = {name: [] for name in roots}, {name: [] for name in roots}
    for _ in range(rounds):
        for name, root in roots.items():
            seconds[name].append(course_grade(root, assignment, jobs, scratch / "timings.json")[0])
            coordinator[name].append(json.loads((scratch / "timings.json").read_text())["coordinator cpu"])
    empty, full = min(seconds["empty"]), min(seconds["full"])
    identical = cell_scores(roots["empty"], assignment) == {
        key: score for key, score in cell_scores(roots["full"], assignment).items() if not key[0].startswith("class")
    }
    print(f"\n{graded} submissions of {assignment} graded by course grade --jobs {jobs}, best of {rounds} rounds")
    print(f"  in an empty course:                          {empty:7.2f} s  (rounds: {rounded(seconds['empty'])})")
    print(
        f"  beside {size} graded students ({gradebook.stat().st_size / 2**20:.1f} MB gradebook): "
        f"{full:7.2f} s  (rounds: {rounded(seconds['full'])})"
    )
    print(
        f"  coordinator CPU, best round:                 {min(coordinator['empty']):7.2f} s empty, "
        f"{min(coordinator['full']):.2f} s full (what a big class could cost)"
    )
    print(f"  full / empty:                                {full / empty:7.2f}x  (target <= {SCALE_TARGET:g}x)")
    print(f"  scores identical in both courses:            {'    yes' if identical else '     NO'}")
    missed = [] if identical else ["scores differ between the two courses"]
    if full > SCALE_TARGET * empty:
        missed.append(f"the full course took {full / empty:.2f}x the empty one's time")
    return missed


def rounded(values):
    return ", ".join(f"{value:.2f}" for value in values)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default=ASSIGNMENTS[0], choices=ASSIGNMENTS)
    parser.add_argument("--class-size", type=int, default=3000)
    parser.add_argument("--graded", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="gradebook-scale-") as scratch:
        missed = scale(args.assignment, args.class_size, args.graded, args.rounds, args.jobs, Path(scratch))
    print("\ntarget: " + ("met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
