"""One term on the course's real JupyterHub (course/hub.py), through the browser.

`python -m course hub` runs for the module with an instructor and three students, real accounts
named with a random prefix (removed afterwards). Each person has a Chromium context of their own and
logs in on the hub's login page. The instructor sets a due date (already past, so every submission
is one day late) and releases logistic_regression in Formgrader; two students fetch it in the
Assignment List, type their answers (one right, one with typical mistakes), run it, Validate and
submit, one of them twice; the third, an intruder, submits a notebook that reads what it can. The
instructor collects, autogrades each student with Formgrader's button (the sandbox: the intruder
finds nothing), hand-grades the written answers, generates and releases feedback, which each
student fetches and reads; the exported grades match the gradebook, late penalty included.
Ctrl-C then stops the hub and leaves no process of its users.
"""

import csv
import os
import pwd
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from course import notebooks
from course.samples import TYPICAL_MISTAKES, run_python

from browser_support import ARTIFACTS, LOAD, RUN, VIEWPORT, Notebook, chromium_session
from conftest import REPO, reference_answers
from inert import FLAG, WRITTEN_TEXT, act, output_payloads, written_answer

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.root,
    pytest.mark.hub,
    pytest.mark.sandbox,
    pytest.mark.skipif(os.geteuid() != 0, reason="the hub makes accounts and runs servers as them, which needs root"),
]

try:
    from playwright.sync_api import expect
except ImportError:  # reported by chromium_session
    expect = None
else:
    expect.set_options(timeout=LOAD)

ASSIGNMENT = "logistic_regression"
WRITTEN = "reflection"
GOOD_REFLECTION = (
    "Hours studied raise the log-odds of passing; the model is fitted on few students, so it is uncertain."
)
COMMENT = "Say which numbers above support this."
SCORES = {"student1": "3", "student2": "1"}
# The intruder's first answer cell: it reports what it could read; the grading sandbox must leave it nothing.
INTRUDER = """\
import glob, os
for pattern in {patterns!r}:
    for path in glob.glob(pattern) or [pattern]:
        try:
            found = os.listdir(path) if os.path.isdir(path) else open(path, "rb").read(200)
            print("INTRUDER READ", path, str(found)[:80])
        except OSError as error:
            print("INTRUDER BLOCKED", path, type(error).__name__)
"""


def free_ports():
    """A port whose next two ports are free too."""
    for _ in range(50):
        port = random.randrange(20000, 40000)
        try:
            for number in (port, port + 1, port + 2):
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", number))
            return port
        except OSError:
            continue
    raise RuntimeError("no three free ports in a row")


class Hub:
    """`python -m course hub` in the background, with the passwords it printed."""

    def __init__(self, state):
        self.prefix = "t" + secrets.token_hex(3)
        self.port = free_ports()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = state
        self.instructor = f"{self.prefix}instructor"
        self.students = [f"{self.prefix}student{n}" for n in (1, 2, 3)]
        self.log_path = state.parent / "course-hub.log"
        self.passwords = {}
        command = [sys.executable, "-m", "course", "hub", "--prefix", self.prefix, "--students", "3"]
        command += ["--state", str(state), "--port", str(self.port)]
        self.log = open(self.log_path, "w")
        self.process = subprocess.Popen(command, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_until_up(self, timeout=180):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"course hub exited with {self.process.returncode}:\n{self.log_tail()}")
            text = self.log_path.read_text()
            if "JupyterHub is now running" in text:
                self.passwords = dict(re.findall(r"new account (\S+), password (\S+)", text))
                return self
            time.sleep(0.2)
        raise RuntimeError(f"the hub did not start within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines=60):
        text = self.log_path.read_text(errors="replace") + (self.state / "hub" / "jupyterhub.log").read_text()
        return "\n".join(text.splitlines()[-lines:])

    def user(self, short):
        """The account name of `instructor`, `student1`, ..."""
        return self.prefix + short

    def course(self):
        return Path(pwd.getpwnam(self.instructor).pw_dir) / "logistic-regression"

    def processes_of_users(self):
        import psutil

        names = {self.instructor, *self.students}
        return [p for p in psutil.process_iter(["username", "cmdline"]) if p.info["username"] in names]

    def ctrl_c(self):
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hub")
    folder.chmod(0o755)  # users' servers read their configuration in the state folder
    hub = Hub(folder / "state")
    try:
        yield hub.wait_until_up()
    finally:
        if hub.process.poll() is None:
            hub.ctrl_c()
        hub.log.close()
        for name in [hub.instructor, *hub.students]:
            subprocess.run(["userdel", "--remove", "--force", name], capture_output=True)


@pytest.fixture(scope="module")
def browser():
    yield from chromium_session()


class Person:
    """One person's own browser context, logged in through the hub's login page."""

    def __init__(self, browser, hub, name):
        self.hub, self.name = hub, name
        self.context = browser.new_context(viewport=VIEWPORT)
        self.context.set_default_timeout(RUN)
        self.page = self.context.new_page()
        self.page.goto(f"{hub.url}/hub/login")
        self.page.fill("#username_input", name)
        self.page.fill("#password_input", hub.passwords[name])
        self.page.click("#login_submit")
        self.page.wait_for_url(re.compile(rf"/user/{name}/lab"), timeout=LOAD * 2)
        self.page.locator("#jp-main-dock-panel").wait_for(timeout=LOAD)

    def base(self):
        return f"{self.hub.url}/user/{self.name}"

    def lab_url(self, path, workspace):
        return f"{self.base()}/lab/workspaces/{workspace}/tree/{path}"

    def status_of(self, path):
        """The HTTP status of GET `path` on the hub, with this person's cookies."""
        return self.context.request.get(self.hub.url + path, max_redirects=0).status


@pytest.fixture(scope="module")
def people(browser, hub):
    return {}


@pytest.fixture(autouse=True)
def screenshots(request, people):
    """After each test, a screenshot of each person's page in tests/browser-artifacts/hub-TEST-PERSON.png."""
    yield
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for short, someone in people.items():
        if not someone.page.is_closed():
            someone.page.screenshot(path=str(ARTIFACTS / f"hub-{name}-{short}.png"))


def person(people, browser, hub, short):
    if short not in people:
        people[short] = Person(browser, hub, hub.user(short))
    return people[short]


def formgrader(instructor, page="manage_assignments"):
    instructor.page.goto(f"{instructor.base()}/formgrader/{page}")
    return instructor.page


def close_success(page, text):
    modal = page.locator("#success-modal")
    expect(modal).to_contain_text(text, timeout=RUN)
    modal.get_by_role("button", name="Close").first.click()
    expect(modal).to_have_count(0)


def answers_of(kind):
    answers = reference_answers(ASSIGNMENT)
    answers[WRITTEN] = GOOD_REFLECTION
    if kind == "typical":
        answers.update(TYPICAL_MISTAKES[ASSIGNMENT])
    return answers


def open_assignment_list(page):
    page.locator(".lm-MenuBar").get_by_role("menuitem", name="Nbgrader", exact=True).click()
    page.locator(".lm-Menu").get_by_role("menuitem", name="Assignment List", exact=True).click()
    panel = page.locator("#nbgrader-assignment-list")
    panel.wait_for(timeout=LOAD)
    return panel


def type_answers(notebook, release, answers):
    """Type each answer into its cell, as a student does: click into it, select all, enter the text."""
    page = notebook.page
    for index, cell in enumerate(release.cells):
        grade_id = notebooks.grade_id(cell)
        if not notebooks.is_answer_cell(cell) or grade_id not in answers:
            continue
        shown = notebook.cell(index)
        shown.scroll_into_view_if_needed()
        if cell.cell_type == "markdown":
            shown.dblclick()
        editor = shown.locator(".cm-content")
        editor.click()
        page.keyboard.press("Control+a")
        page.keyboard.insert_text(answers[grade_id])


# ---- 1. the instructor releases with a due date ----


def test_instructor_releases_with_a_due_date(hub, browser, people):
    instructor = person(people, browser, hub, "instructor")
    page = formgrader(instructor)
    row = page.locator("tr", has_text=ASSIGNMENT).first
    row.locator(".edit a").click()
    due = datetime.now(UTC) - timedelta(hours=1)  # past: every submission is one (started) day late
    page.locator("#edit-assignment-modal input.modal-duedate").fill(due.strftime("%Y-%m-%dT%H:%M"))
    page.locator("#edit-assignment-modal input.modal-timezone").fill("UTC")
    page.locator("#edit-assignment-modal button.save").click()
    expect(page.locator("#edit-assignment-modal")).to_have_count(0)
    row.locator(".release a").click()
    close_success(page, "Successfully released")
    assert (hub.state / "exchange" / "logistic-regression" / "outbound" / ASSIGNMENT).is_dir()


# ---- 2. students fetch, answer, run, validate and submit ----


@pytest.mark.parametrize("short, kind", [("student1", "right"), ("student2", "typical")])
def test_student_fetches_answers_validates_and_submits(hub, browser, people, short, kind):
    student = person(people, browser, hub, short)
    page = student.page
    panel = open_assignment_list(page)
    panel.get_by_role("button", name="Fetch").click()
    fetched = panel.locator("#fetched_assignments_list")
    # The fetched assignment unfolds into its notebooks; clicking one opens it in Lab.
    fetched.locator(".assignment-notebooks-link", has_text=ASSIGNMENT).click()
    fetched.locator(".assignment-notebooks a", has_text=ASSIGNMENT).first.click()
    notebook = Notebook(page, student, f"{ASSIGNMENT}/{ASSIGNMENT}.ipynb", short)
    notebook.panel.wait_for(timeout=LOAD)
    notebook.wait_for_kernel_idle(LOAD)
    release = notebooks.read(hub.course() / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    type_answers(notebook, release, answers_of(kind))
    notebook.run_all()
    notebook.wait_until_run_stopped()
    dialog = notebook.validate()
    expect(dialog.locator("#validation-message")).to_have_class(
        re.compile(r"\bvalidation-success\b" if kind == "right" else r"\bvalidation-failed\b")
    )
    dialog.get_by_role("button", name="Ok").click()
    times = 2 if short == "student1" else 1
    for n in range(times):
        panel = open_assignment_list(page)
        panel.locator("#fetched_assignments_list").get_by_role("button", name="Submit").click()
        expect(panel.locator("#submitted_assignments_list")).to_contain_text(ASSIGNMENT)
        inbound = hub.state / "exchange" / "logistic-regression" / "inbound"
        deadline = time.monotonic() + 60
        while len(list(inbound.glob(f"{student.name}+{ASSIGNMENT}+*"))) < n + 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(list(inbound.glob(f"{student.name}+{ASSIGNMENT}+*"))) == n + 1


def test_intruder_submits_from_the_command_line(hub):
    """The third student hands in a notebook whose first answer reads what it can."""
    name = hub.user("student3")
    account = pwd.getpwnam(name)
    course = hub.course()
    patterns = [
        str(course / "source" / ASSIGNMENT / "*.ipynb"),
        str(course / "gradebook.db"),
        str(hub.state / "exchange" / "logistic-regression" / "inbound"),
        str(Path(pwd.getpwnam(hub.user("student1")).pw_dir) / ASSIGNMENT / "*"),
        "/home/*",
    ]
    env = {
        "HOME": account.pw_dir,
        "USER": name,
        "JUPYTER_CONFIG_PATH": str(hub.state / "jupyter" / "student"),
        "PATH": os.environ["PATH"],
    }
    plain = ["--Authenticator.plugin_class=nbgrader.auth.NoAuthPlugin"]  # no hub token on the command line
    user = (account.pw_uid, account.pw_gid)
    reach = {"reachable": [hub.state], "cwd": account.pw_dir, "env": env}
    fetched = run_python(["-m", "nbgrader", "fetch_assignment", ASSIGNMENT, *plain], user, **reach)
    assert fetched.returncode == 0, fetched.stderr[-2000:]
    release = notebooks.read(Path(account.pw_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    first = next(notebooks.grade_id(cell) for cell in release.cells if notebooks.is_answer_cell(cell))
    answers = {
        first: INTRUDER.format(patterns=patterns),
        # script for the instructor's browser (tests/inert.py): Formgrader must show it inert
        WRITTEN: written_answer(),
        "accuracy": output_payloads(),
    }
    notebooks.write(
        notebooks.fill(release, answers),
        Path(account.pw_dir) / ASSIGNMENT / f"{ASSIGNMENT}.ipynb",
    )
    submitted = run_python(["-m", "nbgrader", "submit", ASSIGNMENT, *plain], user, **reach)
    assert submitted.returncode == 0, submitted.stderr[-2000:]


# ---- 3. what a student cannot reach ----


def test_a_student_reaches_no_formgrader_no_inbound_and_no_other_server(hub, browser, people):
    student = person(people, browser, hub, "student1")
    other = hub.user("student2")
    assert student.status_of(f"/user/{student.name}/formgrader") == 404
    page = student.page
    page.goto(f"{student.base()}/lab")
    page.locator(".lm-MenuBar").get_by_role("menuitem", name="Nbgrader", exact=True).click()
    menu = page.locator(".lm-Menu")
    expect(menu.get_by_role("menuitem", name="Assignment List", exact=True)).to_be_visible()
    expect(menu.get_by_role("menuitem", name="Formgrader", exact=True)).to_have_count(0)
    expect(menu.get_by_role("menuitem", name="Create assignment", exact=True)).to_have_count(0)
    page.keyboard.press("Escape")
    assert student.status_of(f"/user/{other}/api/contents") in (302, 403, 404)
    assert student.status_of(f"/user/{hub.instructor}/formgrader") in (302, 403, 404)
    # What the student's own server (and so their notebooks' kernels) sees, in its mount namespace.
    home = Path(pwd.getpwnam(student.name).pw_dir)
    refused = {
        hub.state / "exchange" / "logistic-regression" / "inbound": "PermissionError",
        Path(pwd.getpwnam(other).pw_dir): "PermissionError",
        hub.course(): "PermissionError",
        hub.state / "hub": "PermissionError",
        REPO / "source": "FileNotFoundError",  # the clone the hub runs from is covered
        home: None,  # the probe itself works: their own home
    }
    for path, error in refused.items():
        result = in_server_of(student.name, f"import os; print(os.listdir({str(path)!r}))")
        if error:
            assert error in result.stderr, (path, result.stdout, result.stderr[-1000:])
        else:
            assert result.returncode == 0 and ASSIGNMENT in result.stdout, (path, result.stderr[-1000:])


def in_server_of(name, code):
    """Run Python `code` as `name` in the mount namespace of their server: what their notebooks see."""
    import psutil

    server = next(
        process
        for process in psutil.process_iter(["username", "cmdline"])
        if process.info["username"] == name and "jupyterhub-singleuser" in " ".join(process.info["cmdline"] or [])
    )
    account = pwd.getpwnam(name)
    switch = ["setpriv", f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--init-groups", "--"]
    command = ["nsenter", f"--target={server.pid}", "--mount", "--", *switch, sys.executable, "-c", code]
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


# ---- 4. the instructor collects, grades in the sandbox, grades by hand, feedback ----


def test_instructor_collects_grades_in_the_sandbox_and_grades_by_hand(hub, browser, people):
    instructor = person(people, browser, hub, "instructor")
    page = formgrader(instructor)
    page.locator("tr", has_text=ASSIGNMENT).first.locator(".collect a").click()
    close_success(page, "Successfully collected")
    page = formgrader(instructor, f"manage_submissions/{ASSIGNMENT}")
    for short in ("student1", "student2", "student3"):
        name = hub.user(short)
        page.locator("tr", has_text=name).first.locator(".autograde a").click()
        close_success(page, f"Successfully autograded '{ASSIGNMENT}' for student '{name}'")
    # The intruder's notebook ran in the sandbox: nothing of the instructor, the exchange or the others.
    graded = notebooks.read(hub.course() / "autograded" / hub.user("student3") / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")
    printed = "".join(
        output.get("text", "") for cell in graded.cells if cell.cell_type == "code" for output in cell.outputs
    )
    assert "INTRUDER BLOCKED" in printed and "INTRUDER READ" not in printed, printed

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hub.course() / 'gradebook.db'}") as gradebook:
        ids = {
            short: gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, hub.user(short)).id for short in SCORES
        }
    for short, score in SCORES.items():
        page.goto(f"{instructor.base()}/formgrader/submissions/{ids[short]}")
        # Formgrader binds the inputs once it has fetched the grades and comments; it would show
        # (and keep) the gradebook's empty values over anything typed before.
        page.wait_for_function(
            "() => window.formgrader && formgrader.grades && formgrader.grades.loaded"
            " && formgrader.comments && formgrader.comments.loaded"
        )
        page.locator(f"input.score#{WRITTEN}").fill(score)
        page.locator(f"textarea#{WRITTEN}-comment").fill(COMMENT)
        page.locator(f"textarea#{WRITTEN}-comment").press("Tab")
        with Gradebook(f"sqlite:///{hub.course() / 'gradebook.db'}") as gradebook:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                grade = gradebook.find_grade(WRITTEN, ASSIGNMENT, ASSIGNMENT, hub.user(short))
                comment = gradebook.find_comment(WRITTEN, ASSIGNMENT, ASSIGNMENT, hub.user(short))
                if grade.manual_score == float(score) and comment.manual_comment == COMMENT:
                    break
                gradebook.db.expire_all()
                time.sleep(0.3)
            assert grade.manual_score == float(score) and comment.manual_comment == COMMENT
        page.locator(f"textarea#{WRITTEN}-comment").scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / f"hub-formgrader-manual-grading-{short}.png"))

    assert_formgrader_shows_the_intruder_inert(instructor, page, hub)

    page = formgrader(instructor)
    row = page.locator("tr", has_text=ASSIGNMENT).first
    row.locator(".generate-feedback a").click()
    close_success(page, "Successfully generated feedback")
    row.locator(".release-feedback a").click()
    close_success(page, "Successfully released feedback")


def assert_formgrader_shows_the_intruder_inert(instructor, page, hub):
    """The intruder's written answer and outputs carry script (tests/inert.py): in the instructor's
    Formgrader none of it runs, though the same code run by the page itself does."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{hub.course() / 'gradebook.db'}") as gradebook:
        intruder = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, hub.user("student3")).id
    page.goto(f"{instructor.base()}/formgrader/submissions/{intruder}")
    page.wait_for_function("() => window.formgrader && formgrader.grades && formgrader.grades.loaded")
    page.get_by_text(WRITTEN_TEXT).wait_for()
    page.wait_for_load_state("networkidle", timeout=LOAD)
    assert page.evaluate(f"window.{FLAG} || []") == [], "a payload of the intruder ran in Formgrader"
    page.screenshot(path=str(ARTIFACTS / "hub-formgrader-intruder.png"))
    page.evaluate(act("control"))  # the check sees a payload that does run
    assert page.evaluate(f"window.{FLAG} || []") == ["control"]


# ---- 5. students read their feedback ----


@pytest.mark.parametrize("short", ["student1", "student2"])
def test_student_fetches_and_reads_feedback(hub, browser, people, short):
    student = person(people, browser, hub, short)
    page = student.page
    page.goto(f"{student.base()}/lab")
    panel = open_assignment_list(page)
    panel.get_by_role("button", name="Fetch Feedback").first.click()
    # nbgrader's "(view feedback)" takes the file browser to the fetched feedback's folder.
    panel.get_by_text("(view feedback)").first.click()
    home = Path(pwd.getpwnam(student.name).pw_dir)
    fetched = sorted((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
    assert fetched, "no feedback fetched"
    listing = page.locator(".jp-DirListing-content")
    expect(listing.get_by_text(f"{ASSIGNMENT}.html")).to_be_visible()
    feedback = page.context.new_page()
    feedback.goto(f"{student.base()}/files/{quote(str(fetched[-1].relative_to(home)))}")
    text = feedback.locator("body").inner_text()
    assert COMMENT in text
    assert re.search(rf"{SCORES[short]}(\.0)?\s*/\s*3", text), text[:2000]
    source = "\n".join(
        cell.source for cell in notebooks.read(REPO / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").cells
    )
    blocks = re.compile(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", re.S)
    shown = blocks.sub("", source)  # what the student may see: the release, the solutions, the visible tests
    hidden = {line.strip() for block in blocks.findall(source) for line in block.splitlines()}
    hidden = [line for line in hidden if len(line) > 12 and line not in shown]
    assert hidden and not [line for line in hidden if line in text], [line for line in hidden if line in text]
    if short == "student2":
        assert "AssertionError" in text or "failed" in text.lower()


# ---- 6. the export matches the gradebook, late penalty included; Ctrl-C stops everything ----


def test_export_matches_the_gradebook_with_the_late_penalty(hub):
    from nbgrader.api import Gradebook

    course = hub.course()
    account = pwd.getpwnam(hub.instructor)
    exported = run_python(
        ["-m", "course", "--root", str(course), "export", "--to", "grades.csv"],
        (account.pw_uid, account.pw_gid),
        cwd=course,
        env={"HOME": account.pw_dir, "PATH": os.environ["PATH"]},
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    rows = {row["student_id"]: row for row in csv.DictReader(open(course / "grades.csv"))}
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        for short in ("student1", "student2"):
            submission = gradebook.find_submission(ASSIGNMENT, hub.user(short))
            assert submission.late_submission_penalty > 0
            row = rows[hub.user(short)]
            assert float(row["score"]) == pytest.approx(submission.score - submission.late_submission_penalty)


def test_ctrl_c_stops_the_hub_and_every_users_process(hub, people):
    for person_ in people.values():
        person_.context.close()
    assert hub.ctrl_c() == 0, hub.log_tail()
    assert not hub.processes_of_users()
