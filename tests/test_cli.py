"""The command line: helpful one-line errors that change nothing, and a working grade/export path."""

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from course.__main__ import main
from course.samples import run_python

from conftest import REPO, course_cli, make_course


def snapshot(root):
    return sorted((p.relative_to(root), p.stat().st_mtime_ns) for p in root.rglob("*"))


@pytest.fixture(scope="module")
def fresh_course(tmp_path_factory):
    """One course for the tests that must leave it unchanged (each checks that it did)."""
    root = tmp_path_factory.mktemp("fresh-course")
    make_course(root)
    return root


@pytest.mark.parametrize(
    "args,message",
    [
        (["grade", "no_such_assignment"], "unknown assignment 'no_such_assignment'"),
        (["grade", "logistic_regression"], "no submissions of 'logistic_regression'"),
        (["scores", "no_such_assignment"], "is not in the gradebook"),
        (["release", "no_such_assignment"], "unknown assignment"),
        (["--exchange", "/nonexistent/exchange", "release", "logistic_regression"], "does not exist"),
        (["--exchange", "/nonexistent/exchange", "collect", "logistic_regression"], "does not exist"),
        (
            ["--exchange", "/tmp", "collect", "logistic_regression"],
            "no inbound folder /tmp/logistic-regression/inbound",
        ),
        (["feedback", "logistic_regression"], "no autograded submissions"),
        (["--exchange", "/tmp", "return", "logistic_regression"], "no feedback for 'logistic_regression'"),
        (["report", "no_such_assignment"], "unknown assignment"),
        (["status", "no_such_assignment"], "unknown assignment"),
    ],
)
def test_bad_input_gives_one_line_and_changes_nothing(fresh_course, args, message, capsys):
    before = snapshot(fresh_course)
    assert main(["--root", str(fresh_course), *args]) == 1
    stderr = capsys.readouterr().err
    assert stderr.startswith("error: ") and message in stderr
    assert len(stderr.strip().splitlines()) == 1
    assert snapshot(fresh_course) == before


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
def test_unwritable_exchange_is_reported_and_nothing_changes():
    base = Path(tempfile.mkdtemp(prefix="course-cli-"))
    try:
        base.chmod(0o777)
        (base / "exchange").mkdir(mode=0o755)
        (base / "course").mkdir()
        make_course(base / "course")
        for path in [base / "course", *(base / "course").rglob("*")]:
            path.chmod(0o777 if path.is_dir() else 0o666)
        before = snapshot(base / "course")
        result = run_python(
            [
                "-m",
                "course",
                "--root",
                str(base / "course"),
                "--exchange",
                str(base / "exchange"),
                "release",
                "logistic_regression",
            ],
            user=(20009, 20009),
            cwd=base / "course",
        )
        assert result.returncode == 1 and "is not writable" in result.stderr, result.stderr[-1000:]
        assert snapshot(base / "course") == before
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_missing_gradebook_is_reported_not_created(tmp_path):
    (tmp_path / "nbgrader_config.py").write_text((REPO / "nbgrader_config.py").read_text())
    result = course_cli(tmp_path, "export")
    assert result.returncode == 1 and "no gradebook" in result.stderr
    assert not (tmp_path / "gradebook.db").exists()


def test_not_a_course_root(tmp_path):
    result = course_cli(tmp_path, "export")
    assert result.returncode == 1 and "is not a course root" in result.stderr


@pytest.mark.parametrize(
    "command",
    [
        "release",
        "collect",
        "grade",
        "feedback",
        "return",
        "export",
        "report",
        "status",
        "scores",
        "generate",
        "released",
        "copy-gradebook",
        "demo",
    ],
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main([command, "--help"])
    assert exit.value.code == 0 and f"usage: python -m course {command}" in capsys.readouterr().out


def score_tables(output):
    """{assignment: {row name: [cells]}} from the demo's printed score tables."""
    tables, current = {}, None
    for line in output.splitlines():
        if line.startswith("== "):
            current = tables.setdefault(line[3:].split(":")[0], {}) if "autograding" in line else None
        elif current is not None and line.strip() and not line.startswith(("==", "--")):
            current[line.split()[0]] = line.split()[1:]
    return tables


@pytest.mark.slow
@pytest.mark.sandbox
def test_demo_grades_the_sample_students_in_a_course_of_its_own(demo):
    """`make demo` in a fresh clone (conftest's demo, run once per suite and shared with test_first_hour)."""
    result, before, after, demo = demo["run"], demo["before"], demo["after"], demo["demo"]
    assert result.returncode == 0, result.stderr[-2000:]
    assert after == before, "the demo must leave the instructor's course as it was"
    assert f"a demo course in {demo}" in result.stdout and f"rm -rf {demo}" in result.stdout
    tables = score_tables(result.stdout)
    first, second = tables["logistic_regression"], tables["logistic_regression_from_scratch"]
    assert first["exercise"] == second["exercise"] == ["ada", "ben", "cy"]
    assert first["total"] == ["17/20", "11/20", "0/20"]
    assert first["reflection"] == ["?/3", "?/3", "0/3"]
    assert first["pass_probabilities"] == ["2/2", "0/2", "0/2"]
    assert second["total"] == ["11/13", "8/13", "0/13"]
    assert second["log_loss"] == ["2/2", "0/2", "0/2"]
    third = tables["logistic_regression_evaluation"]
    assert third["total"] == ["17/20", "11/20", "0/20"]
    assert third["costs"] == ["?/3", "?/3", "0/3"]
    assert sorted(path.name for path in (demo / "course" / "feedback").iterdir()) == ["ada", "ben", "cy"]
    grades = (demo / "course" / "grades.csv").read_text().splitlines()
    assert grades[0].startswith("assignment,duedate,timestamp,student_id")
    assert len(grades) == 1 + 3 * 3


def test_demo_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "notes.txt").write_text("mine")
    result = course_cli(REPO, "demo", "--to", str(tmp_path / "demo"))
    assert result.returncode == 1 and result.stderr.startswith("error: ") and "is not empty" in result.stderr
    assert [path.name for path in (tmp_path / "demo").iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_make_targets_and_export_act_on_released_assignments_only(tmp_path):
    make_course(tmp_path / "course")
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    assert (
        course_cli(tmp_path / "course", "--exchange", str(exchange), "release", "logistic_regression").returncode == 0
    )
    listed = course_cli(tmp_path / "course", "--exchange", str(exchange), "released")
    assert listed.returncode == 0 and listed.stdout.split() == ["logistic_regression"]
    skipped = "logistic_regression_evaluation, logistic_regression_from_scratch"
    assert listed.stderr.strip() == f"skipped, not released: {skipped}"
    exported = course_cli(tmp_path / "course", "--exchange", str(exchange), "export")
    assert exported.returncode == 0 and f"(skipped, not released: {skipped})" in exported.stdout


def test_options_after_the_command_from_another_folder(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    shutil.copy(REPO / "nbgrader_config.py", course)
    shutil.copytree(REPO / "source", course / "source")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "course").mkdir(parents=True)  # a folder named like the package must not shadow it
    status = subprocess.run(
        [sys.executable, "-m", "course", "status", "logistic_regression", "--root", str(course)],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert status.returncode == 1 and status.stderr.startswith("error: no gradebook at"), status.stderr
    assert not (course / "gradebook.db").exists(), "status must not create a gradebook"
    exchange = tmp_path / "exchange"
    release = subprocess.run(
        [
            sys.executable,
            "-m",
            "course",
            "release",
            "logistic_regression",
            "--root",
            str(course),
            "--exchange",
            str(exchange),
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert release.returncode == 1 and release.stderr.strip() == (
        f"error: the exchange root {exchange} does not exist: create it or set c.Exchange.root"
    )


@pytest.fixture
def busy_port():
    """A port something else listens on."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield listener.getsockname()[1]


@pytest.mark.parametrize("why", ["port in use", "not root", "no proxy"])
def test_hub_refuses_in_one_line_and_makes_nothing(fresh_course, busy_port, why, monkeypatch, capsys, tmp_path):
    """`course hub` stops before it makes an account or a state folder, saying what to do."""
    from course import hub

    if why == "not root":
        monkeypatch.setattr(hub.os, "geteuid", lambda: 1000)
    else:
        monkeypatch.setattr(hub.os, "geteuid", lambda: 0)
    monkeypatch.setattr(hub, "PROXY", tmp_path / "missing" if why == "no proxy" else Path(sys.executable))
    monkeypatch.setattr(hub, "ensure_accounts", lambda names: pytest.fail("an account was made"))
    before = snapshot(fresh_course)
    assert main(["--root", str(fresh_course), "hub", "--port", str(busy_port)]) == 1
    stderr = capsys.readouterr().err
    expected = {
        "port in use": f"port {busy_port} is in use: pass --port N",
        "not root": "needs root: run `sudo make hub`",
        "no proxy": "is missing: run `make hub`",
    }[why]
    assert stderr.startswith("error: ") and expected in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert snapshot(fresh_course) == before and not (fresh_course / ".hub").exists()
