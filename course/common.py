"""What the instructor's commands share: nbgrader's API on the course root, the exchange, one-line errors."""

import os
import re
import sys
from pathlib import Path

from nbgrader.apps import NbGraderAPI
from nbgrader.coursedir import CourseDirectory
from nbgrader.exchange.default.exchange import Exchange
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from .errors import CourseError

CONFIG_FILE = "nbgrader_config.py"
EXCEPTION_LINE = re.compile(r"^\s+[\w.]*(Error|Exception): ")


def course_config(root, **overrides):
    """The course's nbgrader configuration, rooted at `root`, with `overrides` merged in."""
    root = Path(root).resolve()
    if not (root / CONFIG_FILE).is_file():
        raise CourseError(f"{root} is not a course root: it has no {CONFIG_FILE}")
    config = PyFileConfigLoader(CONFIG_FILE, path=str(root)).load_config()
    config.CourseDirectory.root = str(root)
    config.merge(Config(overrides))
    return config


def open_api(root=".", **overrides):
    """An NbGraderAPI for the course at `root`.

    nbgrader runs `alembic` as a subprocess when it creates a gradebook, so the
    folder of this Python's executables goes on PATH first.
    """
    bin_dir = str(Path(sys.executable).parent)
    if bin_dir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    config = course_config(root, **overrides)
    return NbGraderAPI(CourseDirectory(config=config), config=config)


def exchange_root(api):
    """The exchange folder, checked: it must exist and be writable."""
    root = Path(Exchange(config=api.config).root)  # nbgrader's own trait, with its default
    if not root.is_dir():
        raise CourseError(f"the exchange root {root} does not exist: create it or set c.Exchange.root")
    if not os.access(root, os.W_OK | os.X_OK):
        raise CourseError(f"the exchange root {root} is not writable")
    return root


def check_assignment(api, assignment):
    """Raise CourseError unless `assignment` has a source folder."""
    source = Path(api.coursedir.root) / api.coursedir.source_directory / assignment
    if not source.is_dir():
        known = ", ".join(sorted(api.get_source_assignments())) or "none"
        raise CourseError(f"unknown assignment {assignment!r} (known: {known})")


def students_to_grade(api, assignment, students=None):
    """The students to grade: all who submitted, or the given ones, checked against submitted/."""
    check_assignment(api, assignment)
    submitted = sorted(api.get_submitted_students(assignment))
    if not submitted:
        raise CourseError(
            f"no submissions of {assignment!r} in {api.coursedir.submitted_directory}/: "
            f"collect them first (python -m course collect {assignment})"
        )
    missing = sorted(set(students or ()) - set(submitted))
    if missing:
        raise CourseError(f"no submission of {assignment!r} from {', '.join(missing)}")
    return list(students) if students else submitted


def last_line(result):
    """The last line of what an NbGraderAPI call reported, for a one-line error.

    When that line only points at "the above traceback", the last exception named in the log is meant.
    """
    text = (result.get("error") or result.get("log") or "").strip()
    if not text:
        return "no details"
    last = text.splitlines()[-1]
    if "see the the above traceback" in last:
        raised = [line.strip() for line in (result.get("log") or "").splitlines() if EXCEPTION_LINE.match(line)]
        return next((line for line in reversed(raised) if "see the the above traceback" not in line), last)
    return last


def render_table(rows):
    """Rows of strings as aligned columns, the first row a header underlined with dashes."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(value.ljust(width) for value, width in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
