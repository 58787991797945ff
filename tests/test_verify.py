"""Forged records: the re-check (course/plugins/verify.py) trusts no name and builds no object a test
did not ask for."""

import sys

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


def test_replay_imports_nothing_from_the_working_folder(tmp_path, monkeypatch):
    """A test cell's import, re-run in the notebook's folder, finds the grader's module, not a submitted one."""
    (tmp_path / "course_shadow_probe.py").write_text("raise SystemExit('imported from the student folder')")
    from course.studentfiles import only_absolute_import_paths

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", ["", ".", *sys.path])
    only_absolute_import_paths()
    with pytest.raises(ModuleNotFoundError):
        replay("import course_shadow_probe", forged({}))


def test_only_the_tests_own_calls_are_recorded():
    """sigmoid called 2,000 times inside gradient_descent made a 20 MB record; the re-check never replays those."""
    inner = record.Recorder(lambda z: z + 1)
    outer = record.Recorder(lambda z: inner(z) * 2)
    assert outer(1) == 4 and inner(5) == 6
    assert [call["key"] for call in outer.calls] == [record.call_key((1,), {})]
    assert [call["key"] for call in inner.calls] == [record.call_key((5,), {})]
