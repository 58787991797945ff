"""Autograde submissions into the gradebook with nbgrader's autograder."""

from .gradebook import open_gradebook, recorded_assignment
from .nbgrader_api import CourseError, check_assignment
from .schedule import apply_due_date


def students_to_grade(api, assignment, students=None):
    """The students to grade: all who submitted, or the given ones, checked against submitted/."""
    check_assignment(api, assignment)
    submitted = sorted(api.get_submitted_students(assignment))
    if not submitted:
        raise CourseError(f"no submissions of {assignment!r} in {api.coursedir.submitted_directory}/")
    missing = sorted(set(students or ()) - set(submitted))
    if missing:
        raise CourseError(f"no submission of {assignment!r} from {', '.join(missing)}")
    return list(students) if students else submitted


def grade(api, assignment, students=None, on_done=None, jobs=1):
    """Autograde each student's submission; return {student: nbgrader's result dict}.

    With jobs > 1, that many worker processes grade private copies (course/parallel.py).
    `on_done(student, result)` is called after each student, for progress reports.
    """
    students = students_to_grade(api, assignment, students)
    with open_gradebook(api) as gradebook:
        recorded_assignment(gradebook, assignment)
    apply_due_date(api, assignment)
    if jobs > 1:
        from .parallel import grade_parallel
        return grade_parallel(api, assignment, students, jobs, on_done)
    results = {}
    for student in students:
        results[student] = api.autograde(assignment, student, force=True, create=True)
        if on_done:
            on_done(student, results[student])
    return results
