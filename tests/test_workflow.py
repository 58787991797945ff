"""A term end to end over nbgrader's real exchange, with students as separate operating-system users.

The instructor releases both assignments with `python -m course`; three students,
each with their own user id and home folder, fetch and submit with nbgrader's
own commands: alice solves everything but submits late, bob submits a blank
notebook and then a second one with typical mistakes (the later one counts),
cy submits the blank notebook. The instructor collects, grades, scores one
written answer by hand, generates and returns feedback, and exports the grades.
"""

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from conftest import ASSIGNMENTS, make_course
from course import samples

COURSE_ID = "logistic-regression"
STUDENTS = {"alice": 20001, "bob": 20002, "cy": 20003}
EXPECTED_AUTO = {  # autograded points per assignment; alice also gets all manual points
    "logistic_regression": {"alice": 17, "bob": 11, "cy": 0},
    "logistic_regression_from_scratch": {"alice": 11, "bob": 8, "cy": 0},
}
MANUAL_POINTS = {"logistic_regression": 3, "logistic_regression_from_scratch": 2}


def expected_raw(assignment, name):
    return EXPECTED_AUTO[assignment][name] + (MANUAL_POINTS[assignment] if name == "alice" else 0)
MANUAL = {"logistic_regression": "reflection", "logistic_regression_from_scratch": "comparison"}

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="students run as separate users, which needs root")


def course_cli(root, *args):
    result = subprocess.run([sys.executable, "-m", "course", "--root", str(root), *args], cwd=root,
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"course {' '.join(args)}: {result.stderr[-3000:]}"
    return result.stdout + result.stderr


def as_student(name, home, exchange, *args):
    user = (STUDENTS[name], STUDENTS[name])
    return samples.student_nbgrader(name, home, exchange, COURSE_ID, *args, user=user)


def can_read(name, path):
    """Whether student `name` can list (a folder) or read (a file) `path`."""
    code = f"import os, sys; p = {str(path)!r}; os.listdir(p) if os.path.isdir(p) else open(p).read()"
    result = subprocess.run(["setpriv", f"--reuid={STUDENTS[name]}", f"--regid={STUDENTS[name]}",
                             "--clear-groups", sys.executable, "-c", code], capture_output=True)
    return result.returncode == 0


@pytest.fixture(scope="module")
def term():
    base = Path(tempfile.mkdtemp(prefix="course-term-"))
    base.chmod(0o755)
    root, exchange = base / "course", base / "exchange"
    root.mkdir()
    exchange.mkdir()
    exchange.chmod(0o777)
    make_course(root)
    homes = {}
    for name, uid in STUDENTS.items():
        homes[name] = base / "home" / name
        homes[name].mkdir(parents=True)
        os.chown(homes[name], uid, uid)
    out = {"release": [course_cli(root, "--exchange", str(exchange), "release", a) for a in ASSIGNMENTS]}

    def submit(name, kind, assignment):
        samples.fetch_and_submit(root, exchange, COURSE_ID, assignment, name, kind, homes[name],
                                 user=(STUDENTS[name], STUDENTS[name]))

    for assignment in ASSIGNMENTS:
        submit("cy", "blank", assignment)
        submit("bob", "blank", assignment)
        time.sleep(1.1)  # nbgrader's submission timestamps have a resolution of a second
        submit("bob", "typical", assignment)
    # The due date has whole seconds: round up past bob's last submission, then wait past it.
    due = (datetime.now(timezone.utc) + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.Course.due_dates = {{a: {due!r} for a in {ASSIGNMENTS!r}}}\n")
    time.sleep(2.1)
    for assignment in ASSIGNMENTS:
        submit("alice", "perfect", assignment)

    for assignment in ASSIGNMENTS:
        out[f"collect {assignment}"] = course_cli(root, "--exchange", str(exchange), "collect", assignment)
        out[f"grade {assignment}"] = course_cli(root, "grade", assignment)
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gradebook:
            grade = gradebook.find_grade(MANUAL[assignment], assignment, assignment, "alice")
            grade.manual_score = grade.max_score  # as formgrader's grade API does
            grade.needs_manual_grade = False
            gradebook.db.commit()
        out[f"status {assignment}"] = course_cli(root, "status", assignment)
        course_cli(root, "feedback", assignment)
        course_cli(root, "--exchange", str(exchange), "return", assignment)
        for name in STUDENTS:
            fetched = as_student(name, homes[name], exchange, "fetch_feedback", assignment)
            assert fetched.returncode == 0, fetched.stderr[-2000:]
    course_cli(root, "export", "--to", "grades.csv")
    yield {"root": root, "exchange": exchange, "homes": homes, "out": out}
    shutil.rmtree(base, ignore_errors=True)


def test_files_land_where_nbgrader_puts_them(term):
    root, exchange, homes = term["root"], term["exchange"], term["homes"]
    for assignment in ASSIGNMENTS:
        notebook = f"{assignment}.ipynb"
        assert (root / "release" / assignment / notebook).is_file()
        assert (exchange / COURSE_ID / "outbound" / assignment / notebook).is_file()
        inbound = sorted(p.name for p in (exchange / COURSE_ID / "inbound").iterdir() if f"+{assignment}+" in p.name)
        assert len(inbound) == 4  # alice, cy, and bob twice
        for name, home in homes.items():
            assert (home / assignment / notebook).is_file()
            assert (root / "submitted" / name / assignment / notebook).is_file()
            assert (root / "submitted" / name / assignment / "timestamp.txt").is_file()
            assert (root / "autograded" / name / assignment / notebook).is_file()
            assert (root / "feedback" / name / assignment / f"{assignment}.html").is_file()
            fetched = list((home / assignment / "feedback").glob(f"*/{assignment}.html"))
            assert len(fetched) == 1, f"{name} should have fetched exactly their feedback"
    assert (root / "grades.csv").is_file()


def test_later_submission_wins(term):
    root = term["root"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gradebook:
        bob = gradebook.find_submission("logistic_regression", "bob")
        assert bob.score > 0, "bob's second, non-blank submission should be the one graded"


def test_grades_per_student_and_cell(term):
    root = term["root"]
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gradebook:
        for assignment, expected in EXPECTED_AUTO.items():
            for name in expected:
                submission = gradebook.find_submission(assignment, name)
                grades = {g.name: g for nb in submission.notebooks for g in nb.grades}
                total = sum(g.score for g in grades.values())
                assert total == pytest.approx(expected_raw(assignment, name)), (assignment, name)
                manual = grades[MANUAL[assignment]]
                assert manual.needs_manual_grade == (name == "bob"), (assignment, name)
            alice = {g.name: g for nb in gradebook.find_submission(assignment, "alice").notebooks for g in nb.grades}
            assert all(g.score == g.max_score for g in alice.values())
            bob = {g.name: g.score for nb in gradebook.find_submission(assignment, "bob").notebooks for g in nb.grades}
            lost = {"logistic_regression": ["test_scale_hours_guessed", "test_pass_probabilities",
                                            "test_sigmoid", "test_accuracy"],
                    "logistic_regression_from_scratch": ["test_log_loss", "test_predict_class"]}[assignment]
            assert all(bob[name] == 0 for name in lost)


def test_late_penalty_follows_the_documented_policy(term):
    """alice submitted less than a day late: she loses 10 % of her autograded score."""
    rows = list(csv.DictReader(open(term["root"] / "grades.csv")))
    for assignment, expected in EXPECTED_AUTO.items():
        for name, auto in expected.items():
            row = next(r for r in rows if r["assignment"] == assignment and r["student_id"] == name)
            penalty = 0.1 * auto if name == "alice" else 0.0
            raw = expected_raw(assignment, name)
            assert float(row["raw_score"]) == pytest.approx(raw)
            assert float(row["late_submission_penalty"]) == pytest.approx(penalty)
            assert float(row["score"]) == pytest.approx(raw - penalty)
    for assignment in ASSIGNMENTS:
        status = term["out"][f"status {assignment}"]
        alice = next(line for line in status.splitlines() if line.startswith("alice"))
        bob = next(line for line in status.splitlines() if line.startswith("bob"))
        assert "late" in alice and "late" not in bob and MANUAL[assignment] in bob


def test_students_cannot_find_each_others_work(term):
    """The exchange's inbound and feedback folders cannot be listed by students, and the entries in
    them have random names (nbgrader's design): bob cannot find alice's submission or feedback."""
    exchange = term["exchange"]
    inbound, feedback = exchange / COURSE_ID / "inbound", exchange / COURSE_ID / "feedback"
    assert can_read("bob", exchange / COURSE_ID / "outbound")  # the control: bob can read the release
    assert not can_read("bob", inbound) and not can_read("bob", feedback)
    for submission in inbound.iterdir():
        assert len(submission.name.rsplit("+", 1)[-1]) >= 12  # the random part of the name
    assert all(len(page.stem) >= 32 for page in feedback.iterdir())  # named by a hash


def test_grade_shows_progress_and_summary(term):
    out = term["out"]["grade logistic_regression"]
    assert "graded 3 of 3 submissions of logistic_regression" in out
    assert "3/3 done, 0 left, ETA 0:00" in out and "1/3 done, 2 left, ETA" in out
