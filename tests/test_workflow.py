"""A term end to end over nbgrader's real exchange, with students as separate operating-system users.

The instructor releases two assignments with `python -m course`; three students,
each with their own user id and home folder, fetch and submit with nbgrader's
own commands: alice solves everything but submits late, bob submits a blank
notebook and then a second one with typical mistakes (the later one counts),
cy submits the blank notebook. The instructor collects, grades, scores one
written answer by hand, generates and returns feedback, and exports the grades.

Students also attack the exchange, where their inbound entries are their own
files: cy forges an entry in alice's name and one in the name of someone with
no account; alice back-dates her timestamp.txt and bob garbles his; dan plants
a symbolic link to the instructor's source notebook in his entry; eve empties
her submission_secret.txt and deletes her timestamp.txt, fay garbles her
secret, gus deletes his. (dan, eve, fay and gus make their entries in
nbgrader's layout as themselves, without nbgrader's slower submit.) alice, bob
and cy keep their grades and get feedback.
"""

import csv
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import nbformat
import pytest
from nbgrader.api import Gradebook

from course import samples

from conftest import make_course, nss_accounts

COURSE_ID = "logistic-regression"
STUDENTS = {"alice": 20001, "bob": 20002, "cy": 20003}
ATTACKERS = {"dan": 20004, "eve": 20005, "fay": 20006, "gus": 20007}  # submit the first assignment only
UIDS = {**STUDENTS, **ATTACKERS}
ATTACKED = "logistic_regression"
# Two assignments, the attacked one and another: a term of several assignments (due dates, returns, an
# export with both). The exchange and the students' accounts work alike for every assignment; each one's
# whole term runs in the demo (tests/conftest.py) and its grading in the catalogue tests.
ASSIGNMENTS = [ATTACKED, "logistic_regression_evaluation"]
BACK_DATED = "2019-12-31 12:00:00.000000 UTC"
EXPECTED_AUTO = {  # autograded points per assignment; alice also gets all manual points
    "logistic_regression": {"alice": 17, "bob": 11, "cy": 0},
    "logistic_regression_evaluation": {"alice": 17, "bob": 11, "cy": 0},
}
MANUAL_POINTS = {"logistic_regression": 3, "logistic_regression_evaluation": 3}


def expected_raw(assignment, name):
    return EXPECTED_AUTO[assignment][name] + (MANUAL_POINTS[assignment] if name == "alice" else 0)


MANUAL = {
    "logistic_regression": "reflection",
    "logistic_regression_evaluation": "costs",
}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sandbox,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="students run as separate users, which needs root"),
]


def course_cli(root, *args, status=0, env=None):
    result = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=1800,
        env=env,
    )
    assert result.returncode == status, f"course {' '.join(args)}: {result.stdout[-2000:]} {result.stderr[-3000:]}"
    return result.stdout + result.stderr


def as_student(name, home, exchange, *args):
    user = (UIDS[name], UIDS[name])
    return samples.student_nbgrader(name, home, exchange, COURSE_ID, *args, user=user)


def concurrently(*actions):
    """Run each action in a thread of its own; return their results, in order (a failure is raised)."""
    with ThreadPoolExecutor(len(actions)) as pool:
        return [future.result() for future in [pool.submit(action) for action in actions]]


def run_as(name, code):
    """Run Python `code` as student `name`; return the completed process."""
    return samples.run_python(["-c", code], user=(UIDS[name], UIDS[name]))


def can_read(name, path):
    """Whether student `name` can list (a folder) or read (a file) `path`."""
    return (
        run_as(name, f"import os; p = {str(path)!r}; os.listdir(p) if os.path.isdir(p) else open(p).read()").returncode
        == 0
    )


def tamper(name, code):
    """Student `name` runs `code` on the exchange (they own their entries); it must work."""
    result = run_as(name, code)
    assert result.returncode == 0, result.stderr[-2000:]


def entry_of(exchange, name, assignment):
    """The latest inbound entry of `assignment` that student `name` made (forged ones in their name aside)."""
    return max(
        (
            path
            for path in (exchange / COURSE_ID / "inbound").glob(f"{name}+{assignment}+*")
            if path.stat().st_uid == UIDS[name]
        ),
        key=lambda path: path.stat().st_ctime,
    )


def make_entry(root, exchange, owner, named, kind, when):
    """An inbound entry of the attacked assignment as nbgrader's submit lays it out, made by student `owner`
    in the name of `named` (a process each, cheaper than nbgrader's own submit)."""
    entry = exchange / COURSE_ID / "inbound" / f"{named}+{ATTACKED}+{when}+{secrets.token_hex(8)}"
    notebook = nbformat.writes(samples.sample_notebook(root, ATTACKED, kind))
    tamper(
        owner,
        f"import os; os.mkdir({str(entry)!r}); "
        f"open({str(entry / (ATTACKED + '.ipynb'))!r}, 'w').write({notebook!r}); "
        f"open({str(entry / 'timestamp.txt')!r}, 'w').write({when!r}); "
        f"open({str(entry / 'submission_secret.txt')!r}, 'w').write({secrets.token_hex(64)!r})",
    )
    return entry


def attack(root, exchange):
    """The attackers submit the first assignment and tamper with the exchange; return the forged entries."""
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    dan, eve, fay, gus = (
        make_entry(root, exchange, name, name, "perfect" if name == "dan" else "blank", now) for name in ATTACKERS
    )
    source = root / "source" / ATTACKED / f"{ATTACKED}.ipynb"
    tamper("dan", f"import os; os.symlink({str(source)!r}, {str(dan / 'answers.ipynb')!r})")
    tamper(
        "eve",
        f"import os; open({str(eve / 'submission_secret.txt')!r}, 'w').close(); "
        f"os.remove({str(eve / 'timestamp.txt')!r})",
    )
    tamper("fay", f"open({str(fay / 'submission_secret.txt')!r}, 'wb').write(bytes(range(128, 256)))")
    bob = entry_of(exchange, "bob", ATTACKED)
    tamper("bob", f"open({str(bob / 'timestamp.txt')!r}, 'w').write('the day before the deadline')")
    tamper("gus", f"import os; os.remove({str(gus / 'submission_secret.txt')!r})")
    later = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S.%f UTC")
    return [make_entry(root, exchange, "cy", named, "blank", later) for named in ("alice", "nobody_here")]


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
        samples.fetch_and_submit(
            root, exchange, COURSE_ID, assignment, name, kind, homes[name], user=(UIDS[name], UIDS[name])
        )

    def cy():
        for assignment in ASSIGNMENTS:
            submit("cy", "blank", assignment)

    def bob():
        for assignment in ASSIGNMENTS:
            submit("bob", "blank", assignment)
        time.sleep(1.1)  # nbgrader's submission timestamps have a resolution of a second
        for assignment in ASSIGNMENTS:
            submit("bob", "typical", assignment)

    concurrently(cy, bob)  # as students do: each in their own home, under their own user id
    forged = attack(root, exchange)
    # The due date has whole seconds: round up past bob's last submission, then wait past it.
    due = (datetime.now(UTC) + timedelta(seconds=1)).strftime("%Y-%m-%d %H:%M:%S UTC")
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(f"\nc.Course.due_dates = {{a: {due!r} for a in {ASSIGNMENTS!r}}}\n")
    time.sleep(2.1)
    for assignment in ASSIGNMENTS:
        submit("alice", "perfect", assignment)
    alice = entry_of(exchange, "alice", ATTACKED).name
    tamper(
        "alice", f"open({str(exchange / COURSE_ID / 'inbound' / alice / 'timestamp.txt')!r}, 'w').write({BACK_DATED!r})"
    )

    with_accounts = nss_accounts(base, {name: (uid, base / "home" / name) for name, uid in UIDS.items()})
    for assignment in ASSIGNMENTS:
        attacked = assignment == ATTACKED
        out[f"collect {assignment}"] = course_cli(
            root, "--exchange", str(exchange), "collect", assignment, status=1 if attacked else 0, env=with_accounts
        )
        out[f"grade {assignment}"] = course_cli(root, "grade", assignment)
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}", COURSE_ID) as gradebook:
            grade = gradebook.find_grade(MANUAL[assignment], assignment, assignment, "alice")
            grade.manual_score = grade.max_score  # as formgrader's grade API does
            grade.needs_manual_grade = False
            gradebook.db.commit()
        out[f"status {assignment}"] = course_cli(root, "status", assignment)
        out[f"refused feedback {assignment}"] = course_cli(root, "feedback", assignment, status=1)
        out[f"feedback {assignment}"] = course_cli(root, "feedback", assignment, "--allow-pending")
        out[f"return {assignment}"] = course_cli(
            root, "--exchange", str(exchange), "return", assignment, "--allow-pending", status=1 if attacked else 0
        )
        for fetched in concurrently(
            *(partial(as_student, name, homes[name], exchange, "fetch_feedback", assignment) for name in STUDENTS)
        ):
            assert fetched.returncode == 0, fetched.stderr[-2000:]
    course_cli(root, "export", "--to", "grades.csv")
    yield {"root": root, "exchange": exchange, "homes": homes, "out": out, "forged": forged, "alice": alice}
    shutil.rmtree(base, ignore_errors=True)


def test_files_land_where_nbgrader_puts_them(term):
    root, exchange, homes = term["root"], term["exchange"], term["homes"]
    for assignment in ASSIGNMENTS:
        notebook = f"{assignment}.ipynb"
        assert (root / "release" / assignment / notebook).is_file()
        assert (exchange / COURSE_ID / "outbound" / assignment / notebook).is_file()
        inbound = sorted(p.name for p in (exchange / COURSE_ID / "inbound").iterdir() if f"+{assignment}+" in p.name)
        # alice, cy, and bob twice; for the attacked assignment also each attacker and cy's two forgeries
        assert len(inbound) == (4 + len(ATTACKERS) + 2 if assignment == ATTACKED else 4)
        for name in STUDENTS:
            home = homes[name]
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
            lost = {
                "logistic_regression": [
                    "test_scale_hours_guessed",
                    "test_pass_probabilities",
                    "test_sigmoid",
                    "test_accuracy",
                ],
                "logistic_regression_evaluation": ["test_confusion", "test_threshold", "test_brier"],
            }[assignment]
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
    assert not can_read("dan", inbound)
    assert can_read("bob", exchange / COURSE_ID / "outbound")  # the control: bob can read the release
    assert not can_read("bob", inbound) and not can_read("bob", feedback)
    for submission in inbound.iterdir():
        assert len(submission.name.rsplit("+", 1)[-1]) >= 12  # the random part of the name
    assert all(len(page.stem) >= 32 for page in feedback.iterdir())  # named by a hash


def test_grade_shows_progress_and_summary(term):
    out = term["out"]["grade logistic_regression"]
    assert "graded 6 of 6 submissions of logistic_regression" in out
    assert "6/6 done, 0 left, ETA 0:00" in out and "1/6 done, 5 left, ETA" in out


def collect_lines(term):
    return term["out"][f"collect {ATTACKED}"].splitlines()


def test_forged_entries_are_refused_and_named(term):
    """cy's entry in alice's name, dated a day later, neither replaces alice's submission nor counts."""
    alice_forged, nobody_forged = (entry.name for entry in term["forged"])
    lines = collect_lines(term)
    cy = f"cy (uid {STUDENTS['cy']})"
    assert f"refused inbound entry {alice_forged}: it names alice but is owned by {cy}" in lines
    assert (
        f"refused inbound entry {nobody_forged}: it names 'nobody_here', who has no account on this machine "
        f"(it is owned by {cy})"
    ) in lines
    submitted = term["root"] / "submitted"
    assert not (submitted / "nobody_here").exists()
    assert nbformat.read(submitted / "alice" / ATTACKED / f"{ATTACKED}.ipynb", 4) == nbformat.read(
        term["homes"]["alice"] / ATTACKED / f"{ATTACKED}.ipynb", 4
    )


def test_a_planted_link_refuses_only_that_entry(term):
    dan = entry_of(term["exchange"], "dan", ATTACKED).name
    assert f"refused dan's inbound entry {dan}: answers.ipynb is a symbolic link" in collect_lines(term)
    submitted = term["root"] / "submitted"
    assert not (submitted / "dan").exists()
    assert not any(
        "BEGIN SOLUTION" in path.read_text(errors="replace") for path in submitted.rglob("*") if path.is_file()
    )
    assert "submissions of logistic_regression in submitted/: alice, bob, cy, eve, fay, gus" in collect_lines(term)[0]


def test_submission_time_is_the_exchange_time_not_the_students(term):
    """alice back-dated her timestamp.txt to 2019: collect says so and keeps the time the exchange recorded."""
    pattern = (
        rf"alice: its timestamp\.txt says 2019-12-31 12:00:00 UTC; the exchange recorded "
        rf"(\S+ \S+) UTC, which counts \({re.escape(term['alice'])}\)"
    )
    [recorded] = [match.group(1) for line in collect_lines(term) if (match := re.fullmatch(pattern, line))]
    collected = (term["root"] / "submitted" / "alice" / ATTACKED / "timestamp.txt").read_text()
    assert collected.startswith(recorded) and collected.endswith(" UTC")
    for name, problem in [("eve", "it has no timestamp.txt"), ("bob", "its timestamp.txt is not a time")]:
        assert any(line.startswith(f"{name}: {problem}; the exchange recorded ") for line in collect_lines(term))
    assert not any(line.startswith(("cy:", "fay:", "gus:")) for line in collect_lines(term)), "no false alarms"


def test_a_broken_secret_costs_only_its_student(term):
    """eve, fay and gus are graded but named by `return`; bob, whose timestamp.txt is garbled, fetched his
    feedback like every honest student (the fixture checks it)."""
    out = term["out"][f"return {ATTACKED}"].splitlines()
    assert out == [
        f"returned feedback on {ATTACKED} to 3 of 6 students through the exchange",
        "no feedback returned for eve: its submission_secret.txt is empty",
        "no feedback returned for fay: its submission_secret.txt is not text",
        "no feedback returned for gus: its submission_secret.txt is missing",
    ]
    with Gradebook(f"sqlite:///{term['root'] / 'gradebook.db'}", COURSE_ID) as gradebook:
        graded = {s.student.id for s in gradebook.assignment_submissions(ATTACKED)}
    assert graded == {"alice", "bob", "cy", "eve", "fay", "gus"}


def test_feedback_waits_for_the_hand_grades(term):
    """bob's written answer is not graded by hand: feedback is refused, naming him and the cell."""
    for assignment in ASSIGNMENTS:
        refused = term["out"][f"refused feedback {assignment}"]
        assert refused.startswith("error: manual grading is pending for ") and f"bob ({MANUAL[assignment]})" in refused
        assert "alice" not in refused and "--allow-pending" in refused
