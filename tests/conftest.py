"""Shared fixtures: a temporary course made from this repository, and its autograded catalogue."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from catalogue import CATALOGUES  # noqa: E402
from course import notebooks  # noqa: E402
from course.samples import copy_course  # noqa: E402

ASSIGNMENTS = sorted(path.name for path in (REPO / "source").iterdir() if path.is_dir())
REFERENCE, UNTOUCHED = "reference_solution", "untouched_release"


def nbgrader(*args, cwd):
    """Run the real nbgrader command line in `cwd`; return the completed process."""
    env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"])
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=3600)


def make_course(root):
    """A course at `root` with this repository's config, tooling and sources, every assignment generated."""
    return copy_course(REPO, root)


def release_notebook(root, assignment):
    return notebooks.read(Path(root) / "release" / assignment / f"{assignment}.ipynb")


def reference_answers(assignment):
    return notebooks.solutions(notebooks.read(REPO / "source" / assignment / f"{assignment}.ipynb"))


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    root = tmp_path_factory.mktemp("course")
    make_course(root)
    return root


def submit_variants(root, assignment, variants):
    """Write each variant's submission: the reference solution with the variant's answers and edits."""
    release = release_notebook(root, assignment)
    solution = reference_answers(assignment)
    for variant in variants:
        submission = notebooks.fill(release, {**solution, **variant.answers})
        if variant.edit:
            variant.edit(submission)
        notebooks.write_submission(submission, root, variant.name, assignment)


@pytest.fixture(scope="session")
def graded_catalogue(course):
    """Submit the reference solution, the untouched release and every catalogue variant; autograde them all."""
    runs = {}
    for assignment, variants in CATALOGUES.items():
        release = release_notebook(course, assignment)
        notebooks.write_submission(notebooks.fill(release, reference_answers(assignment)), course, REFERENCE,
                                   assignment)
        notebooks.write_submission(release, course, UNTOUCHED, assignment)
        submit_variants(course, assignment, variants)
        runs[assignment] = nbgrader("autograde", assignment, "--force", cwd=course)
    return course, runs
