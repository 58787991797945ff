"""Due dates from the course config, recorded in the gradebook.

nbgrader_config.py names each assignment's due date in `c.Course.due_dates`;
`release` and `grade` write them into the gradebook, where nbgrader's
autograder reads them and applies the late policy (course/plugins/late.py).
"""

from traitlets import Dict, Unicode
from traitlets.config import Configurable

from .gradebook import open_gradebook, recorded_assignment


class Course(Configurable):
    """The course's schedule."""

    due_dates = Dict(
        value_trait=Unicode(),
        help="Each assignment's due date, e.g. {'logistic_regression': "
        "'2027-01-15 23:59:00 Europe/Berlin'}; a submission after it is late. None set: nothing is late",
    ).tag(config=True)


def due_dates(api):
    """{assignment: due date text} from the course config (empty when none are set)."""
    return dict(Course(config=api.config).due_dates)


def apply_due_date(api, assignment):
    """Record the configured due date of `assignment` in the gradebook; return the recorded one (or None).

    With none configured, a due date set in Formgrader stays.
    """
    due = due_dates(api).get(assignment)
    with open_gradebook(api) as gradebook:
        recorded = recorded_assignment(gradebook, assignment)
        if due is None:
            return recorded.duedate
        gradebook.update_or_create_assignment(assignment, duedate=due)
    return due
