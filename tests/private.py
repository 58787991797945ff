"""The lines of a source notebook that students must never see, and the text a page shows its reader."""

import html
import re

from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions

from course import notebooks

from conftest import REPO


def region(begin, end):
    """A block between two of nbgrader's delimiter lines (nbgrader finds a delimiter anywhere in a line)."""
    return re.compile(rf"^[^\n]*{re.escape(begin)}[^\n]*\n(.*?)^[^\n]*{re.escape(end)}", re.S | re.M)


HIDDEN = region(ClearHiddenTests().begin_test_delimeter, ClearHiddenTests().end_test_delimeter)
SOLUTION = region(ClearSolutions().begin_solution_delimeter, ClearSolutions().end_solution_delimeter)


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
    private = {line for line in secret - public if len(line) > 12}
    assert private, f"{assignment}: no private line found: do the delimiters match nbgrader's?"
    return private


def visible_text(path):
    """The text of the HTML page at `path` as a reader sees it (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))
