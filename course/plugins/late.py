"""The late-submission policy, which nbgrader_config.py names for nbgrader's autograder.

A late submission loses `percent_per_day` % of its score for every started day
(24 hours) after the due date, down to zero. The due dates are recorded by course/schedule.py.
"""

import math

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Float


class PercentPerDayLate(LateSubmissionPlugin):
    """Deduct `percent_per_day` % of the score for each started day late, at most the whole score."""

    percent_per_day = Float(10.0, help="Percent of the score lost per started day (24 hours) late").tag(config=True)

    def late_submission_penalty(self, student_id, score, total_seconds_late):
        days = math.ceil(total_seconds_late / 86400)
        penalty = min(score, score * self.percent_per_day / 100 * days)
        self.log.warning("%s is %d day(s) late: penalty %.2f of %.2f points", student_id, days, penalty, score)
        return penalty
