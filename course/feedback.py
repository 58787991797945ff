"""Feedback HTML that explains each failure without giving the hidden tests away.

nbgrader's feedback copies the autograded notebook, hidden tests included
(nbgrader issues #917 and #1363). The ShowFailuresNotTests preprocessor, wired
into nbgrader's GenerateFeedback by nbgrader_config.py, removes the hidden-test
blocks from the test cells and replaces every traceback (which quotes the
failing line of the test) with the error's name and message alone. It also
lists the exercises, with their points, for the page's summary.

The page is written with the template in course/templates/course_feedback: its
summary names each exercise and links to its failure messages, it carries the
Content-Security-Policy of course/safehtml.py, and it loads no MathJax (the math
is MathML already), so it is self-contained and opens offline.
"""

import re
import shutil
from pathlib import Path

from nbgrader.preprocessors import ClearHiddenTests
from nbconvert.preprocessors import Preprocessor
from traitlets import Bool

from .grade import students_to_grade
from .common import CourseError, check_assignment, exchange_root, last_line
from .safehtml import csp_meta

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
        exercise = found.setdefault(name, dict(title=name, anchor=grading["grade_id"], score=0.0, points=0.0,
                                               pending=False, failed=None))
        score, points = grading.get("score"), float(grading.get("points") or 0.0)
        exercise["points"] += points
        exercise["pending"] |= score is None
        exercise["score"] += score or 0.0
        if cell.cell_type == "code" and score is not None and score < points and exercise["failed"] is None:
            exercise["failed"] = grading["grade_id"]
    return list(found.values())


def generate_feedback(api, assignment, students=None):
    """Write feedback/<student>/<assignment>/<notebook>.html for each autograded student, one by one.

    Return (students with feedback, {student left out: why}): one student nbgrader
    cannot give feedback to costs only that student.
    """
    check_assignment(api, assignment)
    graded = set(api.get_autograded_students(assignment))
    if not graded:
        raise CourseError(f"no autograded submissions of {assignment!r}: grade them first")
    written, left_out = [], {}
    for student in students_to_grade(api, assignment, students):
        folder = Path(api.coursedir.format_path(api.coursedir.feedback_directory, student, assignment))
        if student not in graded:
            left_out[student] = "not autograded: its grading failed or has not run (see `course grade`)"
            continue
        result = api.generate_feedback(assignment, student)
        if result["success"]:
            written.append(student)
        else:  # nbgrader rejects the submission: no partial page may be returned
            shutil.rmtree(folder, ignore_errors=True)
            left_out[student] = f"nbgrader could not write its feedback: {last_line(result)}"
    return written, left_out


def feedback_problem(folder):
    """Why nbgrader cannot return the feedback in `folder`, or None."""
    for name in ("submission_secret.txt", "timestamp.txt"):
        path = folder / name
        if path.is_symlink() or not path.is_file():
            return f"its {name} is missing"
        try:
            text = path.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            return f"its {name} is not text"
        if not text:
            return f"its {name} is empty"
    return None


def return_feedback(api, assignment):
    """Put each student's generated feedback of `assignment` in the exchange, one student at a time.

    Return (students returned to, {student left out: why}): a student whose
    submission_secret.txt or timestamp.txt is missing or broken costs only that student.
    """
    check_assignment(api, assignment)
    exchange_root(api)
    students = sorted(path.parent.name for path in
                      Path(api.coursedir.root, api.coursedir.feedback_directory).glob(f"*/{assignment}"))
    if not students:
        raise CourseError(f"no feedback for {assignment!r} yet: run `course feedback {assignment}` first")
    returned, left_out = [], {}
    for student in students:
        folder = Path(api.coursedir.format_path(api.coursedir.feedback_directory, student, assignment))
        problem = feedback_problem(folder)
        result = {"success": False} if problem else api.release_feedback(assignment, student_id=student)
        if result["success"]:
            returned.append(student)
        else:
            left_out[student] = problem or f"nbgrader could not return it: {last_line(result)}"
    return returned, left_out
