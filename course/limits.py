"""Caps on what one submission may bring, so that no student's files cost the class.

`SubmissionLimits` bounds a submission's folder and each notebook in it: the
coordinator checks them before a submission is packed for a grading worker
(course/grade.py), and `course collect` before it copies an exchange entry.
Attachments over their cap are removed while grading (course/plugins/attachments.py).
"""

from traitlets import Integer
from traitlets.config import Configurable

from .studentfiles import InvalidSubmission, walk


class SubmissionLimits(Configurable):
    """Size caps on a submitted folder and its notebooks."""

    max_submission_bytes = Integer(
        20_000_000, help="Bytes a submission folder may hold in all; a larger one is not collected or graded"
    ).tag(config=True)
    max_notebook_bytes = Integer(
        10_000_000, help="Bytes a submitted notebook may have; a larger one is not graded and its student is told"
    ).tag(config=True)

    def check(self, folder):
        """Raise InvalidSubmission unless `folder` holds only plain files within the caps."""
        total = 0
        for relative, info in walk(folder):
            total += info.st_size
            if relative.endswith(".ipynb") and info.st_size > self.max_notebook_bytes:
                raise InvalidSubmission(
                    f"{relative} has {info.st_size} bytes, over the limit of "
                    f"{self.max_notebook_bytes} (c.SubmissionLimits.max_notebook_bytes)"
                )
            if total > self.max_submission_bytes:
                raise InvalidSubmission(
                    f"the submission has more than {self.max_submission_bytes} bytes "
                    "(c.SubmissionLimits.max_submission_bytes)"
                )
