"""Feedback that explains each failure without giving the hidden tests away.

nbgrader's feedback copies the autograded notebook, hidden tests included
(nbgrader issues #917 and #1363). The ShowFailuresNotTests preprocessor, wired
into nbgrader's GenerateFeedback by nbgrader_config.py, removes the hidden-test
blocks from the test cells and replaces every traceback (which quotes the
failing line of the test) with the error's name and message alone. It also
lists the exercises, with their points, for the page's summary.

The hidden tests run in the student's kernel, next to the student's code, which
can read each one as it runs (IPython's cell events and history, the caller's
frame) and print it into any later output. So the page shows no output of the
kernel but each test cell's errors, and an error's message only when the test's
own asserts, Python or the grader could have written it: its literal text must
match, and each value formatted into it is at most FIELD_CHARS characters.

The page is written with the template in course/templates/course_feedback: its
summary names each exercise and links to its failure messages, it carries the
Content-Security-Policy of course/csp.py, and it loads no MathJax (the math
is MathML already), so it is self-contained and opens offline.
"""

import ast
import builtins
import functools
import re

from nbconvert.preprocessors import Preprocessor
from nbgrader.preprocessors import ClearHiddenTests
from traitlets import Bool

from ..csp import csp_meta
from . import execute, verify

EXERCISE_HEADING = re.compile(r"^#+\s*(Exercise\s+\d+\b.*?)\s*$", re.M)
FIELD_CHARS = 60  # characters a value formatted into a shown message may have
FIELD = f"(?s:.{{0,{FIELD_CHARS}}})"
MAX_MESSAGE_CHARS = 2000  # longer than any message a test of the course writes
KNOWN_ERRORS = {  # error names the page shows: Python's, the grader's and the libraries' the tests use; else "Error"
    *(name for name, value in vars(builtins).items() if isinstance(value, type) and issubclass(value, BaseException)),
    *("KernelFailure", "NotebookTimeout", "GraderError", "InvalidRecord", "CellTimeoutError", "DeadKernelError"),
    *("NotFittedError", "LinAlgError", "AxisError"),
}
PYTHON_MESSAGES = [  # what Python itself says when a test reads an answer that is not there
    r"name '[A-Za-z_]\w{0,59}' is not defined",
    r"'[\w.]{1,60}' object has no attribute '\w{1,60}'",
    r"module '[\w.]{1,60}' has no attribute '\w{1,60}'",
    "",
]
GRADER_MESSAGES = [re.escape(text).replace(r"\{\}", FIELD) for text in (*execute.MESSAGES, verify.UNREADABLE_RECORD)]
WITHHELD = "its message is left out here, as it did not come from the test: run your notebook to read it"


class ShowFailuresNotTests(Preprocessor):
    """Strip hidden tests, tracebacks and, unless show_outputs, every output but errors with checked messages."""

    enabled = Bool(True)
    show_outputs = Bool(
        False,
        help="Show the outputs of the student's cells on the feedback page. Off, the page shows each "
        "failed test's error alone, with its message only when the test wrote it: the student's code runs "
        "next to the hidden tests and can print them into any output it makes",
    ).tag(config=True)

    def preprocess(self, nb, resources):
        if not self.show_outputs:
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs = errors_only(cell)
        nb, resources = ClearHiddenTests(enforce_metadata=False).preprocess(nb, resources)
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.output_type == "error":
                    output.traceback = [f"{output.ename}: {output.evalue}"]
        resources["course"] = {
            "csp_meta": csp_meta(),
            "exercises": exercises(nb),
            "outputs_shown": self.show_outputs,
        }
        return nb, resources


def errors_only(cell):
    """A code cell's errors, each named and with a message its test (a test cell's own asserts and raises,
    never the student's), Python or the grader could have written; no other output."""
    messages = own_messages(cell.source if cell.metadata.get("nbgrader", {}).get("grade") else "")
    return [checked_error(output, messages) for output in cell.get("outputs", []) if output.output_type == "error"]


def checked_error(output, messages):
    """The error `output` as its name and message, each replaced when the kernel could have chosen it."""
    name, message = output.get("ename"), output.get("evalue")
    name = name if name in KNOWN_ERRORS else "Error"
    message = message if isinstance(message, str) else ""
    core = message.removesuffix(verify.RECHECK_FAILED)
    if len(core) > MAX_MESSAGE_CHARS or not messages.fullmatch(core):
        message = WITHHELD
    return verify.error_output(name, message)


@functools.lru_cache(maxsize=256)
def own_messages(source):
    """One pattern for every message a test cell's own asserts and raises, Python or the grader can show."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    texts = {  # names the cell binds to a text of its own, which its messages may format
        node.targets[0].id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
    }
    written = [
        message_pattern(node.msg if isinstance(node, ast.Assert) else node.exc.args[0], texts)
        for node in ast.walk(tree)
        if (isinstance(node, ast.Assert) and node.msg is not None)
        or (isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args)
    ]
    return re.compile("|".join(f"(?:{pattern})" for pattern in written + PYTHON_MESSAGES + GRADER_MESSAGES))


def message_pattern(node, texts):
    """A pattern for the text an expression makes: its literal parts as they are, a FIELD for each value."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(node.value)
    if isinstance(node, ast.JoinedStr):
        return "".join(message_pattern(part, texts) for part in node.values)
    if isinstance(node, ast.FormattedValue) and node.conversion == -1 and node.format_spec is None:
        named = texts.get(node.value.id) if isinstance(node.value, ast.Name) else None
        if isinstance(named, ast.Constant) and isinstance(named.value, str):
            return re.escape(named.value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return message_pattern(node.left, texts) + message_pattern(node.right, texts)
    return FIELD


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
