"""Forged records: the re-check (course/plugins/verify.py) trusts no name and builds no object a test
did not ask for."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from course.plugins import record
from course.plugins.verify import InvalidRecord, replay

ALWAYS_TRUE = {"kind": "function"}


def forged(values, calls=None):
    return {"grade_id": "test", "values": values, "calls": calls or {}}


def true_for(*args):
    return {"key": record.call_key(args, {}), "result": {"kind": "bool", "value": True}}


@pytest.mark.parametrize(
    "name, test",
    [
        ("any", "assert any([False])"),
        ("all", "assert all([False])"),
        ("isinstance", "assert isinstance(answer, str)"),
        ("abs", "assert abs(-1) == 0"),
        ("__builtins__", "assert any([False])"),
        ("np", "assert np.allclose(answer, 1)"),
    ],
)
def test_forged_builtins_and_numpy_are_the_graders(name, test):
    """A record that adds a name the test reads from builtins or numpy (or the builtins themselves) changes nothing."""
    values = {name: ALWAYS_TRUE, "answer": {"kind": "int", "value": 2}}
    calls = {name: [true_for([False]), true_for(2, str), true_for(-1), true_for(2, 1)]}
    with pytest.raises(AssertionError):
        replay(test, forged(values, calls))


def test_names_the_test_binds_or_imports_are_not_taken_from_the_record():
    test = "import numpy as numpy2\nexpected = 3\nassert numpy2.isclose(answer, expected)"
    values = {"answer": {"kind": "int", "value": 2}, "expected": {"kind": "int", "value": 2}, "numpy2": ALWAYS_TRUE}
    with pytest.raises(AssertionError):
        replay(test, forged(values))


def test_honest_values_are_rebuilt():
    model = LogisticRegression(C=2.0).fit(np.array([[0.0], [1.0], [2.0], [3.0]]), np.array([0, 0, 1, 1]))
    values = {
        name: record.encode(value)
        for name, value in {
            "model": model,
            "scaled": np.arange(6, dtype="f4").reshape(2, 3),
            "count": np.int16(3),
            "pair": (1, [2.5, "x"]),
            "nothing": None,
        }.items()
    }
    replay(
        "assert model.C == 2.0 and model.predict([[3.0]])[0] == 1\n"
        "assert scaled.shape == (2, 3) and scaled.dtype == 'f4' and count == 3\n"
        "assert pair == (1, [2.5, 'x']) and nothing is None",
        forged(values),
    )


@pytest.mark.parametrize(
    "value",
    [
        {"kind": "ndarray", "dtype": "(100000000,)f8", "shape": [1, 100000000], "data": [0.0]},
        {"kind": "ndarray", "dtype": "O", "shape": [1], "data": [0]},
        {"kind": "ndarray", "dtype": "<U100000000", "shape": [1], "data": [0]},
        {"kind": "ndarray", "dtype": "<f8", "shape": [100000, 100000], "data": [0.0]},
        {"kind": "ndarray", "dtype": "<f8", "shape": [2], "data": [[0.0] * 1000, [0.0]]},
        {"kind": "ndarray", "dtype": "<f8", "shape": [5_000_000], "data": [0.0] * 5_000_000},
        {"kind": "npscalar", "dtype": "(100000000,)f8", "value": 0.0},
        {"kind": "npscalar", "dtype": "V100000000", "value": 0},
        {"kind": "list", "items": [{"kind": "ndarray", "dtype": "(100000000,)f8", "shape": [1], "data": [0.0]}]},
        {"kind": "list", "items": [{"kind": "str", "value": "x" * 1_000_000}] * 5},
        {
            "kind": "estimator",
            "params": {},
            "attributes": {"coef_": {"kind": "ndarray", "dtype": "(100000000,)f8", "shape": [1, 1], "data": [0.0]}},
        },
        {"kind": "estimator", "params": {}, "attributes": {"predict": ALWAYS_TRUE}},
        {"kind": "estimator", "params": {"C": {"kind": "list", "items": []}}, "attributes": {}},
        {"kind": "estimator", "params": {}, "attributes": {"coef_": {"kind": "int", "value": 1}}},
        {"kind": "pickle", "data": "gASVAAAAAAAAAAA="},
        {"kind": "int", "value": "1"},
    ],
    ids=[
        "dtype with a shape",
        "object dtype",
        "huge string dtype",
        "shape bigger than data",
        "nested data",
        "over the cap",
        "scalar dtype with a shape",
        "void scalar",
        "in a list",
        "long strings",
        "estimator attribute",
        "estimator method",
        "estimator parameter",
        "attribute of the wrong kind",
        "unknown kind",
        "int that is a string",
    ],
)
def test_forged_values_are_refused_before_they_are_built(value):
    import psutil

    before = psutil.Process().memory_info().rss
    with pytest.raises(InvalidRecord):
        replay("assert answer is not None", forged({"answer": value}))
    assert psutil.Process().memory_info().rss - before < 200 << 20


def test_a_replayed_function_returns_only_decodable_results():
    calls = {
        "sigmoid": [
            {
                "key": record.call_key([0], {}),
                "result": {"kind": "ndarray", "dtype": "(100000000,)f8", "shape": [1], "data": [0.0]},
            }
        ]
    }
    with pytest.raises(InvalidRecord):
        replay("assert sigmoid(0) is not None", forged({"sigmoid": ALWAYS_TRUE}, calls))


def graded_notebook(test_source):
    """A notebook as Execute leaves it: one test cell that passed, and the record cell InjectRecorders put after it."""
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from course.plugins.verify import INJECTED

    test = new_code_cell(test_source)
    test.metadata.nbgrader = {"grade": True, "grade_id": "test", "points": 1, "solution": False, "locked": True}
    recorded = new_code_cell("", outputs=[new_output("display_data", data={record.MIME: forged({})})])
    recorded.metadata[INJECTED] = True
    return new_notebook(cells=[test, recorded])


def test_the_recheck_reads_the_instructors_data_and_imports_nothing_from_the_notebook_folder(tmp_path, monkeypatch):
    """A student who rewrites a data file the test reads, or plants a module it imports, in the notebook's folder."""
    from traitlets.config import Config

    from course.plugins.verify import VerifyRecords

    source, student = tmp_path / "source" / "a", tmp_path / "autograded" / "s" / "a"
    for folder, value in ((source, "1"), (student, "2")):
        (folder / "data").mkdir(parents=True)
        (folder / "data" / "x.csv").write_text(value + "\n")
    (student / "course_shadow_probe.py").write_text("raise SystemExit('imported from the student folder')")
    monkeypatch.syspath_prepend("")  # as in `python -c` or a notebook: the working folder first on the import path
    config = Config({"CourseDirectory": {"root": str(tmp_path)}})
    resources = {"nbgrader": {"assignment": "a"}, "metadata": {"path": str(student)}}
    checks = {
        "import numpy as np\nassert np.loadtxt('data/x.csv') == 1": None,
        "import numpy as np\nassert np.loadtxt('data/x.csv') == 2": "AssertionError",
        "import course_shadow_probe": "ModuleNotFoundError",
    }
    for test, error in checks.items():
        nb, _ = VerifyRecords(config=config).preprocess(graded_notebook(test), resources)
        outputs = nb.cells[0].outputs
        assert len(nb.cells) == 1 and [output.ename for output in outputs] == ([error] if error else []), test


def test_only_the_tests_own_calls_are_recorded():
    """sigmoid called 2,000 times inside gradient_descent made a 20 MB record; the re-check never replays those."""
    inner = record.Recorder(lambda z: z + 1)
    outer = record.Recorder(lambda z: inner(z) * 2)
    assert outer(1) == 4 and inner(5) == 6
    assert [call["key"] for call in outer.calls] == [record.call_key((1,), {})]
    assert [call["key"] for call in inner.calls] == [record.call_key((5,), {})]
