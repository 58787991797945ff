"""In-process unit tests of logic that the slow tests exercise end to end: fast, no kernel, no nbgrader run."""

import base64
import json
import socket
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from course import parallel
from course.graders import Claims, advisory_key, in_turns
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
                "assert sigmoid(0) == 0.5\n### BEGIN HIDDEN TESTS\nassert secret_check()\n### END HIDDEN TESTS",
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
    assert "assert sigmoid(0) == 0.5" in test.source
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

    def submit(self, function, payload, sandboxed):
        if self.broken:
            raise BrokenProcessPool("the pool is broken")
        future = Future()
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
