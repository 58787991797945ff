"""Plain-data records of what a test cell reads from the student's namespace.

The autograder runs this file's source inside the student's kernel (see
course.plugins.verify): before a test cell it wraps the student's functions so that
every call and its result are noted, after the cell it shows the record as
JSON. The grader decodes the record in its own process, where nothing the
student ran can reach, and runs the test cell again on it. `install` does this
from IPython's cell events for the test cells it is told of (by their source's
digest); `begin` and `end` are also run as cells of their own around the others.

Only exact, known types are encoded structurally: numbers, strings, numpy
arrays and scalars, lists and tuples, None and fitted LogisticRegression
models. Anything else becomes an opaque stand-in that no test accepts, so an
object that merely pretends to be an array or a number fails.
"""

import json

MIME = "application/vnd.course.record+json"
ESTIMATOR_ATTRIBUTES = ("coef_", "intercept_", "classes_", "n_features_in_", "n_iter_")
_saved = {}


def encode(value, depth=0):
    """A JSON-able description of `value`."""
    import numpy as np

    kind = type(value)
    if value is None:
        return {"kind": "none"}
    if kind in (bool, int, float, str):
        return {"kind": kind.__name__, "value": value}
    if kind is np.ndarray and value.dtype.kind in "biuf":
        return {"kind": "ndarray", "dtype": value.dtype.str, "shape": list(value.shape), "data": value.ravel().tolist()}
    if kind in (
        np.bool_,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.float16,
        np.float32,
        np.float64,
    ):
        return {"kind": "npscalar", "dtype": value.dtype.str, "value": value.item()}
    if kind in (list, tuple) and depth < 8:
        return {"kind": kind.__name__, "items": [encode(item, depth + 1) for item in value]}
    if _is_logistic_regression(value):
        return {
            "kind": "estimator",
            "params": _plain_params(value),
            "attributes": {name: encode(getattr(value, name)) for name in ESTIMATOR_ATTRIBUTES if name in vars(value)},
        }
    if callable(value) and not isinstance(value, type):
        return {"kind": "function"}
    return {"kind": "opaque", "type": f"{kind.__module__}.{kind.__qualname__}"}


def call_key(args, kwargs):
    """The text that identifies one call by its arguments."""
    return json.dumps([encode(list(args)), {k: encode(v) for k, v in sorted(kwargs.items())}], sort_keys=True)


def _is_logistic_regression(value):
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError:
        return False
    return type(value) is LogisticRegression


def _plain_params(estimator):
    params = {}
    for name, value in estimator.get_params(deep=False).items():
        encoded = encode(value)
        if encoded["kind"] in ("none", "bool", "int", "float", "str"):
            params[name] = encoded
    return params


class Recorder:
    """Calls a student's function and notes each call's arguments and outcome.

    Only calls the test makes itself are noted: calls one student function makes
    to another (sigmoid, 2,000 times inside gradient_descent) are never replayed,
    since the re-check answers the outer call from its record.
    """

    active = []  # the recorded calls under way, outermost first

    def __init__(self, function):
        self.function, self.calls = function, []

    def __call__(self, *args, **kwargs):
        if Recorder.active:
            return self.function(*args, **kwargs)
        key = call_key(args, kwargs)
        Recorder.active.append(key)
        try:
            result = self.function(*args, **kwargs)
        except Exception as error:
            self.calls.append({"key": key, "error": [type(error).__name__, str(error)]})
            raise
        finally:
            Recorder.active.pop()
        self.calls.append({"key": key, "result": encode(result)})
        return result


def begin(namespace, names):
    """Before a test cell: note the values it reads and wrap the functions among them."""
    values, recorders = {}, {}
    for name in names:
        if name not in namespace:
            continue
        values[name] = encode(namespace[name])
        if values[name]["kind"] == "function":
            recorders[name] = Recorder(namespace[name])
            namespace[name] = recorders[name]
    _saved["current"] = (values, recorders)


def install(plan):
    """Record the test cells of `plan` from IPython's cell events: [(sha256 of its source, names, grade_id)].

    Before the next planned test cell runs (the source of the cell about to run has its digest),
    `begin`; after it, `end`, whose record becomes an output of the test cell. The tests are
    taken in order; a test cell that never ends (interrupted) gets no record, and a failure to
    record is no output of the test cell (which would score it): its record is simply missing.
    """
    import hashlib

    from IPython import get_ipython

    shell = get_ipython()
    state = {"next": 0, "current": None}

    def before(info):
        state["current"] = None
        if state["next"] >= len(plan) or info.silent:
            return
        digest, names, grade_id = plan[state["next"]]
        if hashlib.sha256(str(info.raw_cell).encode()).hexdigest() != digest:
            return
        state["next"] += 1
        try:
            begin(shell.user_ns, names)
        except Exception:
            return
        state["current"] = grade_id

    def after(result):
        grade_id, state["current"] = state["current"], None
        if grade_id is not None:
            try:
                end(shell.user_ns, grade_id)
            except Exception:
                pass

    shell.events.register("pre_run_cell", before)
    shell.events.register("post_run_cell", after)


def end(namespace, grade_id):
    """After a test cell: restore the functions and show the record as JSON."""
    from IPython.display import display

    values, recorders = _saved.pop("current", ({}, {}))
    for name, recorder in recorders.items():
        if namespace.get(name) is recorder:
            namespace[name] = recorder.function
    record = {
        "grade_id": grade_id,
        "values": values,
        "calls": {name: recorder.calls for name, recorder in recorders.items()},
    }
    display({MIME: record}, raw=True)
