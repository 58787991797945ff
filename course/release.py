"""Regenerate an assignment's student version from its source, and release it to the exchange."""

from .common import CourseError, check_assignment, exchange_root, last_line
from .schedule import apply_due_date


def generate(api, assignment):
    """Run nbgrader's generate_assignment: source/ -> release/, and record it in the gradebook."""
    check_assignment(api, assignment)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise CourseError(f"generate_assignment {assignment} failed: {last_line(result)}")
    return result


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
