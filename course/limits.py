"""Caps on what one submission may bring, so that no student's files cost the class.

`SubmissionLimits` bounds a submission's folder and each notebook in it: the
coordinator checks them before a submission is packed for a grading worker
(course/grade.py), and `course collect` before it copies an exchange entry.
`StripCarriedIn`, the first autograde preprocessor, removes attachments over a
cap with a visible note. (Outputs saved with code cells never reach grading:
nbgrader's ClearOutput removes them first; cell metadata goes too, with
ClearMetadataPreprocessor.)
"""

import json
import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer
from traitlets.config import Configurable

from .studentfiles import InvalidSubmission, walk

ATTACHMENT_REFERENCE = re.compile(r"(?<![\w-])attachment:([^\s)\"'>]+)")


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
                raise InvalidSubmission(f"{relative} has {info.st_size} bytes, over the limit of "
                                        f"{self.max_notebook_bytes} (c.SubmissionLimits.max_notebook_bytes)")
            if total > self.max_submission_bytes:
                raise InvalidSubmission(f"the submission has more than {self.max_submission_bytes} bytes "
                                        "(c.SubmissionLimits.max_submission_bytes)")


class StripCarriedIn(Preprocessor):
    """Remove each attachment over `max_attachment_bytes`, leaving a line that says so at the end of its cell.

    A reference to an attachment the cell does not hold (removed, or never there)
    is renamed `removed-attachment:`, since nbconvert refuses to render it.
    """

    enabled = Bool(True)
    max_attachment_bytes = Integer(
        1_000_000, help="Bytes an attachment of a submitted cell may have; larger ones are removed with a note"
    ).tag(config=True)

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            if cell.cell_type == "code":  # code cells hold no attachments; their text is the student's code
                continue
            attachments = cell.get("attachments", {})
            for name in sorted(attachments):
                size = len(json.dumps(attachments[name]))
                if size > self.max_attachment_bytes:
                    del attachments[name]
                    cell.source += (f"\n\n*[the grader removed the attachment {name}: {size} bytes, over the "
                                    f"limit of {self.max_attachment_bytes}]*")
            cell.source = ATTACHMENT_REFERENCE.sub(
                lambda ref: ref[0] if ref[1] in attachments else f"removed-{ref[0]}", cell.source)
        return nb, resources
