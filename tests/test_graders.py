"""Several graders on an SQLite gradebook, and a late student's total in every output.

- A second `course grade` while one runs stops at once with one line naming the run that holds
  the gradebook, and changes nothing; the first run finishes as if alone. The course's db_url
  names a file outside the course root, and an audit hook in every Python process of the runs
  (workers included) records who opens that file: only the coordinators do.
- A late student's total (raw score, late penalty, final score) is the same in grade's summary,
  status, scores, the report, the CSV export and the Canvas export.
"""

import csv
import hashlib
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from course import notebooks
from course.__main__ import main
from course.common import open_api
from course.gradebook import student_totals

from conftest import REPO, make_course, reference_answers, release_notebook

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT = "logistic_regression"
LATE, ON_TIME = "late_student", "on_time_student"
AUDIT_HOOK = """\
import os, sys

_watched, _log = os.environ["AUDIT_WATCH"], os.environ["AUDIT_LOG"]


def _record(event, args):
    if event in ("open", "sqlite3.connect") and args and isinstance(args[0], (str, bytes, os.PathLike)):
        path = os.fsdecode(args[0])
        if path.startswith(_watched):
            with open(_log, "a") as log:  # an open of another file: not recorded
                log.write(f"{os.getpid()} {event} {path}\\n")


sys.addaudithook(_record)
"""


# ---- One SQLite gradebook, two runs ----


def launch(root, *args, env):
    return subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def wait_until(condition, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.05)


def digest(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def sqlite_term(tmp_path_factory):
    """Two students, one of them late, graded by one run while a second run tries the same gradebook."""
    base = tmp_path_factory.mktemp("graders")
    root, elsewhere, hook = base / "course", base / "elsewhere", base / "hook"
    elsewhere.mkdir()
    hook.mkdir()
    make_course(root)
    gradebook = elsewhere / "grades.sqlite"
    assert main(["--root", str(root), "copy-gradebook", "--to", f"sqlite:///{gradebook}"]) == 0
    (root / "gradebook.db").unlink()
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=30)  # the late student: 2 started days
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(
            f'\nc.CourseDirectory.db_url = "sqlite:///{gradebook}"\n'
            f"c.Course.due_dates = {{{ASSIGNMENT!r}: '{due:%Y-%m-%d %H:%M:%S} UTC'}}\n"
        )
    solved = notebooks.fill(release_notebook(root, ASSIGNMENT), reference_answers(ASSIGNMENT))
    for student, when in ((ON_TIME, due - timedelta(hours=1)), (LATE, datetime.now(UTC))):
        folder = notebooks.write_submission(solved, root, student, ASSIGNMENT).parent
        (folder / "timestamp.txt").write_text(f"{when:%Y-%m-%d %H:%M:%S.%f} UTC")
    (hook / "sitecustomize.py").write_text(AUDIT_HOOK)
    log = base / "opened.log"
    env = dict(os.environ, PYTHONPATH=str(hook), AUDIT_WATCH=str(gradebook), AUDIT_LOG=str(log))
    lock = Path(f"{gradebook}.lock")

    first = launch(root, "grade", ASSIGNMENT, "--jobs", "2", env=env)
    try:
        wait_until(lambda: lock.is_file() and f"pid {first.pid} " in lock.read_text(), "the first run's lock")
        os.kill(first.pid, signal.SIGSTOP)  # mid-run, whatever it is doing, until the second run has tried
        try:
            before = digest(gradebook)
            trying = launch(root, "grade", ASSIGNMENT, env=env)
            second = subprocess.CompletedProcess(trying.args, None, *trying.communicate(timeout=600))
            second.returncode = trying.returncode
            unchanged = digest(gradebook) == before
        finally:
            os.kill(first.pid, signal.SIGCONT)
        stdout, stderr = first.communicate(timeout=1800)
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
            first.wait()
    opened = [line.split(" ", 2) for line in log.read_text().splitlines()] if log.exists() else []
    return {
        "root": root,
        "gradebook": gradebook,
        "first": subprocess.CompletedProcess(first.args, first.returncode, stdout, stderr),
        "first pid": first.pid,
        "second": second,
        "second pid": trying.pid,
        "unchanged by the second run": unchanged,
        "opened": opened,
    }


def test_a_second_run_on_an_sqlite_gradebook_in_use_stops_with_one_line(sqlite_term):
    second, gradebook, pid = sqlite_term["second"], sqlite_term["gradebook"], sqlite_term["first pid"]
    assert second.returncode == 1 and second.stdout == ""
    lines = second.stderr.strip().splitlines()
    assert len(lines) == 1, second.stderr
    assert re.fullmatch(
        rf"error: the gradebook {re.escape(str(gradebook))} is in use: course grade {ASSIGNMENT} \(pid {pid} on "
        r"\S+, since [\d-]+ [\d:]+\) is writing to it; run this again when it has finished",
        lines[0],
    ), lines[0]
    assert sqlite_term["unchanged by the second run"]


def test_the_first_run_finishes_as_if_alone_and_nothing_is_corrupt(sqlite_term):
    first, gradebook = sqlite_term["first"], sqlite_term["gradebook"]
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "graded 2 of 2 submissions" in first.stdout
    with sqlite3.connect(gradebook) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Gradebook(f"sqlite:///{gradebook}", "logistic-regression") as book:
        submissions = {s.student.id: s for s in book.assignment_submissions(ASSIGNMENT)}
        assert sorted(submissions) == [LATE, ON_TIME]
        assert {s: submissions[s].score for s in submissions} == {LATE: 17.0, ON_TIME: 17.0}
    assert Path(f"{gradebook}.lock").read_text() == "", "the lock file is emptied when the run ends"


def test_only_the_coordinators_open_a_gradebook_at_a_path(sqlite_term):
    """The workers load the course's config too, with its db_url, and grade in a private gradebook."""
    opened = sqlite_term["opened"]
    pids = {int(pid) for pid, _, _ in opened}
    assert any(event == "sqlite3.connect" for _, event, _ in opened), "the audit hook saw the coordinator"
    assert sqlite_term["first pid"] in pids and pids <= {sqlite_term["first pid"], sqlite_term["second pid"]}, opened


# ---- A late student in every output ----


def test_a_late_students_total_is_the_same_everywhere(sqlite_term, capsys, tmp_path):
    root, first = sqlite_term["root"], sqlite_term["first"]
    api = open_api(root)
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        totals = student_totals(gradebook, ASSIGNMENT)
    late, on_time = totals[LATE], totals[ON_TIME]
    # 30 hours late: 2 started days at 10 % a day of the 17 autograded points (the written answer waits)
    assert late.raw == 17.0 and late.penalty == pytest.approx(3.4) and late.final == pytest.approx(13.6)
    assert on_time.penalty == 0.0 and on_time.final == 17.0

    mean = (late.final + on_time.final) / 2
    assert f"mean score {mean:.1f}" in first.stdout and f"{mean:.1f}" != f"{(late.raw + on_time.raw) / 2:.1f}"

    def run(*args):
        status = main(["--root", str(root), *args])
        out = capsys.readouterr()
        assert status == 0, out.out + out.err
        return out.out.splitlines()

    row = next(line for line in run("status", ASSIGNMENT) if line.startswith(LATE + " "))
    assert re.search(rf"\b30h\d\dm late\b.*  {re.escape(late.text())}$", row), row
    assert late.text() == "13.6/20 (17 less 3.4 late)"

    scores = {
        cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in run("scores", ASSIGNMENT))
    }
    assert scores["exercise"] == [LATE, ON_TIME]
    assert scores["late penalty"] == [f"-{late.penalty:g}"]
    assert scores["total"] == [f"{late.final:g}/20", f"{on_time.final:g}/20"]

    run("report", ASSIGNMENT)
    page = (root / "reports" / ASSIGNMENT / "index.html").read_text()
    assert f'<tr><td>{LATE}</td><td class="num">{late.final:g}</td><td class="num">{late.penalty:g}</td></tr>' in page

    run("export")
    rows = {row["student_id"]: row for row in csv.DictReader(open(root / "grades.csv", newline=""))}
    exported = [float(rows[LATE][column]) for column in ("raw_score", "late_submission_penalty", "score")]
    assert exported == pytest.approx([late.raw, late.penalty, late.final])

    roster = tmp_path / "roster.csv"
    roster.write_text(f"student_id,SIS Login ID\n{LATE},l1\n{ON_TIME},o1\n")
    run("export", "--format", "canvas", "--roster", str(roster))
    canvas = list(csv.reader(open(root / "canvas_grades.csv", newline="")))
    column = canvas[0].index(ASSIGNMENT)
    assert {row[3]: float(row[column]) for row in canvas[2:]} == pytest.approx({"l1": late.final, "o1": on_time.final})
