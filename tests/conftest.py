"""Shared fixtures: a temporary course made from this repository, and its autograded catalogue."""

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from course import notebooks
from course.common import open_api
from course.samples import copy_course

from catalogue import CATALOGUES, Variant
from hostile import HOSTILE

REPO = Path(__file__).resolve().parents[1]

ASSIGNMENTS = sorted(path.name for path in (REPO / "source").iterdir() if path.is_dir())
REFERENCE, UNTOUCHED = "reference_solution", "untouched_release"

# What a student sees of a test cell: a few short checks of what every right answer has (its type,
# shape and range, a mean of 0, probabilities that favour the right class, ...), never a reference
# computation that gives the answer away; the hidden tests do those. At most this many lines, of at
# most this many characters: at 1280 pixels, JupyterLab shows about 100 beside its left sidebar.
VISIBLE_LINES, VISIBLE_WIDTH = 8, 100


def nbgrader(*args, cwd):
    """Run the real nbgrader command line in `cwd`; return the completed process."""
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    return subprocess.run(
        [sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=3600
    )


def course_cli(root, *args, timeout=900):
    """Run `python -m course --root ROOT ARGS...` from this repository; return the completed process."""
    return subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def nss_accounts(folder, users):
    """An environment in which nss_wrapper knows root and `users` ({name: (uid, home)}), as a real
    course machine knows its students' accounts; its passwd and group files go in `folder`."""
    passwd, group = Path(folder) / "passwd", Path(folder) / "group"
    passwd.write_text(
        "root:x:0:0::/root:/bin/sh\n"
        + "".join(f"{name}:x:{uid}:{uid}::{home}:/bin/sh\n" for name, (uid, home) in users.items())
    )
    group.write_text("root:x:0:\n" + "".join(f"{name}:x:{uid}:\n" for name, (uid, _) in users.items()))
    library = next(Path("/usr/lib").glob("*/libnss_wrapper.so"))
    return dict(os.environ, LD_PRELOAD=str(library), NSS_WRAPPER_PASSWD=str(passwd), NSS_WRAPPER_GROUP=str(group))


_TEMPLATE = []  # the course made by copy_course, once per session, that make_course copies


def make_course(root, cell_timeout=None):
    """A course at `root` with this repository's config, tooling and sources, every assignment generated.

    As `course.samples.copy_course` makes it; made once per session and then copied (generating the
    assignments takes seconds, a copy milliseconds).

    `cell_timeout` (seconds) replaces the config's per-cell timeout (c.Execute.timeout) in this course
    only: a course that grades a hostile endless loop need not wait out the full 30 s each time.
    """
    root = Path(root)
    if not _TEMPLATE:  # the first course of the session is made from the repository; the others are copies
        template = Path(tempfile.mkdtemp(prefix="course-template-")) / "course"
        copy_course(REPO, template)
        atexit.register(shutil.rmtree, template.parent, ignore_errors=True)
        _TEMPLATE.append(template)
    root.mkdir(parents=True, exist_ok=True)
    for path in _TEMPLATE[0].iterdir():  # into `root`, which keeps its own mode
        (shutil.copytree if path.is_dir() else shutil.copy2)(path, root / path.name)
    api = open_api(root)
    if cell_timeout is not None:
        with open(Path(root) / "nbgrader_config.py", "a") as config:
            config.write(
                f"\n# Test course: a shorter cell timeout (tests/conftest.py).\nc.Execute.timeout = {cell_timeout}\n"
            )
    return api


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """A course with every assignment generated, shared by the tests that only read it."""
    root = tmp_path_factory.mktemp("course")
    make_course(root)
    return root


def release_notebook(root, assignment):
    return notebooks.read(Path(root) / "release" / assignment / f"{assignment}.ipynb")


def reference_answers(assignment):
    return notebooks.solutions(notebooks.read(REPO / "source" / assignment / f"{assignment}.ipynb"))


def submit_variants(root, assignment, variants):
    """Write each variant's submission: the reference solution with the variant's answers and edits."""
    release = release_notebook(root, assignment)
    solution = reference_answers(assignment)
    for variant in variants:
        submission = notebooks.fill(release, {**solution, **variant.answers})
        if variant.edit:
            variant.edit(submission)
        notebooks.write_submission(submission, root, variant.name, assignment)


# Per-cell timeout of the courses that grade the hostile notebooks (tests/hostile.py): long enough for
# any honest cell (each takes well under 2 s) on two busy cores, short enough that the endless loop
# does not cost the full 30 s of the course's config in every run.
TEST_CELL_TIMEOUT = 15
HONEST = Variant("zz_honest_student", {})  # graded after every hostile one, in the same run


# How graded_submissions splits the notebooks over its two courses, for about equal work in each:
# this many of the second and of the third assignment's catalogue variants are graded in the first course.
SECOND_CATALOGUE_IN_FIRST_COURSE = 8
THIRD_CATALOGUE_IN_FIRST_COURSE = 12


@pytest.fixture(scope="session")
def graded_submissions(tmp_path_factory):
    """Every catalogue and hostile notebook, graded once per suite with real stock `nbgrader autograde`.

    Two course copies are graded by two concurrent `nbgrader autograde` processes (stock nbgrader
    each, one assignment after the other and sequential within one), with the course's config but a
    shorter cell timeout (TEST_CELL_TIMEOUT). The first course holds the reference solution, the
    untouched release and the catalogue of logistic_regression, and the first variants of the
    catalogues of logistic_regression_from_scratch and logistic_regression_evaluation; the second
    the rest of those catalogues with their reference solutions and untouched releases, and
    (logistic_regression) the hostile notebooks with the honest student, graded after them in the same run.

    Returns {"roots": {(assignment, student): course root}, "runs": {(root, assignment): completed
    process}, "hostile_root": the course with the hostile notebooks}.
    """
    first, second = (tmp_path_factory.mktemp(name) for name in ("graded-first", "graded-second"))
    split, third_split = SECOND_CATALOGUE_IN_FIRST_COURSE, THIRD_CATALOGUE_IN_FIRST_COURSE
    second_catalogue = CATALOGUES["logistic_regression_from_scratch"]
    third_catalogue = CATALOGUES["logistic_regression_evaluation"]
    # {course: [(assignment, variants, whether the reference solution and untouched release go there too)]}
    plan = {
        first: [
            ("logistic_regression", CATALOGUES["logistic_regression"], True),
            ("logistic_regression_from_scratch", second_catalogue[:split], False),
            ("logistic_regression_evaluation", third_catalogue[:third_split], False),
        ],
        second: [
            ("logistic_regression_from_scratch", second_catalogue[split:], True),
            ("logistic_regression", HOSTILE + [HONEST], False),
            ("logistic_regression_evaluation", third_catalogue[third_split:], True),
        ],
    }
    roots = {}
    for root, steps in plan.items():
        make_course(root, cell_timeout=TEST_CELL_TIMEOUT)
        for assignment, variants, with_reference in steps:
            if with_reference:
                release = release_notebook(root, assignment)
                notebooks.write_submission(
                    notebooks.fill(release, reference_answers(assignment)), root, REFERENCE, assignment
                )
                notebooks.write_submission(release, root, UNTOUCHED, assignment)
                roots[assignment, REFERENCE] = roots[assignment, UNTOUCHED] = root
            submit_variants(root, assignment, variants)
            roots.update({(assignment, variant.name): root for variant in variants})

    def grade(root):
        return {
            (root, assignment): nbgrader("autograde", assignment, "--force", cwd=root)
            for assignment, _, _ in plan[root]
        }

    with ThreadPoolExecutor(len(plan)) as pool:
        runs = {key: run for result in pool.map(grade, plan) for key, run in result.items()}
    return {"roots": roots, "runs": runs, "hostile_root": second}


@pytest.fixture(scope="session")
def graded_catalogue(graded_submissions):
    """The catalogue's share of graded_submissions: ({(assignment, student): root}, {assignment: [runs]})."""
    roots = {
        key: root
        for key, root in graded_submissions["roots"].items()
        if key[1] in (REFERENCE, UNTOUCHED) or key[1] in {v.name for v in CATALOGUES[key[0]]}
    }
    runs = {
        assignment: [
            graded_submissions["runs"][root, assignment]
            for root in sorted({root for (a, _), root in roots.items() if a == assignment})
        ]
        for assignment in CATALOGUES
    }
    return roots, runs


def snapshot(root):
    """Every path under `root` with its modification time."""
    return sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in Path(root).rglob("*"))


MAKE = ["make", "-o", ".venv/.installed"]  # never rebuild the shared environment


@pytest.fixture(scope="session")
def demo():
    """`make demo` run once per suite, in a fresh clone of this repository (the README's first step).

    Returns {"base": a folder every user may enter, "clone": the clone in it, "demo": the demo folder,
    "run": the completed make, "before"/"after": snapshots of the clone around the demo}. The clone
    is the instructor's course in test_first_hour, whose term goes on in it after the demo.
    """
    base = Path(tempfile.mkdtemp(prefix="course-first-hour-"))  # pytest's own folder is closed to students
    base.chmod(0o755)
    clone = base / "clone"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(clone)], cwd=base, check=True, capture_output=True)
    (clone / ".venv").symlink_to(sys.prefix)  # the environment make would build, already built
    # `python -m course` in the clone imports its course package: its bytecode is written now, as by an
    # earlier command, so that the snapshots compare everything else.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(clone / "course")], check=True)
    before = snapshot(clone)
    run = subprocess.run(
        [*MAKE, "demo", f"DEMO={base / 'demo'}"], cwd=clone, capture_output=True, text=True, timeout=1800
    )
    yield {"base": base, "clone": clone, "demo": base / "demo", "run": run, "before": before, "after": snapshot(clone)}
    shutil.rmtree(base, ignore_errors=True)
