"""Due dates from the course config, and the late-submission policy.

nbgrader_config.py names each assignment's due date in `c.Course.due_dates`;
`release` and `grade` write them into the gradebook, where nbgrader's
autograder reads them. The policy: a late submission loses 10 % of its score
for every started day (24 hours) after the due date, down to zero.
"""

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float

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


class PercentPerDayLate(LateSubmissionPlugin):
    """Deduct `percent_per_day` % of the score for each started day late, at most the whole score."""

    percent_per_day = Float(10.0, help="percent of the score lost per started day late").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        days = math.ceil(total_seconds_late / 86400)
        penalty = min(score, score * self.percent_per_day / 100 * days)
        self.log.warning("%s is %d day(s) late: penalty %.2f of %.2f points", student_id, days, penalty, score)
        return penalty
