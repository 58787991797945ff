"""`course serve`: a resident grader whose warm workers `course grade` hands its students to.

Grades, messages and exit status are a local run's; the workers stay warm from one run to the next;
a killed worker costs nobody else; a client that goes away costs nothing; and neither end talks to a
process of another user.
"""

import json
import os
import select
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from course import samples
from course.serve import SERVER_RECORD

from catalogue import CATALOGUES, Variant
from conftest import (
    REFERENCE,
    TEST_CELL_TIMEOUT,
    UNTOUCHED,
    course_cli,
    make_course,
    runs_a_sandbox,
    submit_reference_and_untouched,
    submit_variants,
)
from grades import cell_results

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT = "logistic_regression"
STUDENTS = [Variant(REFERENCE, {}), Variant(UNTOUCHED, {}), CATALOGUES[ASSIGNMENT][0], CATALOGUES[ASSIGNMENT][-1]]
OTHER_USER = (20091, 20091)


def read_line(process, seconds):
    """The next line `process` writes to stdout, or "" if none comes within `seconds`."""
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    return process.stdout.readline() if ready else ""


def start_server(root):
    server = subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(root), "serve", ASSIGNMENT, "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = read_line(server, 300)
    assert line.startswith(f"resident grader for {root}: 2 warm workers"), (line, server.stderr.read())
    return server


def workers_of(server):
    """The server's grading workers: its children that run a sandbox."""
    return [child for child in psutil.Process(server.pid).children() if runs_a_sandbox(child)]


ATTACK = """
import json, socket, sys
conn = socket.socket(socket.AF_UNIX)
conn.connect(sys.argv[1])
conn.settimeout(60)
try:
    conn.sendall(json.dumps({"assignment": sys.argv[2]}).encode() + b"\\n")
    print("answer", repr(conn.recv(4096)), flush=True)
except (BrokenPipeError, ConnectionResetError):  # closed before or after the request, unread
    print("answer b''", flush=True)
"""


def attack_as_another_user(socket_path, assignment):
    """Another user connects to the server's socket (its folder opened for the attack) and asks for a run."""
    folder = socket_path.parent
    folder.chmod(0o755)
    socket_path.chmod(0o777)
    try:
        command = [sys.executable, "-c", ATTACK, str(socket_path), assignment]
        attacker = subprocess.run(
            samples.as_user(command, OTHER_USER, [*samples.python_folders(), folder]),
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        folder.chmod(0o700)
    return attacker.stdout + attacker.stderr


def goes_away(root, *students):
    """A client killed as soon as it has handed its run (of `students`) to the server, which goes on alone."""
    client = subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(root), "grade", ASSIGNMENT, "--student", *students],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    first = client.stderr.readline()
    client.kill()
    client.wait()
    return first


def autograded(root, student):
    return root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A course with a resident grader, and what happened to the runs it answered, one after another."""
    root = tmp_path_factory.mktemp("served")
    make_course(root, cell_timeout=TEST_CELL_TIMEOUT)
    submit_reference_and_untouched(root, ASSIGNMENT)
    submit_variants(root, ASSIGNMENT, STUDENTS[2:])
    broken = root / "submitted" / "broken" / ASSIGNMENT
    broken.mkdir(parents=True)
    (broken / f"{ASSIGNMENT}.ipynb").write_text("{ this is not a notebook")
    server = start_server(root)
    out = {"record": json.loads((root / SERVER_RECORD).read_text())}
    try:
        out["first"] = course_cli(root, "grade", ASSIGNMENT, "--timings", str(root / "first.json"))
        out["workers"] = {worker.pid for worker in workers_of(server)}
        out["again"] = course_cli(
            root, "grade", ASSIGNMENT, "--student", REFERENCE, "--timings", str(root / "again.json")
        )
        out["workers again"] = {worker.pid for worker in workers_of(server)}
        if os.geteuid() == 0:
            before = autograded(root, REFERENCE).stat().st_mtime_ns
            out["attack"] = attack_as_another_user(Path(out["record"]["socket"]), ASSIGNMENT)
            out["graded for the attacker"] = autograded(root, REFERENCE).stat().st_mtime_ns != before
        before = autograded(root, STUDENTS[3].name).stat().st_mtime_ns
        out["gone"] = goes_away(root, STUDENTS[3].name)
        killed = workers_of(server)[0]  # during or after the abandoned run
        killed.kill()
        killed.wait(60)
        out["after a kill"] = course_cli(root, "grade", ASSIGNMENT, "--student", REFERENCE, STUDENTS[2].name)
        out["graded for the client that went away"] = autograded(root, STUDENTS[3].name).stat().st_mtime_ns != before
        out["cells"], _ = cell_results(root, ASSIGNMENT)
    finally:
        server.send_signal(signal.SIGINT)
        out["stopped"] = server.wait(120)
        out["server stderr"] = server.stderr.read()
    out["record after"] = (root / SERVER_RECORD).exists()
    return root, out


def test_a_run_through_the_server_prints_and_exits_as_a_local_run(served):
    _, out = served
    first = out["first"]
    assert f"grading with the resident grader (course serve, process {out['record']['pid']})" in first.stderr
    assert first.returncode == 1, first.stderr[-2000:]
    assert f"graded {len(STUDENTS)} of {len(STUDENTS) + 1} submissions of {ASSIGNMENT}" in first.stdout
    assert "failed: broken (regrade one with --student ID)" in first.stdout
    assert "\n  broken: RuntimeError: " in first.stdout
    assert first.stderr.count(" done, ") == len(STUDENTS) + 1, "its progress lines are relayed"


def test_grades_are_those_of_a_local_run(served, graded_catalogue):
    """Cell by cell, the grades of `course grade --jobs 2` without a server (graded_catalogue)."""
    _, out = served
    roots, _ = graded_catalogue
    local, _ = cell_results(roots[ASSIGNMENT, REFERENCE], ASSIGNMENT)
    names = {variant.name for variant in STUDENTS}
    assert {key: value for key, value in out["cells"].items() if key[0] != "broken"} == {
        key: value for key, value in local.items() if key[0] in names
    }
    assert len({key for key in out["cells"] if key[0] != "broken"}) == 12 * len(STUDENTS)


def test_the_workers_are_warm_before_the_first_run_and_stay_warm(served):
    """No student waits for a sandbox's start (seconds) or a private course: the warm-up made them."""
    root, out = served
    assert out["again"].returncode == 0, out["again"].stderr[-2000:]
    assert out["workers again"] == out["workers"] and len(out["workers"]) == 2
    for run in ("first", "again"):
        for student, stages in json.loads((root / f"{run}.json").read_text())["students"].items():
            assert stages["sandbox start"] < 0.5 and "private course" not in stages, (run, student, stages)


def test_a_killed_worker_is_replaced_and_costs_nobody_else(served):
    _, out = served
    assert out["after a kill"].returncode == 0, out["after a kill"].stdout[-2000:] + out["after a kill"].stderr[-2000:]
    assert "graded 2 of 2 submissions" in out["after a kill"].stdout


def test_ctrl_c_stops_the_server_and_removes_its_record(served):
    _, out = served
    assert out["stopped"] == 0 and not out["record after"]
    assert "Traceback" not in out["server stderr"], out["server stderr"][-3000:]


def test_a_client_that_goes_away_costs_nothing(served):
    """Its run goes on and records its grades; the next run is answered after it."""
    _, out = served
    assert out["gone"].startswith("grading with the resident grader"), out["gone"]
    assert out["graded for the client that went away"]
    assert "graded 2 of 2 submissions" in out["after a kill"].stdout


root_only = pytest.mark.skipif(os.geteuid() != 0, reason="another user's process needs root")


@pytest.mark.root
@root_only
def test_the_server_answers_no_other_user(served):
    """Another user who reaches the socket gets no answer, and nothing is graded for them."""
    _, out = served
    assert out["attack"] == "answer b''\n", out["attack"]
    assert not out["graded for the attacker"]


FAKE_SERVER = """
import socket, sys
listener = socket.socket(socket.AF_UNIX)
listener.bind(sys.argv[1])
listener.listen(1)
print("listening", flush=True)
conn, _ = listener.accept()
conn.settimeout(30)
print("received", repr(conn.recv(4096)), flush=True)
"""


@pytest.mark.root
@root_only
def test_a_record_pointing_at_another_users_server_is_not_trusted(tmp_path):
    """A team member's record in the shared course root: `course grade` sends nothing and grades here."""
    make_course(tmp_path, cell_timeout=TEST_CELL_TIMEOUT)
    submit_variants(tmp_path, ASSIGNMENT, [Variant(REFERENCE, {})])
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    os.chown(folder, *OTHER_USER)
    command = [sys.executable, "-c", FAKE_SERVER, str(folder / "grader.sock")]
    fake = subprocess.Popen(
        samples.as_user(command, OTHER_USER, [*samples.python_folders(), folder]),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert read_line(fake, 120) == "listening\n", fake.stderr.read()
        (tmp_path / SERVER_RECORD).write_text(json.dumps({"socket": str(folder / "grader.sock"), "pid": fake.pid}))
        run = course_cli(tmp_path, "grade", ASSIGNMENT)
        received = read_line(fake, 60)
    finally:
        fake.kill()
        fake.wait()
    assert "runs as another user: grading here" in run.stderr
    assert run.returncode == 0 and "graded 1 of 1 submissions" in run.stdout, run.stderr[-2000:]
    assert received == "received b''\n", "the client sent nothing"
