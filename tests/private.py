"""The lines of a source notebook that students must never see."""

import re

from conftest import REPO
from course import notebooks

HIDDEN = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
SOLUTION = re.compile(r"### BEGIN SOLUTION\n(.*?)### END SOLUTION", re.S)


def source_notebook(assignment):
    return notebooks.read(REPO / "source" / assignment / f"{assignment}.ipynb")


def private_lines(assignment, hidden=True, solutions=True):
    """Lines that only hidden tests (and, if asked, solutions and written model answers) contain.

    With solutions=False the reference solutions count as public: a student's feedback shows
    their own code, which may well be the same.
    """
    secret, public = set(), set()
    for cell in source_notebook(assignment).cells:
        written_answer = cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "markdown"
        blocks = (HIDDEN.findall(cell.source) if hidden else []) + (SOLUTION.findall(cell.source) if solutions else [])
        if written_answer and solutions:
            blocks.append(cell.source)
        secret.update(line.strip() for block in blocks for line in block.splitlines())
        if not written_answer:
            shown = HIDDEN.sub("", cell.source)
            public.update(line.strip() for line in (SOLUTION.sub("", shown) if solutions else shown).splitlines())
    return {line for line in secret - public if len(line) > 12}
