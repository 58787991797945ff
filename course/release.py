"""Regenerate an assignment's student version from its source."""

from .nbgrader_api import CourseError, check_assignment


def generate(api, assignment):
    """Run nbgrader's generate_assignment: source/ -> release/, and record it in the gradebook."""
    check_assignment(api, assignment)
    result = api.generate_assignment(assignment, force=True, create=True)
    if not result["success"]:
        raise CourseError(f"generate_assignment {assignment} failed:\n{result.get('error') or result['log']}")
    return result
