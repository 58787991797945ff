"""Regenerate an assignment's student version from its source, and release it to the exchange."""

import os
from pathlib import Path

from .nbgrader_api import CourseError, check_assignment, last_line
from .schedule import apply_due_date


def generate(api, assignment):
    """Run nbgrader's generate_assignment: source/ -> release/, and record it in the gradebook."""
    check_assignment(api, assignment)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise CourseError(f"generate_assignment {assignment} failed: {last_line(result)}")
    return result


def exchange_root(api):
    """The exchange folder, checked: it must exist and be writable."""
    root = Path(api.config.Exchange.get("root", "/usr/local/share/nbgrader/exchange"))
    if not root.is_dir():
        raise CourseError(f"the exchange root {root} does not exist: create it or set c.Exchange.root")
    if not os.access(root, os.W_OK | os.X_OK):
        raise CourseError(f"the exchange root {root} is not writable")
    return root


def release(api, assignment):
    """Regenerate, record the due date, and release the assignment to the exchange."""
    check_assignment(api, assignment)
    root = exchange_root(api)
    generate(api, assignment)
    due = apply_due_date(api, assignment)
    result = api.release_assignment(assignment)
    if not result["success"]:
        raise CourseError(f"release of {assignment} failed: {last_line(result)}")
    return root, due
