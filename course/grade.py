"""Autograde submissions into the gradebook with nbgrader's autograder."""

from .gradebook import open_gradebook, recorded_assignment
from .nbgrader_api import CourseError, check_assignment
from .parallel import grade_parallel
from .sandbox import SandboxError, check_available
from .schedule import apply_due_date


def students_to_grade(api, assignment, students=None):
    """The students to grade: all who submitted, or the given ones, checked against submitted/."""
    check_assignment(api, assignment)
    submitted = sorted(api.get_submitted_students(assignment))
    if not submitted:
        raise CourseError(f"no submissions of {assignment!r} in {api.coursedir.submitted_directory}/: "
                          f"collect them first (python -m course collect {assignment})")
    missing = sorted(set(students or ()) - set(submitted))
    if missing:
        raise CourseError(f"no submission of {assignment!r} from {', '.join(missing)}")
    return list(students) if students else submitted


def grade(api, assignment, students=None, on_done=None, jobs=1, sandboxed=True, scheduler=None):
    """Autograde each student's submission; return {student: {"success": bool, "error": str}}.

    `jobs` local worker processes, or the Dask cluster at `scheduler`, grade
    private copies, each student's notebook in a sandbox unless `sandboxed` is
    False (course/parallel.py, course/sandbox.py). `on_done(student, result)` is
    called after each student, for progress reports.
    """
    students = students_to_grade(api, assignment, students)
    with open_gradebook(api) as gradebook:
        recorded_assignment(gradebook, assignment)
    apply_due_date(api, assignment)
    try:
        if sandboxed and scheduler is None:
            check_available()
        return grade_parallel(api, assignment, students, jobs, on_done, sandboxed, scheduler)
    except SandboxError as error:
        raise CourseError(str(error)) from None
