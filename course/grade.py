"""Autograde submissions into the gradebook with nbgrader's autograder."""

from pathlib import Path

from .common import students_to_grade
from .gradebook import check_gradebook, index_lookups, open_gradebook, recorded_assignment
from .graders import grading_claims, in_turns
from .limits import SubmissionLimits
from .parallel import check_sandbox, grade_parallel
from .schedule import apply_due_date
from .studentfiles import InvalidSubmission


def grade(
    api, assignment, students=None, on_done=None, jobs=1, sandboxed=True, scheduler=None, timings=None, on_wait=None
):
    """Autograde each student's submission; return {student: {"success": bool, "error": str}}.

    `jobs` local worker processes, or the Dask cluster at `scheduler`, grade
    private copies, each student's notebook in a sandbox unless `sandboxed` is
    False (course/parallel.py, course/sandbox/). `on_done(student, result)` is
    called after each student, for progress reports. A submission over the caps of
    c.SubmissionLimits (course/limits.py) fails here, before it is packed for a worker.
    `timings` names a file for each student's seconds per grading stage, as JSON.

    Another run grading into the same gradebook (course/graders.py): on SQLite this one stops
    with a CourseError; on PostgreSQL the students both runs grade are graded by one run after
    the other, and `on_wait(students)` is told when this run waits for them.
    """
    students = students_to_grade(api, assignment, students)
    if sandboxed and scheduler is None:
        check_sandbox()
    check_gradebook(api)  # before the claims: no lock file beside a gradebook that is not there
    # Claimed before this run reads the gradebook: a run stopped mid-write cannot hold this one up
    with grading_claims(api.coursedir.db_url, api.coursedir.course_id, f"course grade {assignment}") as claims:
        with open_gradebook(api) as gradebook:
            recorded_assignment(gradebook, assignment)
            index_lookups(gradebook)
        apply_due_date(api, assignment)
        refused = refusals(api, assignment, students)
        for student, result in refused.items():
            if on_done:
                on_done(student, result)

        def recorded(student, result):  # its results are in the gradebook: another run may grade it now
            claims.release(student)
            if on_done:
                on_done(student, result)

        results = dict(refused)
        accepted = [student for student in students if student not in refused]
        for batch in in_turns(claims, accepted, on_wait):
            try:
                results.update(grade_parallel(api, assignment, batch, jobs, recorded, sandboxed, scheduler, timings))
            finally:
                for student in batch:
                    claims.release(student)
        return results


def refusals(api, assignment, students):
    """{student: failed result} for the submissions not to hand to a worker.

    Those over the caps of c.SubmissionLimits, and those nbgrader would fail on with
    a puzzling message: a released notebook replaced by a folder, or none of the
    released notebooks there (renamed).
    """
    limits, refused = SubmissionLimits(config=api.config), {}
    released = sorted(
        path.name for path in Path(api.coursedir.root, api.coursedir.release_directory, assignment).glob("*.ipynb")
    )
    for student in students:
        folder = Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
        try:
            limits.check(folder)  # refuses links too
            for name in released:
                if (folder / name).is_dir():
                    raise InvalidSubmission(f"{name} is a folder, not a notebook")
            if not any((folder / name).is_file() for name in released):
                found = ", ".join(sorted(path.name for path in folder.glob("*.ipynb"))) or "none"
                raise InvalidSubmission(
                    f"{' and '.join(released)} {'are' if len(released) > 1 else 'is'} missing "
                    f"(notebooks submitted: {found})"
                )
        except InvalidSubmission as error:
            refused[student] = {"success": False, "error": f"InvalidSubmission: {error}"}  # as a worker would say
    return refused
