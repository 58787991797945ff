"""Attachments over a cap removed from a submission, with a visible note.

`StripCarriedIn`, the first autograde preprocessor, removes them; the caps on a
whole submission are checked before grading (course/limits.py). (Outputs saved
with code cells never reach grading: nbgrader's ClearOutput removes them first;
cell metadata goes too, with ClearMetadataPreprocessor.)
"""

import json
import re

from nbconvert.preprocessors import Preprocessor
from traitlets import Bool, Integer

ATTACHMENT_REFERENCE = re.compile(r"(?<![\w-])attachment:([^\s)\"'>]+)")


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
                    cell.source += (
                        f"\n\n*[the grader removed the attachment {name}: {size} bytes, over the "
                        f"limit of {self.max_attachment_bytes}]*"
                    )
            cell.source = ATTACHMENT_REFERENCE.sub(
                lambda ref, kept=attachments: ref[0] if ref[1] in kept else f"removed-{ref[0]}", cell.source
            )
        return nb, resources
