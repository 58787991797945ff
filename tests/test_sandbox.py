"""The grading sandbox: a hostile notebook graded by `course grade` next to honest students.

The intruder knows where the course lives. It tries to read the hidden tests,
the gradebook, another student's submission and the instructor's files; to
write to them; to fork without limit, allocate 50 GB, write a huge file,
flood its output and open sockets. It reports what happened as JSON in its
output, and the tests check that nothing leaked, nothing changed, the limits
held and the honest students' grades are what they would be without it.

The attacks on the sandbox's boundary (issue 17, hostile.BOUNDARY and
hostile.LINKED) are graded once, with --jobs 2, next to honest students.
"""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell

from course import notebooks
from course.sandbox.limits import SandboxLimits

from catalogue import Variant
from conftest import make_course, submit_variants
from grades import autograded_cells, cell_errors
from hostile import ALL_TESTS, BOUNDARY, LINKED, plant_files
from private import private_lines

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT = "logistic_regression"
LIMITS = SandboxLimits()  # the defaults, which the test course keeps
MARKER = "SANDBOX-REPORT "
BOMB = "course-sandbox-fork-bomb"

ATTACK = """\
import json, os, socket, subprocess, sys, resource
import numpy as np
root, secret, port = {root!r}, {secret!r}, {port}
targets = {{
    "hidden tests": f"{{root}}/source/{assignment}/{assignment}.ipynb",
    "gradebook": f"{{root}}/gradebook.db",
    "victim's submission": f"{{root}}/submitted/victim/{assignment}/{assignment}.ipynb",
    "victim's autograded notebook": f"{{root}}/autograded/victim/{assignment}/{assignment}.ipynb",
    "course config": f"{{root}}/nbgrader_config.py",
    "instructor's file": secret,
    "its own notebook (with the restored hidden tests)": "{assignment}.ipynb",
    "the sandbox's /dev": "/dev/planted",
}}
report = {{"read": {{}}, "write": {{}}, "found": [], "sockets": {{}}}}

def outcome(action):
    try:
        action()
        return "succeeded"
    except BaseException as error:
        return type(error).__name__

for name, path in targets.items():
    report["read"][name] = outcome(lambda: os.listdir(path) if os.path.isdir(path) else open(path, "rb").read())
    if path.startswith("/"):  # (its own folder is its to write)
        report["write"][name] = outcome(lambda: open(path if not os.path.isdir(path) else path + "/planted", "ab").write(b"x"))
for top, folders, files in os.walk("/"):
    folders[:] = [f for f in folders if os.path.join(top, f) not in ("/proc", "/sys", "/usr", "/dev")]
    report["found"] += [os.path.join(top, f) for f in files if f.endswith((".ipynb", ".db", "nbgrader_config.py"))]

children = []
try:
    for _ in range(10_000):
        pid = os.fork()
        if pid == 0:
            import time
            time.sleep(120)
            os._exit(0)
        children.append(pid)
except OSError as error:
    report["forks"] = len(children)
for pid in children:
    os.kill(pid, 9)
    os.waitpid(pid, 0)

report["allocate 50 GB"] = outcome(lambda: np.ones(50 * 2**30 // 8))
report["write 1 GB file"] = outcome(lambda: open("big.bin", "wb").write(b"0" * 2**30))
for name, address in {{"internet": ("1.1.1.1", 80), "grader's loopback": ("127.0.0.1", port)}}.items():
    report["sockets"][name] = outcome(lambda: socket.create_connection(address, timeout=3))
report["limits"] = {{name: resource.getrlimit(getattr(resource, "RLIMIT_" + name))[0]
                    for name in ("CPU", "AS", "NPROC", "FSIZE", "NOFILE")}}
report["new user namespace"] = outcome(lambda: subprocess.run(["unshare", "--user", "true"], check=True,
                                                             capture_output=True))
report["uid"] = os.getuid()
report["cwd"] = os.getcwd()
report["stop the kernel server"] = outcome(lambda: os.kill(1, 19))  # SIGSTOP: ignored by the sandbox's PID 1
print("{marker}" + json.dumps(report))
"""
# Left behind for the next student graded in this sandbox, in the notebook's last cell: a fork bomb
# spins on every core until its kernel ends, and would otherwise slow the rest of the notebook (and
# everything else on the machine) to a crawl.
LEAVE_BEHIND = """\
import os, subprocess, sys
for path in ("/tmp/planted", "/dev/shm/planted", "/scratch/planted"):
    open(path, "w").write("left behind")
os.makedirs("/scratch/home/locked/deeper")
os.chmod("/scratch/home/locked", 0)
subprocess.run(["ipcmk", "--shmem", "4096"], capture_output=True)
subprocess.Popen(["setsid", "sleep", "600"])
subprocess.Popen([sys.executable, "-c", "import os\\nwhile True:\\n    try:\\n        os.fork()\\n    except OSError:\\n        pass", {bomb!r}])
os.chmod("/scratch/work", 0)
print("everything left behind")
"""
PROBE = """\
import json, os, subprocess
probe = {
    "/tmp": os.listdir("/tmp"),
    "/dev/shm": os.listdir("/dev/shm"),
    "/scratch": sorted(os.listdir("/scratch")),
    "/scratch/home": os.listdir("/scratch/home"),
    "System V shared memory": subprocess.run(["ipcs", "-m"], capture_output=True, text=True).stdout.count("0x"),
    "other processes": [p for p in os.listdir("/proc") if p.isdigit() and int(p) not in (1, os.getpid())],
}
print("PROBE " + json.dumps(probe))
"""
FLOOD = 'print("y" * 3_000_000)'


def tree_digest(folder):
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(str(path).encode() + path.read_bytes())
    return digest.hexdigest()


def insert_cells(*sources, last=None):
    """An edit that inserts code cells after the first, and `last` at the end."""

    def edit(notebook):
        notebook.cells[1:1] = [new_code_cell(source) for source in sources]
        if last is not None:
            notebook.cells.append(new_code_cell(last))

    return edit


def printed_json(root, student, prefix):
    """The outputs of a student's autograded notebook, and the JSON it printed after `prefix`."""
    graded = notebooks.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    outputs = [output for cell in graded.cells for output in cell.get("outputs", [])]
    text = "".join(output.get("text", "") for output in outputs)
    return outputs, json.loads(next(line for line in text.splitlines() if line.startswith(prefix))[len(prefix) :])


@pytest.fixture(scope="module")
def instructor_secret():
    """A file in the instructor's home folder (removed afterwards), named for this test run: another
    run at the same time (another clone) has its own."""
    path = Path.home() / f".course-sandbox-test-secret-{os.getpid()}"
    path.write_text("instructor-only")
    yield path
    path.unlink()


@pytest.fixture(scope="module")
def attacked(tmp_path_factory, instructor_secret):
    root = tmp_path_factory.mktemp("sandbox")
    make_course(root)
    listener = socket.create_server(("127.0.0.1", 0))  # a service on the grader's loopback
    listener.setblocking(False)
    attack = ATTACK.format(
        root=str(root),
        secret=str(instructor_secret),
        port=listener.getsockname()[1],
        assignment=ASSIGNMENT,
        bomb=BOMB,
        marker=MARKER,
    )
    # Graded one after another, in one sandbox: the victim and the prober come after the intruder.
    submit_variants(
        root,
        ASSIGNMENT,
        [
            Variant("intruder", {}, edit=insert_cells(FLOOD, attack, last=LEAVE_BEHIND.format(bomb=BOMB))),
            Variant("victim", {}),
            Variant("zz_prober", {}, edit=insert_cells(PROBE)),
        ],
    )
    protected = {name: tree_digest(root / name) for name in ("source", "submitted/victim", "course")}
    run = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), "grade", ASSIGNMENT, "--jobs", "1"],
        capture_output=True,
        text=True,
        timeout=1800,
    )
    with pytest.raises(BlockingIOError):
        listener.accept()  # nobody connected
    listener.close()
    outputs, report = printed_json(root, "intruder", MARKER)
    _, probe = printed_json(root, "zz_prober", "PROBE ")
    return root, run, protected, report, outputs, probe


def test_grading_completes(attacked):
    _, run, _, _, _, _ = attacked
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert "graded 3 of 3 submissions" in run.stdout


def test_the_next_student_finds_the_sandbox_as_the_first_did(attacked):
    """The intruder left files, a locked folder, shared memory, a daemon and a fork bomb, and tried to
    stop the kernel server; the student graded after it in the same sandbox sees none of it."""
    _, _, _, report, outputs, probe = attacked
    assert "everything left behind" in "".join(output.get("text", "") for output in outputs)
    assert report["stop the kernel server"] == "succeeded"  # the signal is sent, and ignored
    tmp = probe.pop("/tmp")
    # /tmp holds only the folder that leads to Python's mount point, if Python lives in /tmp
    pythons = [Path(prefix).resolve() for prefix in (sys.prefix, sys.base_prefix)]
    mounts = {python.relative_to("/tmp").parts[0] for python in pythons if python.is_relative_to("/tmp")}
    assert sorted(tmp) == sorted(mounts), "nothing in /tmp but mount points' folders"
    assert probe == {
        "/dev/shm": [],
        "/scratch": ["home", "ipc", "kernel.json", "work"],
        "/scratch/home": [".ipython"],  # its own kernel's
        "System V shared memory": 0,
        "other processes": [],
    }


def test_nothing_outside_the_scratch_folder_can_be_read(attacked):
    _, _, _, report, _, _ = attacked
    assert set(report["read"].values()) == {"FileNotFoundError"}, report["read"]
    public = tuple(str(Path(prefix).resolve()) + "/" for prefix in (sys.prefix, sys.base_prefix))
    found = [path for path in report["found"] if not path.startswith(public)]  # e.g. nbgrader's own examples
    assert found == [], "no notebook or database is visible, not even its own notebook"


def test_nothing_outside_the_scratch_folder_can_be_written(attacked, instructor_secret):
    root, _, protected, report, _, _ = attacked
    assert set(report["write"].values()) <= {"FileNotFoundError", "OSError", "PermissionError"}, report["write"]
    assert {name: tree_digest(root / name) for name in protected} == protected
    assert instructor_secret.read_text() == "instructor-only"


def test_no_secret_appears_in_the_outputs(attacked):
    _, _, _, _, outputs, _ = attacked
    shown = json.dumps(outputs)
    assert not [line for line in private_lines(ASSIGNMENT, solutions=False) if line in shown]
    assert "SQLite format" not in shown and "instructor-only" not in shown


def test_no_network(attacked):
    """The sandbox has its own empty network namespace: no route out, and its loopback is not the grader's."""
    _, _, _, report, _, _ = attacked
    assert report["sockets"] == {"internet": "OSError", "grader's loopback": "ConnectionRefusedError"}


def test_limits_hold(attacked):
    _, _, _, report, outputs, _ = attacked
    assert report["forks"] < 64
    assert report["allocate 50 GB"] == "MemoryError"
    assert report["write 1 GB file"] == "OSError"  # RLIMIT_FSIZE: EFBIG
    assert report["new user namespace"] == "CalledProcessError", "no nested namespaces to gain privileges in"
    assert report["limits"]["NPROC"] == LIMITS.processes and report["limits"]["AS"] == LIMITS.address_space_bytes
    if os.geteuid() == 0:
        assert report["uid"] == 65534, "root grades as nobody: root would ignore the process limit"
    flood = [o for o in outputs if "[output stopped" in o.get("text", "")]
    assert flood and sum(len(o.get("text", "")) for o in outputs) < 1_100_000


def test_no_process_outlives_its_kernel(attacked):
    leftovers = subprocess.run(["pgrep", "-f", BOMB], capture_output=True, text=True)
    assert leftovers.returncode == 1, leftovers.stdout


def test_other_students_grades_are_unchanged(attacked):
    root, _, _, _, _, _ = attacked
    for student in ("victim", "zz_prober"):
        scores = autograded_cells(root, ASSIGNMENT, student)
        assert all(score == maximum for score, maximum in scores.values()), (student, scores)


def fake_bwrap(script):
    """A folder (that nobody may enter too) holding a bwrap that fails like a restricted one."""
    folder = Path(tempfile.mkdtemp(prefix="fake-bwrap-"))
    folder.chmod(0o755)
    (folder / "bwrap").write_text("#!/bin/sh\n" + script)
    (folder / "bwrap").chmod(0o755)
    return folder


@pytest.mark.parametrize(
    "bwrap, expected, advice",
    [
        (None, "bubblewrap (bwrap) is not installed", True),
        (
            "echo 'bwrap: setting up uid map: Permission denied' >&2; exit 1",
            "bwrap failed (bwrap: setting up uid map: Permission denied)",
            True,
        ),
        # passes the trial run (whose command is `true`), fails to start the kernel server: the cause, no advice
        (
            'for last; do :; done; [ "$last" = true ] && exit 0; echo "bwrap: no /proc here" >&2; exit 1',
            "the sandbox's kernel server did not start: bwrap: no /proc here",
            False,
        ),
    ],
    ids=["missing", "namespaces refused", "server fails"],
)
def test_grade_stops_when_no_sandbox_can_be_made(tmp_path, bwrap, expected, advice):
    root = tmp_path / "course"
    root.mkdir()
    make_course(root)
    submit_variants(root, ASSIGNMENT, [Variant("victim", {})])
    bin_dir = fake_bwrap(bwrap) if bwrap else tmp_path
    env = dict(os.environ, PATH=f"{bin_dir}:{Path(sys.executable).parent}")
    try:
        run = subprocess.run(
            [sys.executable, "-m", "course", "--root", str(root), "grade", ASSIGNMENT],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        if bwrap:
            shutil.rmtree(bin_dir)
    assert run.returncode == 1
    assert expected in run.stderr
    assert ("--no-sandbox" in run.stderr and "user namespaces" in run.stderr) == advice, run.stderr
    assert not (root / "autograded").exists()


def test_no_sandbox_warns_and_grades(tmp_path):
    make_course(tmp_path)
    submit_variants(tmp_path, ASSIGNMENT, [Variant("victim", {})])
    run = subprocess.run(
        [sys.executable, "-m", "course", "--root", str(tmp_path), "grade", ASSIGNMENT, "--no-sandbox"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr
    assert "warning: --no-sandbox" in run.stderr
    # its kernels talk over IPC sockets in the worker's 0700 folder: a TCP port would let any user of the
    # machine read the kernel's outputs (ipykernel then warns, on the instructor's console)
    assert "without encryption" not in run.stderr, run.stderr
    assert all(score == maximum for score, maximum in autograded_cells(tmp_path, ASSIGNMENT, "victim").values())


# ---- The boundary (issue 17): every attack of hostile.BOUNDARY and hostile.LINKED, graded once with
# `course grade --jobs 2` next to honest students graded after them in the same sandboxes ----

HONEST = [Variant("zz_honest_1", {}), Variant("zz_honest_2", {}), Variant("zz_honest_3", {})]
GIB = 1 << 30
PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "run = subprocess.run(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024, file=sys.stderr)\n"
    "sys.exit(run.returncode)"
)


def bytes_under(folder):
    """The disk space the files under `folder` take."""
    return sum(path.lstat().st_blocks * 512 for path in Path(folder).rglob("*"))


@pytest.fixture(scope="module")
def boundary(tmp_path_factory, instructor_secret):
    """The run, its course root, the markers folder shadowed modules would write to, the peak RSS of its
    processes, the disk space the run added to the course and what it left in its temporary folder (a
    folder of its own: other tests may be grading at the same time)."""
    root, markers = tmp_path_factory.mktemp("boundary"), tmp_path_factory.mktemp("markers")
    # short: the kernels' sockets are made in it, and a Unix socket's path is at most 107 bytes
    scratch = Path(tempfile.mkdtemp(prefix="boundary-"))
    scratch.chmod(0o755)  # as /tmp: the sandbox's mount points lie in it
    markers.chmod(0o777)
    make_course(root)
    variants = BOUNDARY + LINKED + HONEST
    submit_variants(root, ASSIGNMENT, variants)
    targets = {
        "source notebook": root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        "gradebook": root / "gradebook.db",
        "instructor's file": instructor_secret,
        "other student's notebook": root / "submitted" / "zz_honest_1" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
        "source folder": root / "source",
    }
    plant_files(root, ASSIGNMENT, variants, targets)
    before = bytes_under(root)
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            PEAK_RSS,
            sys.executable,
            "-m",
            "course",
            "--root",
            str(root),
            "grade",
            ASSIGNMENT,
            "--jobs",
            "2",
        ],
        env=dict(os.environ, COURSE_TEST_MARKERS=str(markers), TMPDIR=str(scratch)),
        capture_output=True,
        text=True,
        timeout=1800,
    )
    peak_rss = int(run.stderr.strip().splitlines()[-1])
    used = {"course": bytes_under(root) - before, "temporary folder": bytes_under(scratch)}
    yield run, root, markers, peak_rss, used, scratch
    shutil.rmtree(scratch, ignore_errors=True)


def test_boundary_run_ends_with_a_summary_and_fails_only_linked_submissions(boundary):
    run, _, _, _, _, _ = boundary
    total = len(BOUNDARY + LINKED + HONEST)
    assert f"graded {total - len(LINKED)} of {total} submissions" in run.stdout, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"failed: {', '.join(sorted(variant.name for variant in LINKED))}" in run.stdout


def test_honest_students_keep_full_marks(boundary):
    _, root, _, _, _, _ = boundary
    for student in [variant.name for variant in HONEST] + ["fills_its_sandbox"]:
        scores = autograded_cells(root, ASSIGNMENT, student)
        assert all(score == maximum for score, maximum in scores.values()), (student, scores)


@pytest.mark.parametrize("variant", [v for v in BOUNDARY if v.expected], ids=lambda v: v.name)
def test_attacks_earn_nothing(boundary, variant):
    """Shadowed modules, forged builtins in records, huge records: wrong (or refused) answers score 0."""
    _, root, _, _, _, _ = boundary
    scores = autograded_cells(root, ASSIGNMENT, variant.name)
    assert {name: score for name, (score, _) in scores.items()} == {
        name: variant.expected.get(name, maximum) for name, (_, maximum) in scores.items()
    }


def test_no_submitted_module_runs_as_the_grader(boundary):
    """The kernel server and the grader never import from a student's folder."""
    _, root, markers, _, _, _ = boundary
    assert sorted(os.listdir(markers)) == []
    text = json.dumps(printed_outputs(root, "shadowed_modules"))
    assert "STOLEN" not in text


def test_forged_and_huge_records_are_refused_by_the_recheck(boundary):
    _, root, _, peak_rss, _, _ = boundary
    forged = cell_errors(root, ASSIGNMENT, "forged_records")
    rechecked = [name for name, message in forged.items() if "re-checked" in message]
    assert rechecked, f"the forgery should pass some tests in the kernel, and fail them in the re-check: {forged}"
    huge = cell_errors(root, ASSIGNMENT, "huge_records")
    assert len(huge) == len(ALL_TESTS) and all("InvalidRecord" in message for message in huge.values()), huge
    assert peak_rss < 2 * GIB, f"the grading processes peaked at {peak_rss / GIB:.1f} GiB"


def test_linked_submissions_are_refused_unread(boundary, instructor_secret):
    run, root, _, _, _, _ = boundary
    reasons = {
        "hard_link": "copy.ipynb is a hard link",
        "fifo": "pipe is a FIFO",
        "link_to_folder": "source is a symbolic link",
        "link_to_secret": "notes.txt is a symbolic link",
    }
    for student, reason in reasons.items():
        assert f"  {student}: InvalidSubmission: {reason}" in run.stdout
    for variant in LINKED:
        assert not (root / "autograded" / variant.name).exists()
    everything = b"".join(
        path.read_bytes() for path in (root / "autograded").rglob("*") if path.is_file() and not path.is_symlink()
    )
    assert b"instructor-only" not in everything and b"SQLite format" not in everything


def test_no_disk_is_filled_and_the_sandbox_is_left_clean(boundary):
    """fallocate, big writes, sparse files, many files and a 5000-deep tree land in the sandbox's capped tmpfs."""
    run, root, _, _, used, scratch = boundary
    _, filled = printed_json(root, "fills_its_sandbox", "FILLED ")
    assert filled["fallocated"] <= 4 * LIMITS.scratch_bytes and filled["written"] <= 4 * LIMITS.scratch_bytes, filled
    assert filled["depth"] == 5000
    if os.geteuid() == 0:
        assert filled["files"] < LIMITS.scratch_files
    assert all(size < 256 << 20 for size in used.values()), used
    assert "note:" not in run.stdout, "the wipe removed everything"
    assert not list(scratch.iterdir()), "the workers' folder is removed"


def printed_outputs(root, student):
    graded = notebooks.read(root / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    return [output for cell in graded.cells for output in cell.get("outputs", [])]


def test_the_kernel_server_imports_nothing_from_its_working_folder(tmp_path):
    """The server starts with `python -I`, the course package loaded by path: run in a folder full of
    shadowing modules (as `python -m` there would import the student's course/), it imports none of them.
    No grading process starts in a student's folder at all: kernels are asked of the server over its socket."""
    from course.sandbox.bwrap import isolated_python

    from conftest import REPO
    from hostile import SHADOWS

    markers = tmp_path / "markers"
    markers.mkdir()
    plant_files(tmp_path, "", [Variant("student", {}, files=SHADOWS)], {})
    env = dict(os.environ, COURSE_TEST_MARKERS=str(markers), PYTHONPATH=str(REPO))
    for argv in ([sys.executable, "-m", "course.sandbox.zygote"], isolated_python(REPO, "course.sandbox.zygote")):
        subprocess.run(
            argv + ["no-listening-socket"],
            cwd=tmp_path / "submitted" / "student",
            env=env,
            capture_output=True,
            timeout=120,
        )
        if argv[1] == "-m":
            assert (markers / "course").exists(), "the shadow works where the working folder is on the import path"
            for marker in markers.iterdir():
                marker.unlink()
    assert sorted(os.listdir(markers)) == []


def test_a_virtual_environment_behind_a_symbolic_link_runs_sandboxed(tmp_path):
    """.venv as a link to elsewhere: the sandbox names the environment where it really is (issue 19, item 11)."""
    link = tmp_path / "venv-link"
    link.symlink_to(Path(sys.prefix).resolve())
    python = link / Path(sys.executable).relative_to(sys.prefix)
    probe = (
        "from course.sandbox.warm import Sandbox\n"  # this checkout's course: the working folder
        "sandbox = Sandbox(); print('alive', sandbox.alive()); sandbox.close()"
    )
    result = subprocess.run(
        [str(python), "-c", probe], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=300
    )
    assert result.stdout.strip() == "alive True", result.stderr[-2000:]
