"""Due dates from the course config, recorded in the gradebook.

nbgrader_config.py names each assignment's due date in `c.Course.due_dates`;
`release` and `grade` write them into the gradebook, where nbgrader's
autograder reads them and applies the late policy (course/plugins/late.py).
"""

from .gradebook import open_gradebook, recorded_assignment


def due_dates(api):
    """{assignment: due date text} from the course config (empty when none are set)."""
    section = api.config.get("Course", {})
    return dict(section.get("due_dates", {}))


def apply_due_date(api, assignment):
    """Record the configured due date of `assignment` in the gradebook; return it (or None)."""
    due = due_dates(api).get(assignment)
    with open_gradebook(api) as gradebook:
        recorded_assignment(gradebook, assignment)
        gradebook.update_or_create_assignment(assignment, duedate=due)
    return due
