"""Feedback that explains each failure without giving the hidden tests away.

nbgrader's feedback copies the autograded notebook, hidden tests included
(nbgrader issues #917 and #1363). The ShowFailuresNotTests preprocessor, wired
into nbgrader's GenerateFeedback by nbgrader_config.py, removes the hidden-test
blocks from the test cells and replaces every traceback (which quotes the
failing line of the test) with the error's name and message alone. It also
lists the exercises, with their points, for the page's summary.

The page is written with the template in course/templates/course_feedback: its
summary names each exercise and links to its failure messages, it carries the
Content-Security-Policy of course/csp.py, and it loads no MathJax (the math
is MathML already), so it is self-contained and opens offline.
"""

import re

from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool

from ..csp import csp_meta

EXERCISE_HEADING = re.compile(r"^#+\s*(Exercise\s+\d+\b.*?)\s*$", re.M)


class ShowFailuresNotTests(Preprocessor):
    """Strip hidden tests and tracebacks; keep the student's code, outputs and failure messages."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        nb, resources = ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        resources["course"] = {"csp_meta": csp_meta(), "exercises": exercises(nb)}
        return nb, resources


def exercises(nb):
    """Each exercise with its graded cells' points, named by the last "Exercise N" heading above them.

    An exercise is a dict: title, anchor (its first graded cell), score, points, pending (a grade
    not given yet) and failed (the first test cell that lost points, whose message explains why).
    """
    found, title = {}, None
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            title = next(reversed(EXERCISE_HEADING.findall(cell.source)), title)
        grading = cell.metadata.get("nbgrader", {})
        if not grading.get("grade"):
            continue
        name = (title or grading["grade_id"]).replace("`", "")
        exercise = found.setdefault(
            name, dict(title=name, anchor=grading["grade_id"], score=0.0, points=0.0, pending=False, failed=None)
        )
        score, points = grading.get("score"), float(grading.get("points") or 0.0)
        exercise["points"] += points
        exercise["pending"] |= score is None
        exercise["score"] += score or 0.0
        if cell.cell_type == "code" and score is not None and score < points and exercise["failed"] is None:
            exercise["failed"] = grading["grade_id"]
    return list(found.values())
