"""Collect submissions from the exchange into submitted/."""

from .nbgrader_api import CourseError, check_assignment, last_line
from .release import exchange_root


def collect(api, assignment):
    """Collect every student's latest submission; return the students in submitted/."""
    check_assignment(api, assignment)
    exchange_root(api)
    result = api.collect(assignment, update=True)
    if not result["success"]:
        raise CourseError(f"collect of {assignment} failed: {last_line(result)}")
    return sorted(api.get_submitted_students(assignment))
