"""In-process unit tests of logic that the slow tests exercise end to end: fast, no kernel, no nbgrader run."""

import base64
import copy
import json
import socket
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course import parallel
from course.graders import Claims, advisory_key, in_turns
from course.plugins import execute, feedback, verify
from course.plugins.execute import RobustExecute
from course.plugins.feedback import ShowFailuresNotTests
from course.plugins.late import PercentPerDayLate
from course.sandbox.protocol import receive, send
from course.sandbox.zygote import write_files

DAY = 86400


# ---- the late-penalty plugin ----


@pytest.mark.parametrize("seconds_late,percent", [(1, 10), (DAY, 10), (DAY + 1, 20), (9 * DAY, 90), (30 * DAY, 100)])
def test_late_penalty_is_a_tenth_per_started_day_and_never_more_than_the_score(seconds_late, percent):
    penalty = PercentPerDayLate().late_submission_penalty("ada", 20.0, seconds_late)
    assert penalty == pytest.approx(20.0 * percent / 100)


def test_late_penalty_follows_its_setting():
    assert PercentPerDayLate(percent_per_day=25.0).late_submission_penalty("ada", 8.0, 2 * DAY) == pytest.approx(4.0)


# ---- the feedback preprocessor ----


def graded_cell(source, grade_id, points, score, outputs=(), cell_type="code"):
    cell = new_code_cell(source, outputs=list(outputs)) if cell_type == "code" else new_markdown_cell(source)
    cell.metadata.nbgrader = {
        "grade": True,
        "grade_id": grade_id,
        "points": points,
        "score": score,
        "solution": False,
        "locked": True,
    }
    return cell


def test_feedback_keeps_messages_and_drops_hidden_tests_and_tracebacks():
    failure = new_output(
        "error",
        ename="AssertionError",
        evalue="use predict_proba(...)[:, 1]",
        traceback=["Traceback", "  assert np.allclose(p, secret_reference)", "AssertionError"],
    )
    nb = new_notebook(
        cells=[
            new_markdown_cell("## Exercise 1: the sigmoid"),
            graded_cell(
                'assert ok, "use predict_proba(...)[:, 1]"\n'
                "### BEGIN HIDDEN TESTS\nassert secret_check()\n### END HIDDEN TESTS",
                "test_sigmoid",
                2,
                0.0,
                [failure],
            ),
            new_markdown_cell("## Exercise 2: your reflection"),
            graded_cell("It works.", "reflection", 3, None, cell_type="markdown"),
        ]
    )
    nb, resources = ShowFailuresNotTests().preprocess(nb, {})
    test = nb.cells[1]
    assert "secret_check" not in test.source and "HIDDEN" not in test.source
    assert 'assert ok, "use predict_proba(...)[:, 1]"' in test.source
    assert test.outputs[0].traceback == ["AssertionError: use predict_proba(...)[:, 1]"]
    assert resources["course"]["exercises"] == [
        {
            "title": "Exercise 1: the sigmoid",
            "anchor": "test_sigmoid",
            "score": 0.0,
            "points": 2.0,
            "pending": False,
            "failed": "test_sigmoid",
        },
        {
            "title": "Exercise 2: your reflection",
            "anchor": "reflection",
            "score": 0.0,
            "points": 3.0,
            "pending": True,
            "failed": None,
        },
    ]
    assert "Content-Security-Policy" in resources["course"]["csp_meta"]


TEST_SOURCE = """\
hint = "look like accuracies: GridSearchCV scores by accuracy unless scoring='neg_log_loss'"
assert ok, f"sigmoid(0) should be 0.5; got {got}"
assert fine, f"these {hint}"
### BEGIN HIDDEN TESTS
assert secret_check(), "the hidden check " + "failed"
### END HIDDEN TESTS"""
SHOWN, WITHHELD = True, False


@pytest.mark.parametrize(
    "name,message,shown",
    [
        ("AssertionError", "sigmoid(0) should be 0.5; got 0.7", SHOWN),
        ("AssertionError", "the hidden check failed", SHOWN),
        (
            "AssertionError",
            "these look like accuracies: GridSearchCV scores by accuracy unless scoring='neg_log_loss'",
            SHOWN,
        ),
        ("AssertionError", "these " + "x" * 84, WITHHELD),  # the text the cell names, not any
        ("AssertionError", "sigmoid(0) should be 0.5; got 0.7" + verify.RECHECK_FAILED, SHOWN),
        ("NameError", "name 'sigmoid' is not defined", SHOWN),
        ("GraderError", verify.UNREADABLE_RECORD, SHOWN),
        ("KernelFailure", execute.NOT_RUN_AFTER_FAILURE.format("DeadKernelError: Kernel died"), SHOWN),
        ("AssertionError", "", SHOWN),
        ("AssertionError", "sigmoid(0) should be 0.5; got " + "x" * 61, WITHHELD),  # a value too long
        ("ValueError", "assert secret_check()", WITHHELD),  # the hidden test, read by the student's code
        ("AssertionError", "the hidden check failed\nassert secret_check()", WITHHELD),
        ("AssertionError", "name 'assert secret_check()' is not defined", WITHHELD),
        ("GraderError", verify.UNREADABLE_RECORD + " assert secret_check()", WITHHELD),
    ],
)
def test_feedback_shows_a_failed_tests_message_only_when_the_test_could_have_written_it(name, message, shown):
    failure = new_output("error", ename=name, evalue=message, traceback=[])
    nb = new_notebook(cells=[graded_cell(TEST_SOURCE, "test_sigmoid", 1, 0.0, [failure])])
    outputs = ShowFailuresNotTests().preprocess(nb, {})[0].cells[0].outputs
    assert [(output.ename, output.evalue) for output in outputs] == [(name, message if shown else feedback.WITHHELD)]


@pytest.mark.parametrize("name", ["assert_secret_check", "Bad name!", "x<script>", "A" * 41])
def test_feedback_names_an_error_the_kernel_named_oddly_error(name):
    failure = new_output("error", ename="AssertionError", evalue="", traceback=[])
    failure.ename = name
    nb = new_notebook(cells=[graded_cell(TEST_SOURCE, "test_sigmoid", 1, 0.0, [failure])])
    assert ShowFailuresNotTests().preprocess(nb, {})[0].cells[0].outputs[0].ename == "Error"


def test_feedback_shows_no_output_of_the_kernel_unless_asked():
    printed = new_output("stream", name="stdout", text="assert secret_check()")
    drawn = new_output("display_data", data={"text/plain": "assert secret_check()"})
    failure = new_output("error", ename="AssertionError", evalue="sigmoid(0) should be 0.5; got 1", traceback=[])
    answer = new_code_cell('assert 0, f"{stolen}"', outputs=[printed, drawn, failure])
    answer.metadata.nbgrader = {"grade": False, "grade_id": "sigmoid", "solution": True, "locked": False}
    timeout = new_output("error", ename="CellTimeoutError", evalue="", traceback=[])
    test = graded_cell(TEST_SOURCE, "test_sigmoid", 1, 0.0, [printed, failure])
    cells = [answer, new_code_cell("x = 1", outputs=[printed, timeout]), test]

    def outputs(**settings):
        nb, resources = ShowFailuresNotTests(**settings).preprocess(new_notebook(cells=copy.deepcopy(cells)), {})
        assert resources["course"]["outputs_shown"] == bool(settings)
        return [[(output.output_type, output.get("evalue")) for output in cell.outputs] for cell in nb.cells]

    # the student's cell does not choose which messages pass: only its test's asserts, Python's and the grader's
    hidden = [("error", feedback.WITHHELD)], [("error", "")], [("error", "sigmoid(0) should be 0.5; got 1")]
    assert outputs() == list(hidden)
    shown = [("stream", None), ("display_data", None), ("error", "sigmoid(0) should be 0.5; got 1")]
    assert outputs(show_outputs=True) == [shown, [("stream", None), ("error", "")], [shown[0], shown[2]]]


# ---- the output cap and the notebook's time budget ----


def stream(text):
    return {
        "msg_type": "stream",
        "parent_header": {},
        "header": {"msg_type": "stream"},
        "content": {"name": "stdout", "text": text},
    }


def capped_outputs(execute, cell, messages):
    execute.nb, execute.clear_before_next_output = new_notebook(cells=[cell]), False
    execute._output_cell, outs = None, []
    for message in messages:
        execute.output(outs, message, None, 0)
    return outs


def test_output_past_the_cap_is_dropped_with_one_notice():
    outs = capped_outputs(RobustExecute(max_output_bytes=1000), new_code_cell("print"), [stream("x" * 400)] * 5)
    texts = [output.text for output in outs]
    assert texts[:2] == ["x" * 400] * 2 and len(texts) == 3, texts
    assert texts[2] == "\n[output stopped: this cell wrote more than 1000 bytes]\n"


def test_a_recording_cell_has_its_own_larger_cap():
    from course.plugins.verify import INJECTED

    cell = new_code_cell("record")
    cell.metadata[INJECTED] = True
    execute = RobustExecute(max_output_bytes=1000, max_record_bytes=5000)
    assert len(capped_outputs(execute, cell, [stream("x" * 400)] * 5)) == 5


def test_each_cell_timeout_is_cut_to_what_is_left_of_the_notebook_budget(monkeypatch):
    from course.plugins import execute as module

    clock = [100.0]
    monkeypatch.setattr(module, "monotonic", lambda: clock[0])
    execute = RobustExecute(timeout=30, notebook_timeout=300)
    execute._deadline = clock[0] + 300
    assert execute._cell_timeout(None) == 30
    clock[0] += 290.5
    assert execute._cell_timeout(None) == 10
    clock[0] += 20
    assert execute._cell_timeout(None) == 1 and execute._out_of_time()


# ---- the sandbox's kernel server: its files and its protocol ----


@pytest.mark.parametrize("name", ["../escaped.txt", "/etc/escaped.txt", "data/../../escaped.txt", "."])
def test_the_kernel_server_writes_no_file_outside_its_folder(tmp_path, name):
    folder = tmp_path / "work"
    folder.mkdir()
    with pytest.raises(ValueError, match="outside the scratch folder"):
        write_files(folder, {name: base64.b64encode(b"x").decode()})
    assert not (tmp_path / "escaped.txt").exists()


def test_the_kernel_server_writes_a_notebook_folder(tmp_path):
    write_files(
        tmp_path, {"a.ipynb": base64.b64encode(b"{}").decode(), "data/x.csv": base64.b64encode(b"1,2").decode()}
    )
    assert (tmp_path / "a.ipynb").read_bytes() == b"{}" and (tmp_path / "data" / "x.csv").read_bytes() == b"1,2"


def test_protocol_messages_arrive_whole_and_in_order_however_they_are_split():
    left, right = socket.socketpair()
    with left, right:
        messages = [{"kernel": 1}, {"text": "é\n" * 5000}, {"done": True}]
        for message in messages:
            send(left, message)
        left.shutdown(socket.SHUT_WR)
        buffer = bytearray()
        received = [receive(right, buffer) for _ in messages]
        assert received == messages and receive(right, buffer) is None
    assert json.loads(json.dumps(messages)) == messages


# ---- the parallel coordinator, with a fake pool ----


class FakePool:
    """An executor whose tasks finish when `wait` asks; a task for a `killer` student breaks the pool,
    after which every task and submit fails, as a ProcessPoolExecutor does when a worker dies."""

    def __init__(self, max_workers=1, initializer=None, initargs=(), killers=()):
        self.max_workers, self.killers, self.broken = max_workers, set(killers), False
        self.running, self.peak, self.submitted = [], 0, []

    def submit(self, function, *args):
        if self.broken:
            raise BrokenProcessPool("the pool is broken")
        future = Future()
        if function is not parallel.grade_payload:  # the pool's warm-up call, which forks the workers
            future.set_result(None)
            return future
        payload, sandboxed = args
        future.task = (payload["student"], sandboxed)
        self.running.append(future)
        self.submitted.append(payload["student"])
        self.peak = max(self.peak, len(self.running))
        return future

    def finish_one(self):
        future = self.running.pop(0)
        student, sandboxed = future.task
        self.broken |= student in self.killers
        if self.broken:
            future.set_exception(BrokenProcessPool("a worker died"))
            for other in self.running:
                other.set_exception(BrokenProcessPool("a worker died"))
            self.running.clear()
        else:
            future.set_result({"graded": student, "sandboxed": sandboxed})

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture
def fake_wait(monkeypatch):
    """concurrent.futures.wait for FakePool: the oldest running task finishes."""

    def wait(pending, return_when):
        if pending and not any(future.done() for future in pending):
            next(iter(pending)).pool.finish_one()
        done = {future for future in pending if future.done()}
        return done, set(pending) - done

    monkeypatch.setattr(parallel, "wait", wait)
    original = FakePool.submit

    def submit(self, *args):
        future = original(self, *args)
        future.pool = self
        return future

    monkeypatch.setattr(FakePool, "submit", submit)


def test_outcomes_keep_at_most_window_in_flight_and_a_bad_payload_costs_one_student(fake_wait):
    pool = FakePool(max_workers=2)

    def payload(student):
        if student == "unpackable":
            raise OSError("its notebook vanished")
        return {"student": student}

    results = dict(parallel.outcomes(pool, ["a", "unpackable", "b", "c", "d", "e"], payload, True, 3))
    assert pool.peak == 3, "the window is filled, and never overfilled"
    assert isinstance(results.pop("unpackable"), OSError)
    assert results == {name: {"graded": name, "sandboxed": True} for name in "abcde"}


def test_a_killed_worker_costs_only_the_student_who_kills_it(fake_wait, monkeypatch):
    pools = []

    def make_pool(max_workers, initializer=None, initargs=()):
        pools.append(FakePool(max_workers, killers={"killer"}))
        return pools[-1]

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", make_pool)
    students = ["a", "killer", "b", "c", "d", "e", "f"]
    results = dict(parallel.on_local_workers(2, students, lambda student: {"student": student}, False))
    killed = results.pop("killer")
    assert isinstance(killed, RuntimeError) and "killed, twice" in str(killed)
    assert results == {name: {"graded": name, "sandboxed": False} for name in students if name != "killer"}
    assert [pool.max_workers for pool in pools][-1] == 1, "the students in flight are regraded one at a time"
    assert all(pool.peak <= 4 for pool in pools), "at most two per worker in flight"


def test_no_more_workers_than_students(fake_wait, monkeypatch):
    """Each worker starts a sandbox, seconds of CPU: a class of one gets one worker, whatever --jobs says."""
    pools = []

    def make_pool(max_workers, initializer=None, initargs=()):
        pools.append(FakePool(max_workers))
        return pools[-1]

    monkeypatch.setattr(parallel, "ProcessPoolExecutor", make_pool)
    alone = dict(parallel.on_local_workers(4, ["only"], lambda student: {"student": student}, False))
    assert alone == {"only": {"graded": "only", "sandboxed": False}}
    many = dict(parallel.on_local_workers(2, list("abcde"), lambda student: {"student": student}, False))
    assert len(many) == 5
    assert [pool.max_workers for pool in pools] == [1, 2]


# ---- feedback: one nbgrader run for the class, then each student it left without a page alone


class FakeFeedbackAPI:
    """NbGraderAPI's feedback calls on a course folder: `breaks` are students nbgrader fails on."""

    def __init__(self, root, graded, breaks):
        from nbgrader.coursedir import CourseDirectory

        from course.common import course_config

        (root / "nbgrader_config.py").write_text("")
        (root / "source" / "a").mkdir(parents=True)
        self.coursedir = CourseDirectory(config=course_config(root))
        self.graded, self.breaks, self.calls = graded, breaks, []
        for student in graded:
            folder = root / "autograded" / student / "a"
            folder.mkdir(parents=True)
            (folder / "a.ipynb").write_text("{}")
            (root / "submitted" / student / "a").mkdir(parents=True)

    def get_submitted_students(self, assignment):
        return self.graded

    def get_autograded_students(self, assignment):
        return self.graded

    def generate_feedback(self, assignment, student_id=None):
        self.calls.append(student_id)
        for student in [student_id] if student_id else self.graded:
            if student not in self.breaks:
                page = Path(self.coursedir.root) / "feedback" / student / assignment / "a.html"
                page.parent.mkdir(parents=True, exist_ok=True)
                page.write_text("feedback")
        failed = student_id in self.breaks or (student_id is None and self.breaks)
        return {"success": not failed, "error": "NbGraderException: it broke" if failed else ""}


def test_feedback_is_one_run_for_the_class_and_a_student_it_fails_on_is_named(tmp_path):
    from course.feedback import generate_feedback

    stale = tmp_path / "feedback" / "bo" / "a" / "a.html"  # an earlier run's page
    stale.parent.mkdir(parents=True)
    stale.write_text("old")
    api = FakeFeedbackAPI(tmp_path, ["al", "bo", "cy"], breaks={"bo"})
    written, left_out = generate_feedback(api, "a")
    assert written == ["al", "cy"] and left_out == {
        "bo": "nbgrader could not write its feedback: NbGraderException: it broke"
    }
    assert api.calls == [None, "bo"], "the class in one run, then only the student it failed on"
    assert not stale.parent.exists(), "no page of an earlier run may pass for this one"


# ---- what a worker is sent: one student's world, and nobody else's (issue 12) ----

ASSIGNMENT = "logistic_regression"
STUDENT, OTHER, MARKER = "ada_lovelace", "secret_sam", "SAM-ONLY-ANSWER-7f3c"


def earlier_grading(api, student, manual, extension_days=0):
    """Give `student` a graded submission in the course's gradebook, with a manual score on the written answer."""
    from datetime import timedelta

    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        gradebook.update_or_create_student(student, first_name=student.title(), email=f"{student}@example.org")
        submission = gradebook.update_or_create_submission(ASSIGNMENT, student)
        submission.extension = timedelta(days=extension_days) if extension_days else None
        for grade in submission.notebooks[0].grades:
            grade.auto_score = 0.25 if grade.cell.cell_type == "code" else None
            grade.manual_score = manual if grade.name == "reflection" else None
        gradebook.db.commit()


@pytest.fixture
def class_with_history(tmp_path):
    """A course with two submissions; the other student has been graded (manual score, extension) and
    wrote MARKER in their notebook; so has STUDENT, with a manual score of her own."""
    from course import notebooks

    from conftest import make_course, reference_answers, release_notebook

    api = make_course(tmp_path)
    release = release_notebook(tmp_path, ASSIGNMENT)
    answers = reference_answers(ASSIGNMENT)
    for student, extra in ((STUDENT, {}), (OTHER, {"reflection": MARKER})):
        notebooks.write_submission(notebooks.fill(release, {**answers, **extra}), tmp_path, student, ASSIGNMENT)
    earlier_grading(api, OTHER, manual=2.5, extension_days=3)
    earlier_grading(api, STUDENT, manual=1.5)
    return api


def sent_payloads(api, monkeypatch, students):
    """The payloads grade_parallel hands its workers, caught by a pool that grades nobody."""
    sent = []

    def no_workers(jobs, students, payload, sandboxed, sandbox_limits=None):
        for student in students:
            sent.append(payload(student))
            yield student, {"failure": "RuntimeError: not graded in this test"}

    monkeypatch.setattr(parallel, "on_local_workers", no_workers)
    results = parallel.grade_parallel(api, ASSIGNMENT, students, jobs=1)
    assert set(results) == set(students)
    return sent


def test_a_payload_holds_one_students_world_and_no_other_students_data(class_with_history, monkeypatch):
    import pickle

    [payload] = sent_payloads(class_with_history, monkeypatch, [STUDENT])
    assert set(payload) == {"assignment", "student", "course", "digest", "submission", "record", "sandbox_limits"}
    assert payload["student"] == STUDENT and list(payload["submission"]) == [f"{ASSIGNMENT}.ipynb"]
    everything = pickle.dumps(payload)
    for secret in (OTHER, OTHER.title(), MARKER, "example.org"):
        assert secret.encode() not in everything, f"{secret} left the coordinator"
    # the assignment's world: the configuration, the source's data files (no notebook, no package, no
    # gradebook) and the assignment as release recorded it, which names no student
    course = payload["course"]
    assert set(course) == {"assignment", "config", "source", "definition"}
    assert course["source"] and all(name.startswith(f"source/{ASSIGNMENT}/data/") for name in course["source"])
    assert STUDENT not in repr(course["definition"]) and "submission" not in repr(course["definition"])
    # the student's own earlier grading travels with them: her manual score counts in the late penalty
    record = payload["record"]
    assert record["extension"] is None and record["grades"][ASSIGNMENT]["reflection"][1] == 1.5


def test_payloads_stay_the_same_size_as_the_class_grows(class_with_history, monkeypatch):
    """No snapshot of the gradebook: a payload's size does not depend on how many students it holds."""
    import pickle

    before = len(pickle.dumps(sent_payloads(class_with_history, monkeypatch, [STUDENT])[0]))
    for number in range(8):
        earlier_grading(class_with_history, f"student{number:02d}", manual=1.0)
    after = len(pickle.dumps(sent_payloads(class_with_history, monkeypatch, [STUDENT])[0]))
    assert after == before


def test_the_private_gradebook_is_built_from_the_payload_and_is_always_the_workers_own(
    class_with_history, monkeypatch, tmp_path_factory
):
    """Whatever db_url the course sets (here a file elsewhere), the worker's gradebook is its own file,
    holding the assignment as release recorded it and, once restored, the one student's earlier grading."""
    from nbgrader.api import Gradebook

    from course.gradebook import assignment_definition, restore_record
    from course.worker import PrivateCourse

    elsewhere = tmp_path_factory.mktemp("elsewhere") / "real-gradebook.db"
    [payload] = sent_payloads(class_with_history, monkeypatch, [STUDENT])
    config = payload["course"]["config"] + f'\nc.CourseDirectory.db_url = "sqlite:///{elsewhere}"\n'.encode()
    private = PrivateCourse(tmp_path_factory.mktemp("worker") / "course", {**payload["course"], "config": config})
    try:
        api = private.api({})
        assert api.coursedir.db_url == f"sqlite:///{private.folder / 'gradebook.db'}" and not elsewhere.exists()
        with Gradebook(private.db_url, private.course_id) as gradebook:
            assert gradebook.students == []
            assert assignment_definition(gradebook, ASSIGNMENT) == payload["course"]["definition"]
            restore_record(gradebook, ASSIGNMENT, STUDENT, payload["record"])
        with Gradebook(private.db_url, private.course_id) as gradebook:
            assert [student.id for student in gradebook.students] == [STUDENT]
            grades = {
                g.name: (g.auto_score, g.manual_score)
                for g in gradebook.find_submission(ASSIGNMENT, STUDENT).notebooks[0].grades
            }
        assert grades["reflection"] == (None, 1.5) and grades["test_sigmoid"] == (0.25, None)
        private.reset(api)  # the next student finds the assignment alone again
        with Gradebook(private.db_url, private.course_id) as gradebook:
            assert gradebook.students == []
    finally:
        private.close()
    assert not private.folder.exists()


def graded_outcome(api, broken=False):
    """What a worker sends back for one student, as plain data: every cell full marks (or a cell missing)."""
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        notebook = gradebook.find_notebook(ASSIGNMENT, ASSIGNMENT)
        grades = {cell.name: [cell.max_score, False] for cell in notebook.grade_cells}
        comments = {cell.name: None for cell in notebook.solution_cells}
    if broken:
        grades.popitem()
    return {
        "files": {f"{ASSIGNMENT}.ipynb": b"{}"},
        "notebooks": {ASSIGNMENT: {"grades": grades, "comments": comments, "late_submission_penalty": None}},
        "timestamp": None,
    }


def test_the_writer_records_in_batches_and_a_result_it_cannot_record_costs_one_student(tmp_path):
    from nbgrader.api import Gradebook

    from course.timing import Stages

    from conftest import make_course

    api = make_course(tmp_path)
    reported = []
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        writer = parallel.GradebookWriter(api, gradebook, ASSIGNMENT, lambda s, r: reported.append(s), Stages())
        for student in ("ada", "ben", "cy", "dee"):  # queued before the thread starts: one batch
            writer.queue.put((student, graded_outcome(api, broken=student == "cy")))
        writer.put("eve", OSError("its notebook vanished"))
        results = writer.close()
    assert reported == ["ada", "ben", "cy", "dee", "eve"]
    assert [s for s, r in results.items() if r["success"]] == ["ada", "ben", "dee"]
    assert results["cy"]["error"].startswith("KeyError") and results["eve"]["error"] == "OSError: its notebook vanished"
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        scored = {s.student.id: s.score for s in gradebook.assignment_submissions(ASSIGNMENT)}
    assert scored == {"ada": 20.0, "ben": 20.0, "dee": 20.0}, "nothing of cy's is recorded"
    assert (tmp_path / "autograded" / "dee" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_bytes() == b"{}"


# ---- the worker's shortcuts change nothing that nbgrader decides ----


@pytest.mark.parametrize(
    "metadata",
    [
        {"grade": True, "grade_id": "a", "locked": True, "points": 1, "schema_version": 3, "solution": False},
        {"grade": True, "grade_id": "a", "locked": True, "points": "one", "schema_version": 3, "solution": False},
        {"grade": True, "locked": True, "points": 1, "schema_version": 3, "solution": False},
        {"grade": "yes", "grade_id": 7, "schema_version": 3},
    ],
)
def test_metadata_is_checked_as_jsonschema_checks_it_however_often(metadata):
    import jsonschema
    from nbgrader.nbgraderformat.v3 import MetadataValidatorV3

    from course.worker import SchemaCheckedOnce

    schema, fast = MetadataValidatorV3().schema, SchemaCheckedOnce()
    try:
        jsonschema.validate(metadata, schema)
        expected = None
    except jsonschema.ValidationError as error:
        expected = (error.message, list(error.path))
    for _ in range(3):  # the second and third time from what it remembers
        try:
            fast.validate(metadata, schema)
            found = None
        except jsonschema.ValidationError as error:
            found = (error.message, list(error.path))
        assert found == expected


def test_a_recheck_is_remembered_by_the_whole_record(monkeypatch, tmp_path):
    from course.plugins import verify

    calls = []
    original = verify.replay

    def counted(source, cell_record):
        calls.append(cell_record)
        return original(source, cell_record)

    monkeypatch.setattr(verify, "replay", counted)
    monkeypatch.setattr(verify, "_rechecked", {})
    monkeypatch.chdir(tmp_path)
    right = {"grade_id": "t", "values": {"answer": {"kind": "int", "value": 42}}, "calls": {}}
    wrong = {"grade_id": "t", "values": {"answer": {"kind": "int", "value": 41}}, "calls": {}}
    test = "assert answer == 42, 'the answer is 42'"
    assert verify.recheck(test, right) is None and verify.recheck(test, right) is None
    assert verify.recheck(test, wrong) == ("AssertionError", "the answer is 42")
    assert verify.recheck(test, wrong) == ("AssertionError", "the answer is 42")
    assert len(calls) == 2, "each record is replayed once"
    monkeypatch.chdir(tmp_path.parent)  # another folder: other data files, replayed again
    assert verify.recheck(test, right) is None and len(calls) == 3


def test_a_remembered_fit_gives_what_the_fit_gives_and_only_for_the_same_inputs(monkeypatch):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from course.plugins import verify

    monkeypatch.setattr(verify, "_fits", {})
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 2)), (rng.random(60) > 0.5).astype(int)
    real = LogisticRegression(C=0.5).fit(X, y)
    with verify.remembered_fits():
        first = LogisticRegression(C=0.5).fit(X, y)
        again = LogisticRegression(C=0.5).fit(X, y)
        other_data = LogisticRegression(C=0.5).fit(X[::-1].copy(), y)
        other_params = LogisticRegression(C=2.0).fit(X, y)
        shuffled = LogisticRegression(solver="saga").fit(X, y)  # random without a seed: not remembered
    assert LogisticRegression.fit is not None and "remembered" not in repr(LogisticRegression.fit)
    for model in (first, again):
        assert np.array_equal(model.coef_, real.coef_) and np.array_equal(model.intercept_, real.intercept_)
        assert model.n_iter_ == real.n_iter_ and list(model.classes_) == [0, 1]
    assert again.coef_ is not first.coef_, "each gets its own copy"
    assert not np.array_equal(other_data.coef_, real.coef_) and not np.array_equal(other_params.coef_, real.coef_)
    assert len(verify._fits) == 3 and verify.fit_key(shuffled, X, y) is None


# ---- recording what a test read: from IPython's cell events, or by cells around the test ----


def graded_test_cell(source, grade_id):
    cell = new_code_cell(source)
    cell.metadata.nbgrader = {"grade": True, "grade_id": grade_id, "points": 1, "solution": False, "locked": True}
    return cell


def test_a_test_cell_is_recorded_by_the_events_unless_another_cell_has_its_source():
    import hashlib

    from course.plugins.verify import INJECTED, InjectRecorders

    unique, copied = "assert answer == 42", "assert other == 1"
    nb = new_notebook(
        cells=[
            new_code_cell("answer = 42"),
            graded_test_cell(unique, "test_answer"),
            new_code_cell(copied),  # a student's copy of a visible test, above it
            graded_test_cell(copied, "test_other"),
        ]
    )
    nb, _ = InjectRecorders().preprocess(nb, {})
    setup, *cells = nb.cells
    assert setup.metadata[INJECTED] and "__course_record.install(" in setup.source
    plan = [(hashlib.sha256(unique.encode()).hexdigest(), ["answer"], "test_answer")]
    assert f"install({plan!r})" in setup.source and unique not in setup.source, "digests, never test sources"
    assert [cell.metadata.get(INJECTED, False) for cell in cells] == [False, False, False, True, False, True]
    assert cells[3].source == "__course_record.begin(globals(), ['other'])"
    assert cells[5].source == "__course_record.end(globals(), 'test_other')"


def record_output(grade_id, answer):
    from course.plugins.record import MIME

    data = {MIME: {"grade_id": grade_id, "values": {"answer": {"kind": "int", "value": answer}}, "calls": {}}}
    return new_output("display_data", data=data)


def test_the_recheck_takes_the_recorders_record_the_last_in_the_test_cell_and_removes_every_record(tmp_path):
    from course.plugins.verify import VerifyRecords

    passing = graded_test_cell("assert answer == 42, 'not 42'", "test_answer")
    # a function the test called showed a forged record first; the recorder's comes after the test's outputs
    passing.outputs = [
        record_output("test_answer", 42),
        new_output("stream", name="stdout", text="hi"),
        record_output("test_answer", 41),
    ]
    failing = graded_test_cell("assert answer == 42, 'not 42'", "test_again")
    failing.outputs = [
        new_output("error", ename="AssertionError", evalue="not 42", traceback=[]),
        record_output("test_again", 41),
    ]
    unrecorded = graded_test_cell("assert answer == 42, 'not 42'", "test_lost")
    verify = VerifyRecords()
    verify.recheck_folder = lambda assignment: str(tmp_path)
    nb, _ = verify.preprocess(new_notebook(cells=[passing, failing, unrecorded]), {"nbgrader": {"assignment": "a"}})
    assert [output.get("name") or output.get("ename") for output in nb.cells[0].outputs] == ["stdout", "AssertionError"]
    assert "not 42 (this test passed inside the notebook but failed when the grader" in nb.cells[0].outputs[-1].evalue
    assert [output.ename for output in nb.cells[1].outputs] == ["AssertionError"], "a failed test is not re-checked"
    assert [output.ename for output in nb.cells[2].outputs] == ["GraderError"]


def test_the_coordinators_early_sandbox_goes_to_one_forked_worker_and_is_stopped_at_the_end(monkeypatch):
    import multiprocessing

    class FakeSandbox:
        def __init__(self, limits=None, wait=True):
            self.wait, self.released, self.closed = wait, False, False

        def release(self):
            self.released = True

        def close(self):
            self.closed = True

    monkeypatch.setattr(parallel, "Sandbox", FakeSandbox)
    monkeypatch.setattr(parallel, "_early", None)
    parallel.start_early_sandbox()
    early = parallel._early
    assert early is not None and early.wait is False, "started without waiting for its server"
    context = multiprocessing.get_context("fork")
    answers = context.Queue()

    def worker():
        taken = parallel.take_early_sandbox()
        answers.put((taken is not None, early.released))

    processes = [context.Process(target=worker) for _ in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(30)
    got = sorted(answers.get(timeout=10) for _ in processes)
    assert got == [(False, True), (False, True), (True, False)], "one takes it; the others close their copies"
    parallel.discard_early_sandbox()
    assert early.closed and parallel._early is None


# ---- Claims: who grades whom ----


class FakeClaims(Claims):
    """Students another run holds until this run waits for them."""

    def __init__(self, others):
        self.others, self.waited, self.held = set(others), [], set()

    def take(self, students):
        taken = [s for s in students if s not in self.others]
        self.held |= set(taken)
        return taken

    def wait_for(self, student):
        assert not self.held, "a run waits holding no student: two runs never wait for each other"
        self.waited.append(student)
        self.others.discard(student)
        self.held.add(student)

    def release(self, student):
        self.held.discard(student)


def test_in_turns_grades_the_free_students_first_then_waits_holding_nothing():
    claims = FakeClaims(others={"b", "c"})
    batches = []
    for batch in in_turns(claims, ["a", "b", "c", "d"], on_wait=lambda who: batches.append(("wait", who))):
        batches.append(batch)
        for student in batch:
            claims.release(student)
    assert batches == [["a", "d"], ("wait", ["b", "c"]), ["b"], ("wait", ["c"]), ["c"]]


def test_a_students_advisory_lock_is_the_same_in_every_run_and_course_bound():
    assert advisory_key("course-a", "ada") == advisory_key("course-a", "ada")
    assert advisory_key("course-a", "ada") != advisory_key("course-b", "ada") != advisory_key("course-a", "ben")
    assert -(2**63) <= advisory_key("course-a", "ada") < 2**63


def test_the_gradebook_gets_its_lookup_indexes_once_and_keeps_its_rows(tmp_path):
    import sqlalchemy
    from nbgrader.api import Gradebook

    from course.gradebook import LOOKUP_INDEXES, index_lookups

    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    with Gradebook(url) as gradebook:
        gradebook.add_student("ada")
        index_lookups(gradebook)
        index_lookups(gradebook)  # a second run finds them there
        indexes = gradebook.db.execute(sqlalchemy.text("SELECT tbl_name, sql FROM sqlite_master WHERE type='index'"))
        made = {table: sql for table, sql in indexes if sql and sql.startswith("CREATE INDEX course_")}
        assert set(made) == set(LOOKUP_INDEXES) and all(LOOKUP_INDEXES[t] in sql for t, sql in made.items())
        assert [student.id for student in gradebook.students] == ["ada"]


def test_formgraders_autograde_route_never_passes_a_name_as_an_option(monkeypatch):
    """The sandboxed autograde route runs `course grade`; names from its URL cannot turn into flags."""
    import asyncio

    from course.plugins import sandboxed_autograde

    async def no_process(*argv, **options):
        raise AssertionError(f"a process was started: {argv}")

    monkeypatch.setattr(sandboxed_autograde.asyncio, "create_subprocess_exec", no_process)
    for assignment, student in (("--no-sandbox", "ada"), ("logistic_regression", "--no-sandbox")):
        result = asyncio.run(sandboxed_autograde.course_grade("/course", assignment, student))
        assert result["success"] is False and "not an assignment and a student" in result["error"]


# ---- course/serve.py: the resident grader's client and what it runs ----


def test_a_resident_grader_runs_a_grade_command_line_and_nothing_else():
    from course.serve import grade_argv

    options = {"assignment": "a", "student": ["s1", "s2"], "timings": "/t.json", "no_sandbox": True, "jobs": 99}
    assert grade_argv(Path("/c"), options) == [
        "--root",
        "/c",
        "grade",
        "a",
        "--student",
        "s1",
        "s2",
        "--timings",
        "/t.json",
    ]
    assert grade_argv(Path("/c"), {"assignment": "a"}) == ["--root", "/c", "grade", "a"]


def test_output_to_a_client_that_went_away_is_dropped_and_the_run_goes_on():
    from course.serve import Relay

    ours, theirs = socket.socketpair()
    theirs.close()
    relay = Relay(ours, "stdout")
    assert relay.write("a line\n" * 100_000) == 700_000  # no BrokenPipeError
    assert relay.conn is None and relay.write("more\n") == 5
    ours.close()


@pytest.mark.parametrize("record", [None, "not json", '{"socket": 5}', '{"socket": "/nonexistent/grader.sock"}', "[]"])
def test_without_a_usable_record_course_grade_grades_itself(tmp_path, record):
    from course.serve import SERVER_RECORD, grade_with_server

    if record is not None:
        (tmp_path / SERVER_RECORD).write_text(record)
    assert grade_with_server(tmp_path, {"assignment": "a"}) is None


@pytest.mark.parametrize("kind", ["fifo", "link"])
def test_a_planted_record_is_not_read(tmp_path, kind):
    """A FIFO (which would hang the read) or a link in its place: course grade grades itself."""
    import os

    from course.serve import SERVER_RECORD, grade_with_server, write_record

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "grader.sock"))
    listener.listen(1)
    (tmp_path / "real").mkdir()
    write_record(tmp_path / "real", tmp_path / "grader.sock")  # a record that would work
    if kind == "fifo":
        os.mkfifo(tmp_path / SERVER_RECORD)
    else:
        (tmp_path / SERVER_RECORD).symlink_to(tmp_path / "real" / SERVER_RECORD)
    assert grade_with_server(tmp_path, {"assignment": "a"}) is None
    listener.close()


def test_the_client_sends_its_options_and_relays_the_run(tmp_path, capsys):
    """A server of this user (here a thread): the options go out, stdout and stderr come back, then the status."""
    import threading

    from course.serve import SERVER_RECORD, grade_with_server, messages, send, write_record

    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(tmp_path / "grader.sock"))
    listener.listen(1)
    write_record(tmp_path, tmp_path / "grader.sock")
    assert (tmp_path / SERVER_RECORD).stat().st_mode & 0o777 == 0o600
    received = []

    def server():
        conn, _ = listener.accept()
        with conn:
            received.append(next(messages(conn)))
            send(conn, {"stream": "stderr", "text": "[####] 1/1 done\n"})
            send(conn, {"stream": "stdout", "text": "graded 1 of 1 submissions of a\n"})
            send(conn, {"exit": 3})

    thread = threading.Thread(target=server)
    thread.start()
    status = grade_with_server(tmp_path, {"assignment": "a", "student": None, "timings": None})
    thread.join()
    listener.close()
    out, err = capsys.readouterr()
    assert status == 3 and received == [{"assignment": "a", "student": None, "timings": None}]
    assert out == "graded 1 of 1 submissions of a\n"
    assert err.endswith("[####] 1/1 done\n") and err.startswith("grading with the resident grader")


@pytest.mark.parametrize("assignment", ["not_released", "../source"])
def test_serve_names_an_assignment_not_in_the_gradebook_before_starting_anything(course, capsys, assignment):
    from course.__main__ import main

    assert main(["--root", str(course), "serve", assignment]) == 1
    assert capsys.readouterr().err == f"error: assignment {assignment!r} is not in the gradebook: release it first\n"
    assert not (course / ".course-serve.json").exists()


@pytest.mark.parametrize("assignment", ["logistic_regression", "logistic_regression_evaluation"])
def test_the_benchmark_spreads_its_submissions_over_the_catalogue(assignment):
    """24 submissions: the blank release, the reference and 20 different catalogue answers, right and wrong
    (a stride sharing a factor with the catalogue's length once gave the evaluation assignment 5)."""
    from benchmarks.autograde import CATALOGUES, varied_notebooks

    from conftest import REPO

    names = [name for name, _ in varied_notebooks(REPO, assignment, 24)]
    variants = {variant.name: variant for variant in CATALOGUES[assignment]}
    chosen = {name for name in names if name in variants}
    assert len(set(names)) == 22 and len(chosen) == 20
    assert {variants[name].is_right for name in chosen} == {True, False}
