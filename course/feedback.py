"""Feedback pages for each autograded student, and their return through the exchange.

nbgrader writes the pages; its GenerateFeedback runs the course's
ShowFailuresNotTests (course/plugins/feedback.py), which keeps the hidden tests out.
"""

import shutil
from pathlib import Path

from .common import CourseError, check_assignment, exchange_root, last_line, students_to_grade

NOT_AUTOGRADED = "not autograded: its grading failed or has not run (see `course grade`)"


def generate_feedback(api, assignment, students=None):
    """Write feedback/<student>/<assignment>/<notebook>.html for each autograded student.

    Return (students with feedback, {student left out: why}): one student nbgrader
    cannot give feedback to costs only that student. Every autograded student at
    once goes through one nbgrader run (it starts its converter once, not once per
    student); whoever that run leaves without a page is then tried alone, which
    names the reason.
    """
    check_assignment(api, assignment)
    graded = set(api.get_autograded_students(assignment))
    if not graded:
        raise CourseError(f"no autograded submissions of {assignment!r}: grade them first")
    wanted = students_to_grade(api, assignment, students)
    left_out = {student: NOT_AUTOGRADED for student in wanted if student not in graded}
    todo = [student for student in wanted if student in graded]
    for student in todo:  # no page of an earlier run may pass for this run's
        shutil.rmtree(feedback_folder(api, student, assignment), ignore_errors=True)
    if len(todo) > 1 and set(todo) == graded:
        api.generate_feedback(assignment)
    written = []
    for student in todo:
        if has_feedback(api, student, assignment):
            written.append(student)
            continue
        result = api.generate_feedback(assignment, student)
        if result["success"] and has_feedback(api, student, assignment):
            written.append(student)
        else:  # nbgrader rejects the submission: no partial page may be returned
            shutil.rmtree(feedback_folder(api, student, assignment), ignore_errors=True)
            left_out[student] = f"nbgrader could not write its feedback: {last_line(result)}"
    return written, left_out


def feedback_folder(api, student, assignment):
    return Path(api.coursedir.format_path(api.coursedir.feedback_directory, student, assignment))


def has_feedback(api, student, assignment):
    """Whether `student` has a feedback page for every notebook nbgrader autograded."""
    graded = Path(api.coursedir.format_path(api.coursedir.autograded_directory, student, assignment))
    pages = feedback_folder(api, student, assignment)
    notebooks = [path.stem for path in graded.glob("*.ipynb")]
    return bool(notebooks) and all((pages / f"{name}.html").is_file() for name in notebooks)


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
    students = sorted(
        path.parent.name for path in Path(api.coursedir.root, api.coursedir.feedback_directory).glob(f"*/{assignment}")
    )
    if not students:
        raise CourseError(f"no feedback for {assignment!r} yet: run `course feedback {assignment}` first")
    returned, left_out = [], {}
    for student in students:
        folder = feedback_folder(api, student, assignment)
        problem = feedback_problem(folder)
        result = {"success": False} if problem else api.release_feedback(assignment, student_id=student)
        if result["success"]:
            returned.append(student)
        else:
            left_out[student] = problem or f"nbgrader could not return it: {last_line(result)}"
    return returned, left_out
