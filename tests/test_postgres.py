"""The gradebook on a real PostgreSQL server: every command, the same grades as SQLite, several graders at once.

A throwaway server is started once per session from Debian's postgresql packages (`make test`
installs them when they are missing): `initdb` and `pg_ctl` in a temporary folder, as `nobody` when
the suite runs as root (PostgreSQL refuses to run as root), on a Unix socket only. It logs every
connection with its application name, which the course's db_url sets to `course-<pid of the
process that loaded the config>`: the log shows which processes opened the course's gradebook.

One course is taken through a term on it:

- `copy-gradebook` moves its SQLite gradebook (the three generated assignments) to the server,
  row for row, and the course's db_url is set to the server;
- `release`, a student's `fetch_assignment` and `submit` through the exchange, `collect`;
- grading, with two `course grade` runs at once: first on disjoint students (logistic_regression
  with the reference solution, the untouched release, catalogue variants and hostile notebooks,
  beside logistic_regression_evaluation), then on overlapping ones (a second run regrades two
  students of logistic_regression_from_scratch that the first is grading). The order is
  made certain by waiting on the server's advisory locks and by stopping the first run (SIGSTOP)
  until the second holds, or waits for, its students. Every grade then equals the SQLite run's
  of the same notebook (tests/conftest.py's graded_catalogue and, for the hostile ones, graded_submissions),
  cell by cell, none lost and none duplicated; only the coordinators ever connected;
- `status`, `scores`, `report`, `feedback`, `return` and `export` (nbgrader's CSV and Canvas's).
"""

import contextlib
import csv
import io
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import sqlalchemy
from nbgrader.api import Gradebook

from course import samples
from course.__main__ import main
from course.common import open_api
from course.graders import advisory_key
from course.status import status_rows

from catalogue import CATALOGUES, Variant
from conftest import (
    HONEST,
    REFERENCE,
    REPO,
    TEST_CELL_TIMEOUT,
    UNTOUCHED,
    make_course,
    reference_answers,
    release_notebook,
    submit_variants,
)
from grades import cell_results
from hostile import HOSTILE

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.postgres]

LR, FS, EV = "logistic_regression", "logistic_regression_from_scratch", "logistic_regression_evaluation"
CATALOGUE_INDICES = (0, -1)  # per assignment: a wrong answer and a right one written another way
# The hostile notebooks whose grading leaves a mark of its own in the gradebook: maximum points from
# the gradebook, not the notebook; a deleted test cell restored; a kernel that dies; exploits failed by
# the re-check. (test_parallel.py compares every hostile notebook graded by course grade with stock
# nbgrader, on SQLite.)
HOSTILE_HERE = [
    variant
    for variant in HOSTILE
    if variant.name
    in {
        "raised_points",
        "deleted_test_cell",
        "kills_its_kernel",
        "patched_numpy_comparisons",
        "object_equal_to_everything",
    }
]
PREFIX = {LR: "", FS: "fs_", EV: "ev_"}  # each assignment's students have ids of their own: phase 1 is disjoint
DATABASE, ROLE = "course", "grader"
COURSE_ID = "logistic-regression"
DEADLINE = 300  # seconds any awaited condition may take on a busy machine


# ---- The throwaway server ----


def postgres_programs():
    """The folder of PostgreSQL's initdb and pg_ctl (Debian's newest version first), or None."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if found:
        return found[-1].parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl and Path(pg_ctl).resolve().with_name("initdb").exists() else None


def wait_until(condition, what, timeout=DEADLINE, interval=0.05):
    """Poll `condition` until it returns something true, and return that; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"gave up after {timeout} s waiting for {what}")
        time.sleep(interval)


class Server:
    """A PostgreSQL server in a folder of its own, listening on a Unix socket there only."""

    def __init__(self, programs, base):
        self.programs, self.base = programs, Path(base)
        self.data, self.log = self.base / "data", self.base / "server.log"
        account = pwd.getpwnam("nobody") if os.geteuid() == 0 else None  # the server refuses to run as root
        self.user = (
            ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"] if account else []
        )
        if account:
            os.chown(self.base, account.pw_uid, account.pw_gid)
        self.env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "TZ": "UTC"}

    def run(self, program, *args, timeout=180):
        return subprocess.run(
            [*self.user, str(self.programs / program), *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self):
        init = self.run(
            "initdb", "-D", str(self.data), "-U", ROLE, "--auth=trust", "--no-locale", "-E", "UTF8", "--no-sync"
        )
        assert init.returncode == 0, f"initdb failed: {init.stdout[-2000:]}{init.stderr[-2000:]}"
        options = " ".join(
            [
                "-c listen_addresses=''",  # no TCP at all
                f"-c unix_socket_directories={self.base}",
                "-c unix_socket_permissions=0700",  # the server's user, and root
                "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",  # throwaway data
                "-c log_connections=on",
                "-c max_connections=40",
            ]
        )
        # -w: pg_ctl waits until the server accepts connections (it polls; -t is its deadline)
        started = self.run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "120", "start"
        )
        if started.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            pytest.fail(f"PostgreSQL did not start: {started.stdout[-1000:]}{started.stderr[-1000:]}\n{log}")
        wait_until(self.accepts_connections, "the server to accept connections", timeout=60, interval=0.2)
        self.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self):
        self.run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "-t", "60", "stop")

    def url(self, database=DATABASE, application=None):
        query = f"?host={self.base}" + (f"&application_name={application}" if application else "")
        return f"postgresql://{ROLE}@/{database}{query}"

    def accepts_connections(self):
        try:
            self.execute("SELECT 1")
            return True
        except sqlalchemy.exc.OperationalError:
            return False

    def execute(self, statement, in_database="postgres", **parameters):
        engine = sqlalchemy.create_engine(self.url(in_database), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                result = connection.execute(sqlalchemy.text(statement), parameters)
                return result.all() if result.returns_rows else None
        finally:
            engine.dispose()

    def course_pids(self):
        """The pids of every process that connected as `course-<pid>` (the course's db_url), from the server's log."""
        return {int(pid) for pid in re.findall(r"application_name=course-(\d+)", self.log.read_text(errors="replace"))}

    def advisory_locks(self):
        """{(client pid, lock key): granted} of every advisory lock held or awaited in the course's database."""
        rows = self.execute(
            "SELECT a.application_name, l.classid, l.objid, l.granted FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = 'advisory' AND a.datname = :database",
            database=DATABASE,
        )
        locks = {}
        for name, high, low, granted in rows:
            if name and name.startswith("course-"):
                key = int.from_bytes(int(high).to_bytes(4, "big") + int(low).to_bytes(4, "big"), "big", signed=True)
                locks[int(name.removeprefix("course-")), key] = granted
        return locks


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL server with an empty database `course`, stopped and removed after the session."""
    programs = postgres_programs()
    if programs is None:
        message = (
            "PostgreSQL's server programs (initdb, pg_ctl) are missing: apt-get install postgresql (make test does)"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = Path(tempfile.mkdtemp(prefix="course-postgres-"))  # short: a socket path has at most 107 bytes
    base.chmod(0o755)
    server = Server(programs, base)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


# ---- The course on it ----


def catalogue_subset(assignment):
    variants = CATALOGUES[assignment]
    return list({variants[index].name: variants[index] for index in CATALOGUE_INDICES}.values())


def planned_students():
    """{assignment: {student id in the PostgreSQL course: (its name in the SQLite courses, where to find it)}}."""
    plan = {}
    for assignment in (LR, FS, EV):
        names = [REFERENCE, UNTOUCHED] + [variant.name for variant in catalogue_subset(assignment)]
        plan[assignment] = {PREFIX[assignment] + name: (name, "catalogue") for name in names}
    plan[LR].update({variant.name: (variant.name, "hostile") for variant in HOSTILE_HERE + [HONEST]})
    return plan


def write_submissions(root, plan):
    """Every planned submission but the honest student's, who submits through the exchange."""
    for assignment, students in plan.items():
        release = release_notebook(root, assignment)
        reference = samples.notebooks.fill(release, reference_answers(assignment))
        variants = {v.name: v for v in CATALOGUES[assignment] + (HOSTILE if assignment == LR else [])}
        for student, (name, _) in students.items():
            if name == HONEST.name:
                continue
            if name == REFERENCE:
                samples.notebooks.write_submission(reference, root, student, assignment)
            elif name == UNTOUCHED:
                samples.notebooks.write_submission(release, root, student, assignment)
            else:
                submit_variants(root, assignment, [Variant(student, variants[name].answers, edit=variants[name].edit)])


def launch(root, *args):
    """`python -m course --root ROOT ARGS` as a process of its own, started now."""
    return subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(root), *args],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its workers in its process group, to be ended with it
    )


def finish(process, timeout=1800):
    stdout, stderr = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def command(root, *args):
    """`python -m course` in this process, as a completed process (for fixtures, which have no capsys)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = main(["--root", str(root), *args])
    return subprocess.CompletedProcess(args, status, stdout.getvalue(), stderr.getvalue())


def in_process(root, *args, capsys):
    """`python -m course` in this process (its imports are paid once); (exit status, stdout, stderr)."""
    status = main(["--root", str(root), *args])
    out = capsys.readouterr()
    return status, out.out, out.err


def keys(students):
    return {advisory_key(COURSE_ID, student) for student in students}


def holds(server, pid, students):
    locks = server.advisory_locks()
    return all(locks.get((pid, key)) is True for key in keys(students))


def awaits(server, pid):
    return any(granted is False for (holder, _), granted in server.advisory_locks().items() if holder == pid)


@pytest.fixture(scope="module")
def term(postgres):
    """The course's term on PostgreSQL; returns everything the tests below read."""
    timings, started = {}, time.monotonic()
    base = Path(tempfile.mkdtemp(prefix="course-pg-term-"))
    base.chmod(0o755)
    root, exchange, home = base / "course", base / "exchange", base / "student"
    exchange.mkdir()
    home.mkdir()
    make_course(root, cell_timeout=TEST_CELL_TIMEOUT)
    sqlite_url = f"sqlite:///{root / 'gradebook.db'}"
    copied = command(root, "copy-gradebook", "--to", postgres.url())
    out = {"copy-gradebook": copied, "copy matches": tables(sqlite_url) == tables(postgres.url())}
    (root / "gradebook.db").unlink()  # from here on, only the server holds the gradebook
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(
            "\n# Test course on PostgreSQL (tests/test_postgres.py): each process names itself to the server.\n"
            "import os\n"
            f'c.CourseDirectory.db_url = f"postgresql://{ROLE}@/{DATABASE}?host={postgres.base}'
            '&application_name=course-{os.getpid()}"\n'
            f"c.Exchange.root = {str(exchange)!r}\n"
            "c.ExchangeCollect.check_owner = False  # the student below shares this process's user id\n"
        )
    launched = []

    def course(*args):
        process = launch(root, *args)
        launched.append(process)
        return process

    try:
        out["release"] = command(root, "release", LR)
        samples.fetch_and_submit(root, exchange, COURSE_ID, LR, HONEST.name, "perfect", home)
        out["collect"] = command(root, "collect", LR)
        plan = planned_students()
        write_submissions(root, plan)
        timings["set-up"] = time.monotonic() - started

        # Phase 1, disjoint students: logistic_regression (the first run) and logistic_regression_evaluation.
        started = time.monotonic()
        first = course("grade", LR, "--jobs", "2")
        wait_until(lambda: holds(postgres, first.pid, plan[LR]), "the first run to hold its students")
        os.kill(first.pid, signal.SIGSTOP)  # it stays mid-run until the second run holds its own students
        try:
            second = course("grade", EV, "--jobs", "1")
            wait_until(lambda: holds(postgres, second.pid, plan[EV]), "the second run to hold its students")
            out["disjoint, both held their students at once"] = True
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out["disjoint"] = (finish(first), finish(second))
        timings["two runs at once, disjoint students"] = time.monotonic() - started

        # Phase 2, overlapping students: the second run regrades two students the first is grading.
        started = time.monotonic()
        overlap = sorted(plan[FS])[-2:]
        first = course("grade", FS, "--jobs", "2")
        wait_until(lambda: holds(postgres, first.pid, overlap), "the first run to hold the shared students")
        os.kill(first.pid, signal.SIGSTOP)
        try:
            second = course("grade", FS, "--jobs", "1", "--student", *overlap)
            wait_until(lambda: awaits(postgres, second.pid), "the second run to wait for the shared students")
            out["overlapping, the second run waited"] = True
        finally:
            os.kill(first.pid, signal.SIGCONT)
        out["overlapping"] = (finish(first), finish(second), overlap)
        timings["two runs at once, overlapping students"] = time.monotonic() - started

        out["coordinators"] = {process.pid for process in launched} | {os.getpid()}
        out["connected"] = postgres.course_pids()
        yield {"root": root, "plan": plan, "out": out, "timings": timings, "server": postgres}
        print("test_postgres timings: " + ", ".join(f"{what} {seconds:.0f} s" for what, seconds in timings.items()))
    finally:
        for process in launched:  # a failed wait leaves a run behind: it must not outlive the test
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        shutil.rmtree(base, ignore_errors=True)


def tables(url):
    """Every row of every nbgrader table at `url`, as sorted tuples: two gradebooks compared as data."""
    from nbgrader.api import Base

    engine = sqlalchemy.create_engine(url)
    try:
        with engine.connect() as connection:
            return {
                table.name: sorted(
                    (tuple(row) for row in connection.execute(table.select())), key=lambda row: tuple(map(str, row))
                )
                for table in Base.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def sqlite_results(graded_catalogue, graded_submissions, assignment, students):
    """cell_results of the SQLite runs for `students` ({id here: (name there, where)}), keyed by the ids here."""
    roots = {
        "catalogue": lambda name: graded_catalogue[0][assignment, name],
        "hostile": lambda name: graded_submissions["roots"][assignment, name],
    }
    cells, penalties = {}, {}
    by_root = {}
    for student, (name, where) in students.items():
        by_root.setdefault(roots[where](name), {})[name] = student
    for root, names in by_root.items():
        some_cells, some_penalties = cell_results(root, assignment)
        cells.update({(names[s], cell): value for (s, cell), value in some_cells.items() if s in names})
        penalties.update({names[s]: value for s, value in some_penalties.items() if s in names})
    return cells, penalties


# ---- The tests ----


def test_copy_gradebook_moves_every_row(term):
    out = term["out"]
    assert out["copy-gradebook"].returncode == 0, out["copy-gradebook"].stderr[-2000:]
    assert "3 assignments" in out["copy-gradebook"].stdout
    assert out["copy matches"], "the copy on the server holds exactly the rows of the SQLite gradebook"


def test_release_and_collect_work_on_the_server(term):
    out = term["out"]
    assert out["release"].returncode == 0 and "released logistic_regression" in out["release"].stdout, out[
        "release"
    ].stderr[-2000:]
    assert out["collect"].returncode == 0 and HONEST.name in out["collect"].stdout, out["collect"].stderr[-2000:]


def test_two_runs_on_disjoint_students_both_finish(term):
    out, plan = term["out"], term["plan"]
    assert out["disjoint, both held their students at once"]
    for run, assignment in zip(out["disjoint"], (LR, EV), strict=True):
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        n = len(plan[assignment])
        assert f"graded {n} of {n} submissions of {assignment}" in run.stdout


def test_two_runs_on_overlapping_students_take_turns(term):
    out, plan = term["out"], term["plan"]
    first, second, overlap = out["overlapping"]
    assert out["overlapping, the second run waited"]
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-2000:] + second.stderr[-2000:]
    assert f"graded {len(plan[FS])} of {len(plan[FS])} submissions" in first.stdout
    assert f"graded {len(overlap)} of {len(overlap)} submissions" in second.stdout
    assert f"waiting for another course grade run, which is grading {', '.join(overlap)}" in second.stderr


def test_every_grade_equals_the_sqlite_runs_none_lost_none_duplicated(term, graded_catalogue, graded_submissions):
    server, plan = term["server"], term["plan"]
    for assignment, students in plan.items():
        cells, penalties = cell_results(server.url(), assignment, COURSE_ID)
        expected_cells, expected_penalties = sqlite_results(graded_catalogue, graded_submissions, assignment, students)
        assert set(penalties) == set(students) == set(expected_penalties), assignment
        assert cells == expected_cells, assignment
        assert penalties == expected_penalties, assignment
    counts = server.execute(
        "SELECT a.name, s.student_id, count(*) FROM submitted_assignment s JOIN assignment a ON a.id = s.assignment_id "
        "GROUP BY a.name, s.student_id HAVING count(*) > 1",
        in_database=DATABASE,
    )
    assert counts == [], "a student has one submission per assignment"
    grades = server.execute(
        "SELECT count(*), count(DISTINCT (g.cell_id, g.notebook_id)) FROM grade g", in_database=DATABASE
    )[0]
    assert grades[0] == grades[1] == sum(len(cells_of(server, a)) * len(s) for a, s in plan.items())


def cells_of(server, assignment):
    with Gradebook(server.url(), COURSE_ID) as gradebook:
        return [
            cell.name for notebook in gradebook.find_assignment(assignment).notebooks for cell in notebook.grade_cells
        ]


def test_only_coordinators_connect_to_the_course_gradebook(term):
    """Workers load the course's config too (its db_url names their pid), but grade in a private SQLite gradebook."""
    out = term["out"]
    assert out["connected"], "the server logged the course's connections"
    assert out["connected"] <= out["coordinators"], (
        f"processes other than the commands this test ran connected: {out['connected'] - out['coordinators']}"
    )


def test_every_other_command_works_on_the_server(term, capsys, tmp_path):
    root, plan = term["root"], term["plan"]
    status, stdout, _ = in_process(root, "status", LR, capsys=capsys)
    assert status == 0 and stdout.splitlines()[0].split()[:2] == ["student", "submitted"]
    rows = {row["student"]: row for row in status_rows(open_api(root), LR)}
    assert set(rows) == set(plan[LR]) and {row["graded"] for row in rows.values()} == {"yes"}
    status, stdout, _ = in_process(root, "scores", LR, capsys=capsys)
    assert status == 0 and stdout.splitlines()[0].split()[1:] == sorted(plan[LR])
    status, stdout, _ = in_process(root, "report", LR, capsys=capsys)
    assert status == 0 and (root / "reports" / LR / "index.html").is_file()
    status, stdout, _ = in_process(root, "feedback", LR, "--student", HONEST.name, "--allow-pending", capsys=capsys)
    assert status == 0 and (root / "feedback" / HONEST.name / LR / f"{LR}.html").is_file(), stdout
    status, stdout, _ = in_process(root, "return", LR, "--allow-pending", capsys=capsys)
    assert f"returned feedback on {LR} to 1 of " in stdout
    status, stdout, stderr = in_process(root, "export", capsys=capsys)
    assert status == 0, stdout + stderr
    rows = list(csv.DictReader(open(root / "grades.csv", newline="")))
    assert len(rows) == 3 * len({student for students in plan.values() for student in students})
    roster = tmp_path / "roster.csv"
    everyone = sorted({student for students in plan.values() for student in students})
    with open(roster, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["student_id", "SIS Login ID"])
        writer.writerows([student, f"login{number}"] for number, student in enumerate(everyone))
    status, stdout, stderr = in_process(root, "export", "--format", "canvas", "--roster", str(roster), capsys=capsys)
    assert status == 0, stdout + stderr
    canvas = list(csv.reader(open(root / "canvas_grades.csv", newline="")))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *sorted(plan)]
    assert canvas[1][0] == "    Points Possible" and len(canvas) == 2 + len(everyone)
