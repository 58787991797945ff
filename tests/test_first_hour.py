"""The instructor's first hour, as the README tells it (issue 19).

A fresh clone runs `make demo`, which must leave it exactly as it was. Then a
small term in that clone, with the commands as the README writes them: the
exchange set once in nbgrader_config.py, options after the command name, run
from another folder with --root; two students (their own user ids) who fetch
and submit with nbgrader's own commands and the student config file the course
ships; collect, grade, feedback (refused while hand grades are pending), the
make targets with one released assignment, and the export.
"""

import csv
import os
import subprocess
import sys

import pytest

from course import notebooks, samples

from conftest import MAKE, REPO, nss_accounts

ASSIGNMENT, UNRELEASED = "logistic_regression", "logistic_regression_from_scratch"
SKIPPED = "skipped, not released: logistic_regression_evaluation, logistic_regression_from_scratch"
STUDENTS = {"amy": (20061, "perfect"), "raj": (20062, "typical")}

pytestmark = [
    pytest.mark.slow,
    pytest.mark.sandbox,
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="students run as separate users, which needs root"),
]


def run(*command, cwd, env=None, status=0):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == status, (
        f"{' '.join(map(str, command))}: {result.stdout[-2000:]} {result.stderr[-3000:]}"
    )
    return result


def student_nbgrader(name, home, *args):
    """`nbgrader ARGS` as student `name`, configured only by ~/.jupyter/nbgrader_config.py, as the README says."""
    uid = STUDENTS[name][0]
    env = {key: value for key, value in os.environ.items() if not key.startswith("JUPYTER")}
    env.update(HOME=str(home), USER=name, LOGNAME=name, **samples.named_user(name, (uid, uid), home))
    result = samples.run_python(["-m", "nbgrader", *args], user=(uid, uid), cwd=home, env=env)
    assert result.returncode == 0, f"{name}: nbgrader {' '.join(args)}: {result.stderr[-2000:]}"


@pytest.fixture(scope="module")
def hour(demo):
    """The clone in which `make demo` ran (conftest's demo, shared with test_cli), and the term after it."""
    base, clone = demo["base"], demo["clone"]
    elsewhere, exchange = base / "elsewhere", base / "exchange"
    elsewhere.mkdir()
    exchange.mkdir(mode=0o777)
    exchange.chmod(0o777)
    make = MAKE
    assert demo["run"].returncode == 0, f"make demo: {demo['run'].stdout[-2000:]} {demo['run'].stderr[-3000:]}"
    out = {"demo": demo["run"]}
    out["git status"] = run("git", "status", "--porcelain", cwd=clone).stdout
    out["made by the demo in the clone"] = [
        name
        for name in ("gradebook.db", "submitted", "autograded", "feedback", "reports", "grades.csv")
        if (clone / name).exists()
    ]

    def course(*args, status=0, env=None):
        result = run(sys.executable, "-m", "course", *args, "--root", str(clone), cwd=elsewhere, env=env, status=status)
        return result.stdout + result.stderr

    with open(clone / "nbgrader_config.py", "a") as config:  # "Set the exchange folder ... once"
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    out["release"] = course("release", ASSIGNMENT)
    out["collect, nothing submitted"] = course("collect", ASSIGNMENT, status=1)
    out["grade, nothing collected"] = course("grade", ASSIGNMENT, status=1)
    student_config = (
        (REPO / "docs" / "student_nbgrader_config.py").read_text().replace("/srv/nbgrader/exchange", str(exchange))
    )
    for name, (uid, kind) in STUDENTS.items():
        home = base / name
        (home / ".jupyter").mkdir(parents=True)
        (home / ".jupyter" / "nbgrader_config.py").write_text(student_config)
        for path in (home, home / ".jupyter", home / ".jupyter" / "nbgrader_config.py"):
            os.chown(path, uid, uid)
        student_nbgrader(name, home, "fetch_assignment", ASSIGNMENT)
        answered = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        notebooks.write(samples.sample_notebook(clone, ASSIGNMENT, kind), answered)
        os.chown(answered, uid, uid)
        student_nbgrader(name, home, "submit", ASSIGNMENT)
    out["collect"] = course(
        "collect", ASSIGNMENT, env=nss_accounts(base, {name: (uid, base / name) for name, (uid, _) in STUDENTS.items()})
    )
    out["grade"] = course("grade", ASSIGNMENT, "--jobs", "2")
    out["feedback, pending"] = course("feedback", ASSIGNMENT, status=1)
    out["make"] = run(*make, "grade", "report", cwd=clone)
    out["export"] = course("export", "--to", str(base / "grades.csv"))
    return base, out


def test_the_demo_leaves_the_clone_as_it_was(hour):
    base, out = hour
    assert out["git status"] == "", out["git status"]
    assert out["made by the demo in the clone"] == []
    assert f"a demo course in {base / 'demo'}" in out["demo"].stdout
    assert (base / "demo" / "course" / "gradebook.db").is_file()


def test_options_work_after_the_command_from_another_folder(hour):
    _, out = hour
    assert out["release"].startswith(f"released {ASSIGNMENT} to ")
    assert out["collect"].startswith(f"2 submissions of {ASSIGNMENT} in submitted/: amy, raj")
    assert f"graded 2 of 2 submissions of {ASSIGNMENT}" in out["grade"]


def test_empty_steps_say_what_comes_next(hour):
    _, out = hour
    assert out["collect, nothing submitted"].strip() == (
        f"error: nothing submitted for {ASSIGNMENT} yet: students submit from JupyterLab's Assignment List "
        f"(or nbgrader submit {ASSIGNMENT}); then collect again"
    )
    assert out["grade, nothing collected"].strip() == (
        f"error: no submissions of '{ASSIGNMENT}' in submitted/: collect them first "
        f"(python -m course collect {ASSIGNMENT})"
    )


def test_feedback_is_refused_while_hand_grades_are_pending(hour):
    base, out = hour
    assert out["feedback, pending"].strip() == (
        "error: manual grading is pending for 2 student(s): amy (reflection); raj (reflection). Grade them in "
        "Formgrader first, or give --allow-pending to send feedback that scores them 0"
    )
    assert not (base / "clone" / "feedback").exists()


def test_make_targets_act_on_the_released_assignment_only(hour):
    base, out = hour
    assert out["make"].stderr.count(SKIPPED) == 2
    assert (base / "clone" / "reports" / ASSIGNMENT / "index.html").is_file()
    assert not (base / "clone" / "reports" / UNRELEASED).exists()


def test_the_export_holds_the_released_assignment_only(hour):
    base, out = hour
    rows = list(csv.DictReader(open(base / "grades.csv")))
    assert {row["assignment"] for row in rows} == {ASSIGNMENT}
    assert {row["student_id"]: float(row["raw_score"]) for row in rows} == {"amy": 17.0, "raj": 11.0}
