"""`course grade` in sandboxes, with local workers or on a Dask cluster, gives the grades of stock
sequential `nbgrader autograde`, cell by cell."""

import copy
import json
import os
import pickle
import socket
import subprocess
import sys
import time

import pytest
from nbgrader.api import Gradebook

from course import notebooks
from course.common import open_api
from course.feedback import generate_feedback
from course.plugins.feedback import ShowFailuresNotTests

from catalogue import CATALOGUES, Variant
from conftest import (
    HONEST,
    HOSTILE_CELL_TIMEOUT,
    REFERENCE,
    REPO,
    UNTOUCHED,
    make_course,
    parity_variants,
    runs_a_sandbox,
    submit_variants,
)
from grades import cell_results
from hostile import HOSTILE
from private import private_lines, visible_text

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT = "logistic_regression"
# The catalogues are graded by --jobs 2 in graded_catalogue (conftest.py) and compared below, assignment by
# assignment; this module's own --jobs 2 run grades the hostile notebooks with the honest student.
STUDENTS = HOSTILE + [HONEST]
# Dask grades a subset: right and wrong answers, a kernel that dies, an exploit only the re-check catches,
# and an endless loop.
DASK_NAMES = {
    REFERENCE,
    CATALOGUES[ASSIGNMENT][0].name,
    CATALOGUES[ASSIGNMENT][-1].name,
    "kills_its_kernel",
    "patched_numpy_comparisons",
    "infinite_loop",
}
GRADED = {
    "local": STUDENTS,
    "dask": [v for v in [Variant(REFERENCE, {}), *CATALOGUES[ASSIGNMENT], *STUDENTS] if v.name in DASK_NAMES],
}
BIN = os.path.dirname(sys.executable)


def stock_results(graded_submissions, students, assignment=ASSIGNMENT):
    """cell_results of stock nbgrader for `students`, from the courses that graded them once per suite."""
    names = {variant.name for variant in students}
    roots = {graded_submissions["roots"][assignment, name] for name in names}
    cells, penalties = {}, {}
    for root in roots:
        some_cells, some_penalties = cell_results(root, assignment)
        cells.update({key: value for key, value in some_cells.items() if key[0] in names})
        penalties.update({key: value for key, value in some_penalties.items() if key in names})
    return cells, penalties


def course_grade(root, *options):
    return subprocess.run(
        [sys.executable, "-m", "course", "--root", str(root), "grade", ASSIGNMENT, *options],
        capture_output=True,
        text=True,
        timeout=1800,
    )


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A real Dask scheduler and two single-threaded workers on 127.0.0.1."""
    address = f"tcp://127.0.0.1:{free_port()}"
    scratch = tmp_path_factory.mktemp("dask")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    scheduler = subprocess.Popen(
        [f"{BIN}/dask", "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers = subprocess.Popen(
        [
            f"{BIN}/dask",
            "worker",
            address,
            "--nworkers",
            "2",
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--local-directory",
            str(scratch),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    from distributed import Client

    with Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    yield address
    for process in (workers, scheduler):
        process.terminate()
        process.wait(timeout=60)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, dask_cluster, graded_submissions):
    """The submissions graded by stock nbgrader (graded_submissions, once per suite), by `--jobs 2` and by
    `--scheduler` (Dask), each course with the same config (its shorter cell timeout included)."""
    roots = {how: tmp_path_factory.mktemp(how) for how in GRADED}
    for how, root in roots.items():
        make_course(root, cell_timeout=HOSTILE_CELL_TIMEOUT)
        submit_variants(root, ASSIGNMENT, GRADED[how])
        broken = root / "submitted" / "broken" / ASSIGNMENT  # a student whose grading fails in the worker
        broken.mkdir(parents=True)
        (broken / f"{ASSIGNMENT}.ipynb").write_text("{ this is not a notebook")
    stock_runs = [
        graded_submissions["runs"][graded_submissions["roots"][ASSIGNMENT, variant.name], ASSIGNMENT]
        for variant in STUDENTS
    ]
    assert all(run.returncode == 0 for run in stock_runs)
    roots["stock"] = stock_results(graded_submissions, {v.name: v for how in GRADED for v in GRADED[how]}.values())
    started = time.monotonic()
    runs = {
        "local": course_grade(roots["local"], "--jobs", "2"),
        "dask": course_grade(roots["dask"], "--scheduler", dask_cluster),
    }
    print(f"graded twice in {time.monotonic() - started:.0f} s")
    return roots, runs


@pytest.mark.parametrize("how", ["local", "dask"])
def test_grades_are_identical_to_stock_nbgrader(graded, how):
    roots, runs = graded
    names = {variant.name for variant in GRADED[how]}
    stock_cells, stock_penalties = roots["stock"]
    stock_cells = {key: value for key, value in stock_cells.items() if key[0] in names}
    stock_penalties = {key: value for key, value in stock_penalties.items() if key in names}
    cells, penalties = cell_results(roots[how], ASSIGNMENT)
    assert len(stock_cells) == len(GRADED[how]) * 12 and len(stock_penalties) == len(GRADED[how])
    assert {k: v for k, v in cells.items() if k[0] != "broken"} == stock_cells, runs[how].stdout[-2000:]
    assert {k: v for k, v in penalties.items() if k != "broken"} == stock_penalties
    for variant in GRADED[how]:
        assert (roots[how] / "autograded" / variant.name / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").is_file()


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_catalogue_grades_are_identical_to_stock_nbgrader(graded_catalogue, graded_submissions, assignment):
    """`course grade --jobs 2` on the whole catalogue (graded_catalogue) against stock nbgrader on the
    reference solution, the untouched release and the parity variants, cell by cell and with the penalties."""
    students = [Variant(REFERENCE, {}), Variant(UNTOUCHED, {}), *parity_variants(assignment)]
    stock_cells, stock_penalties = stock_results(graded_submissions, students, assignment)
    roots, _ = graded_catalogue
    cells, penalties = cell_results(roots[assignment, REFERENCE], assignment)
    names = {variant.name for variant in students}
    assert len(stock_penalties) == len(students) and stock_cells
    assert {key: value for key, value in cells.items() if key[0] in names} == stock_cells
    assert {key: value for key, value in penalties.items() if key in names} == stock_penalties


@pytest.mark.parametrize("how", ["local", "dask"])
def test_a_failing_task_costs_one_student_and_the_run_ends_with_a_summary(graded, how):
    _, runs = graded
    assert runs[how].returncode == 1, runs[how].stderr[-2000:]
    assert f"graded {len(GRADED[how])} of {len(GRADED[how]) + 1} submissions" in runs[how].stdout
    assert "failed: broken (regrade one with --student ID)" in runs[how].stdout
    assert "\n  broken: RuntimeError: " in runs[how].stdout, "the reason is reported"


def test_a_worker_failure_comes_back_as_plain_data(monkeypatch):
    """Even an exception whose traceback is thousands of frames deep: Dask would fail to pickle it, and wait."""
    from course import parallel

    def endless(payload, sandbox):
        return endless(payload, sandbox)

    monkeypatch.setattr(parallel, "grade_in_private_course", endless)
    outcome = parallel.grade_payload({"assignment": ASSIGNMENT, "student": "s"}, sandboxed=False)
    assert pickle.loads(pickle.dumps(outcome)) == outcome
    assert outcome["failure"] == "RecursionError: maximum recursion depth exceeded"
    assert set(outcome) == {"failure", "timings"}


def test_a_sandbox_left_dirty_is_noted_and_the_result_kept(monkeypatch):
    from course import parallel

    class StoppedSandbox:  # its server stopped: it could not empty the sandbox after the kernel
        def __init__(self, limits=None):
            pass

        def alive(self):
            return False

    monkeypatch.setattr(parallel, "warm_sandbox", StoppedSandbox)
    monkeypatch.setattr(parallel, "grade_in_private_course", lambda payload, sandbox: {"notebooks": {}})
    outcome = parallel.grade_payload({"assignment": ASSIGNMENT, "student": "s"})
    assert {key: value for key, value in outcome.items() if key != "timings"} == {
        "notebooks": {},
        "note": parallel.DIRTY,
    }


def test_a_killed_worker_costs_nobody_else(tmp_path):
    """SIGKILL a worker while its kernel runs: the pool breaks, and its unfinished students are regraded."""
    import psutil

    make_course(tmp_path)
    students = [Variant(f"student{number}", {}) for number in range(4)]
    submit_variants(tmp_path, ASSIGNMENT, students)
    run = subprocess.Popen(
        [sys.executable, "-m", "course", "--root", str(tmp_path), "grade", ASSIGNMENT, "--jobs", "2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    coordinator, victim, deadline = psutil.Process(run.pid), None, time.monotonic() + 120
    while victim is None and time.monotonic() < deadline:
        victim = next((worker for worker in coordinator.children() if runs_a_sandbox(worker)), None)
        time.sleep(0.05)
    assert victim is not None, "no worker started a sandboxed kernel"
    victim.kill()
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stdout[-2000:] + stderr[-2000:]
    assert "graded 4 of 4 submissions" in stdout
    cells, _ = cell_results(tmp_path, ASSIGNMENT)
    with Gradebook(f"sqlite:///{tmp_path / 'gradebook.db'}") as gradebook:
        maxima = {cell.name: cell.max_score for cell in gradebook.find_notebook(ASSIGNMENT, ASSIGNMENT).grade_cells}
    assert {(student, cell): score for (student, cell), (score, _) in cells.items() if cell != "reflection"} == {
        (variant.name, cell): maxima[cell] for variant in students for cell in maxima if cell != "reflection"
    }


def test_a_restored_test_cell_has_an_id_and_nothing_warns_on_the_console(graded):
    """A test cell the student deleted comes back (add_missing_cells) with the cell id nbformat 4.5 requires:
    nbformat's MissingIDFieldWarning ("will become a hard error") never reaches the instructor's console."""
    roots, runs = graded
    assert "MissingIDFieldWarning" not in runs["local"].stderr, runs["local"].stderr[-3000:]
    graded_path = roots["local"] / "autograded" / "deleted_test_cell" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
    cells = json.loads(graded_path.read_text())["cells"]
    restored = [cell for cell in cells if cell["metadata"].get("nbgrader", {}).get("grade_id") == "test_sigmoid"]
    assert len(restored) == 1 and "".join(restored[0]["source"]).startswith("# This cell (id:test_sigmoid) was missing")
    ids = [cell.get("id") for cell in cells]
    assert all(ids) and len(set(ids)) == len(ids)


def test_a_restored_test_cell_shows_no_hidden_test_in_feedback(graded):
    """The cell comes back from the gradebook with its hidden tests: its feedback page shows the visible ones only."""
    roots, _ = graded
    generate_feedback(open_api(roots["local"]), ASSIGNMENT, ["deleted_test_cell"])
    page = roots["local"] / "feedback" / "deleted_test_cell" / ASSIGNMENT / f"{ASSIGNMENT}.html"
    text = visible_text(page)
    assert "This cell (id:test_sigmoid) was missing" in text and 'sigmoid(0) should be 0.5"' in text
    assert not [line for line in private_lines(ASSIGNMENT, solutions=False) if line in text]


def test_a_student_who_prints_the_hidden_tests_finds_none_in_feedback(graded):
    """exfiltrates_the_hidden_tests prints each test cell as it runs, rewrites its first output with them and
    raises them from its sigmoid: the autograded notebook, the instructor's, holds them; the feedback page,
    which shows the tests' own messages and no output of the kernel, holds none."""
    roots, _ = graded
    student = "exfiltrates_the_hidden_tests"
    hidden = private_lines(ASSIGNMENT, solutions=False)
    autograded = notebooks.read(roots["local"] / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")

    def shown(nb):
        """Everything the notebook's outputs show, as text."""
        return "\n".join(
            str(part)
            for cell in nb.cells
            for output in cell.get("outputs", [])
            for part in [output.get("text", ""), output.get("evalue", ""), *output.get("data", {}).values()]
        )

    assert len([line for line in hidden if line in shown(autograded)]) > 20, "the attack read the hidden tests"
    opened, _ = ShowFailuresNotTests(show_outputs=True).preprocess(copy.deepcopy(autograded), {})
    assert [line for line in hidden if line in shown(opened)], "with show_outputs the page would leak them"
    generate_feedback(open_api(roots["local"]), ASSIGNMENT, [student])
    text = visible_text(roots["local"] / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html")
    assert "Error: its message is left out here" in text and "def steal(info):" in text
    assert not [line for line in hidden if line in text]
