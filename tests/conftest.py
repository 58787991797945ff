"""Shared fixtures: a temporary course made from this repository, and its autograded catalogue."""

import atexit
import fcntl
import os
import pickle
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


# ---- One test run, several processes: `make test` runs pytest-xdist workers (-n auto --dist loadfile).
# The expensive session fixtures are made once per run, by whichever worker asks first, and read by the
# others from a folder of the run's own, which the process that started the run removes at its end.

SHARED = "COURSE_SUITE_SHARED"  # the run's shared folder; the workers inherit it
_OWNED = []


def pytest_configure(config):
    if SHARED not in os.environ:  # the process that started the run (xdist's controller, or pytest alone)
        folder = tempfile.mkdtemp(prefix="course-suite-")
        os.chmod(folder, 0o755)  # the tests' sample students enter the first hour's folder in it
        os.environ[SHARED] = folder
        _OWNED.append(folder)


def pytest_unconfigure(config):
    for folder in _OWNED:
        shutil.rmtree(folder, ignore_errors=True)
        os.environ.pop(SHARED, None)


# The longest files first, so that no long one is left to run alone at the end (they share the fixtures
# above, made by whichever worker needs one first); the rest keep pytest's order.
LONGEST_FIRST = [
    "test_autograde.py",
    "test_accessibility.py",
    "test_workflow.py",
    "test_sandbox.py",
    "test_hub.py",
    "test_parallel.py",
    "test_browser.py",
    "test_postgres.py",
    "test_first_hour.py",
    "test_one_student.py",
    "test_inert.py",
    "test_benchmark.py",
    "test_report.py",
    "test_feedback.py",
    "test_serve.py",
    "test_graders.py",
    "test_robustness.py",
]


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file keeps its own order


def shared_folder():
    return Path(os.environ[SHARED])


def once_per_run(name, make):
    """make()'s result, made by the first process of the run that asks for `name`, read by the others."""
    result, lock = shared_folder() / f"{name}.pickle", shared_folder() / f"{name}.lock"
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another worker making it: wait for its result
        if not result.exists():
            result.write_bytes(pickle.dumps(make()))
        return pickle.loads(result.read_bytes())


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

    def make():
        root = tmp_path_factory.mktemp("course")
        make_course(root)
        return root

    return once_per_run("course", make)


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
# any honest cell on two busy cores (10 s was not: a from-scratch gradient descent cell timed out in a
# loaded clean-clone run), short enough that the endless loop does not cost the full 30 s each time.
TEST_CELL_TIMEOUT = 15
# The courses that grade the hostile notebooks hold logistic_regression's alone, whose slowest honest cell
# (its imports) took 1.7 s in a cold stock kernel on two cores oversubscribed 2.5 times (2026-12-02): there
# the endless loop, graded three times a suite, spins for 8 s instead of 15.
HOSTILE_CELL_TIMEOUT = 8
HONEST = Variant("zz_honest_student", {})  # graded after every hostile one, in the same run


# The stock side of the parity checks: for each assignment, the reference solution, the untouched
# release and these catalogue variants (by index: the first, a realistic mistake, and the last, a right
# answer written another way, in every catalogue) are also graded by stock `nbgrader autograde`
# (graded_submissions); test_parallel compares them cell by cell. Stock grading costs about 6.6 s of CPU
# a notebook, so the suite keeps this set small: the other variants are graded by `course grade` alone
# (graded_catalogue), each against its expected scores and message (test_autograde.py).
PARITY_INDICES = (0, -1)


def parity_variants(assignment):
    """The catalogue variants of `assignment` that stock nbgrader grades too."""
    variants = CATALOGUES[assignment]
    return list({variants[index].name: variants[index] for index in PARITY_INDICES}.values())


def submit_reference_and_untouched(root, assignment):
    release = release_notebook(root, assignment)
    notebooks.write_submission(notebooks.fill(release, reference_answers(assignment)), root, REFERENCE, assignment)
    notebooks.write_submission(release, root, UNTOUCHED, assignment)


@pytest.fixture(scope="session")
def graded_submissions(tmp_path_factory):
    """Stock sequential `nbgrader autograde`, once per suite: the baseline that `course grade` must equal.

    Two course copies are graded by two concurrent stock `nbgrader autograde` processes, with the
    course's config but a shorter cell timeout. The first (TEST_CELL_TIMEOUT) holds, for every
    assignment, the reference solution, the untouched release and the parity variants (parity_variants);
    the second (HOSTILE_CELL_TIMEOUT) the hostile notebooks of logistic_regression, with the honest
    student graded after them in the same run.

    Returns {"roots": {(assignment, student): course root}, "runs": {(root, assignment): completed
    process}, "hostile_root": the course with the hostile notebooks}.
    """
    return once_per_run("graded_submissions", lambda: stock_gradings(tmp_path_factory))


def stock_gradings(tmp_path_factory):
    first, second = (tmp_path_factory.mktemp(name) for name in ("stock-parity", "stock-hostile"))
    plan = {first: sorted(CATALOGUES), second: ["logistic_regression"]}
    roots = {}
    make_course(first, cell_timeout=TEST_CELL_TIMEOUT)
    for assignment in plan[first]:
        submit_reference_and_untouched(first, assignment)
        submit_variants(first, assignment, parity_variants(assignment))
        names = [REFERENCE, UNTOUCHED] + [variant.name for variant in parity_variants(assignment)]
        roots.update({(assignment, name): first for name in names})
    make_course(second, cell_timeout=HOSTILE_CELL_TIMEOUT)
    submit_variants(second, "logistic_regression", HOSTILE + [HONEST])
    roots.update({("logistic_regression", variant.name): second for variant in HOSTILE + [HONEST]})

    def grade(root):
        return {(root, assignment): nbgrader("autograde", assignment, "--force", cwd=root) for assignment in plan[root]}

    with ThreadPoolExecutor(len(plan)) as pool:
        runs = {key: run for result in pool.map(grade, plan) for key, run in result.items()}
    return {"roots": roots, "runs": runs, "hostile_root": second}


@pytest.fixture(scope="session")
def graded_catalogue(tmp_path_factory):
    """Every catalogue notebook of every assignment, with the reference solution and the untouched
    release, graded once per suite by `course grade --jobs 2` (sandboxed, warm kernels), in one course
    with the course's config but a shorter cell timeout (TEST_CELL_TIMEOUT).

    Returns ({(assignment, student): course root}, {assignment: [completed `course grade` runs]}).
    """
    return once_per_run("graded_catalogue", lambda: course_gradings(tmp_path_factory))


def course_gradings(tmp_path_factory):
    root = tmp_path_factory.mktemp("graded-catalogue")
    make_course(root, cell_timeout=TEST_CELL_TIMEOUT)
    roots = {}
    for assignment, variants in CATALOGUES.items():
        submit_reference_and_untouched(root, assignment)
        submit_variants(root, assignment, variants)
        roots.update({(assignment, name): root for name in [REFERENCE, UNTOUCHED] + [v.name for v in variants]})
    runs = {assignment: [course_cli(root, "grade", assignment, "--jobs", "2")] for assignment in CATALOGUES}
    return roots, runs


def runs_a_sandbox(process):
    """Whether `process` (a psutil.Process: a grading worker) runs a sandbox's kernel server (False if it is gone)."""
    import psutil

    try:
        return any("course.sandbox" in " ".join(child.cmdline()) for child in process.children())
    except psutil.Error:  # gone, or a zombie, while we looked
        return False


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
    return once_per_run("demo", make_demo)


def make_demo():
    base = shared_folder() / "first-hour"  # pytest's own folder is closed to students; this one is not
    base.mkdir(mode=0o755)
    clone = base / "clone"
    # Copies, not hard links, of the repository's objects: git freshens an object's mtime when a commit
    # in the repository writes it again, which would change the clone's snapshot under the test.
    subprocess.run(
        ["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], cwd=base, check=True, capture_output=True
    )
    (clone / ".venv").symlink_to(sys.prefix)  # the environment make would build, already built
    # `python -m course` in the clone imports its course package: its bytecode is written now, as by an
    # earlier command, so that the snapshots compare everything else.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(clone / "course")], check=True)
    before = snapshot(clone)
    run = subprocess.run(
        [*MAKE, "demo", f"DEMO={base / 'demo'}"], cwd=clone, capture_output=True, text=True, timeout=1800
    )
    return {"base": base, "clone": clone, "demo": base / "demo", "run": run, "before": before, "after": snapshot(clone)}
