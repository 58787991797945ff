"""`make demo`: the whole term on sample students, in a demo course of its own.

The demo copies the course (config, tooling, sources) into a new folder and
works only there: it releases every assignment to an exchange inside that
folder; the sample students fetch them, answer and submit; then it collects,
grades, writes and returns feedback, writes the report and exports the grades,
all through the same functions as `python -m course`. The course it was
started from is left exactly as it was; the demo folder stays, for a look.
"""

import tempfile
from pathlib import Path

from . import samples
from .collect import collect
from .common import CourseError, open_api
from .export import export_csv
from .feedback import generate_feedback, return_feedback
from .grade import grade
from .release import release
from .report import write_report
from .scores import score_table

ASSIGNMENTS = ["logistic_regression", "logistic_regression_from_scratch", "logistic_regression_evaluation"]


def demo_folder(destination=None):
    """A new, empty folder for the demo course: `destination`, or a fresh one in the temporary folder."""
    if destination is None:
        return Path(tempfile.mkdtemp(prefix="course-demo-"))
    folder = Path(destination).resolve()
    if folder.exists() and any(folder.iterdir()):
        raise CourseError(f"{folder} is not empty: give the demo a new folder")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def run_demo(repository, destination=None, assignments=ASSIGNMENTS, out=print):
    """Run the demo in a copy of the course at `repository`; return the demo folder."""
    folder = demo_folder(destination)
    folder.chmod(0o755)  # the sample students read the exchange inside it
    root, exchange = folder / "course", folder / "exchange"
    root.mkdir()
    exchange.mkdir()
    exchange.chmod(0o777)
    out(f"== a demo course in {folder}: your course at {repository} is not touched")
    samples.copy_course(repository, root)
    # The sample students share your user id, so collect cannot check who owns an entry.
    api = open_api(root, Exchange={"root": str(exchange)}, ExchangeCollect={"check_owner": False})
    for assignment in assignments:
        out(f"== {assignment}: release to the exchange in {exchange}")
        release(api, assignment)
        for student, kind in samples.STUDENTS.items():
            home = folder / "home" / student
            home.mkdir(parents=True, exist_ok=True)
            samples.fetch_and_submit(root, exchange, api.coursedir.course_id, assignment, student, kind, home)
        out(f"== {assignment}: collected {', '.join(collect(api, assignment)[0])}; autograding")
        grade(api, assignment)
        out(score_table(api, assignment))
        generate_feedback(api, assignment)
        return_feedback(api, assignment)
        out(f"== {assignment}: feedback returned; report at {write_report(api, assignment)}")
    out(f"== grades exported to {export_csv(api, 'grades.csv')[0]}")
    out(f"""== where everything is, in {folder}:
   course/gradebook.db               the demo's gradebook
   course/feedback/STUDENT/...       each student's feedback pages (open them in a browser)
   course/reports/...                the grade reports
   course/grades.csv                 the exported grades
   "?" in a score means a written answer still waits for a hand grade (python -m course status).
   Remove the folder when you are done: rm -rf {folder}""")
    return folder
