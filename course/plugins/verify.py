"""Check test cells again outside the student's kernel.

nbgrader runs the tests in the student's own kernel, where the student's code
may have replaced np.allclose, isinstance or the traceback printer. Two
preprocessors, wired into autograding by nbgrader_config.py, close that gap:

* InjectRecorders (before Execute) has every test cell record, as plain JSON
  data, the values and function calls the test reads (see course.plugins.record):
  a first cell installs the recorder, which records each test cell from IPython's
  cell events, so that the record becomes an output of the test cell itself. A
  test cell whose source another code cell of the notebook also has is recorded by
  cells put around it instead.
* VerifyRecords (after Execute) runs each test cell that passed in the kernel
  a second time in the grader's own process, on the recorded data, with
  pristine numpy and builtins. If that run fails, or the record is missing,
  the cell gets an error output, so nbgrader scores it 0. It then removes
  the records from the test cells and the injected cells.

The re-check runs in the assignment's source folder, so the data files the tests
read are the instructor's, which no student code can have rewritten, and a module
a student submitted is never next to it to be imported.

JSON is decoded, never unpickled: no student code runs in the grader. A
record is hostile data: only the names the test reads from the student are
taken from it, each rebuilt only as the kind course.plugins.record writes, within a cap.
"""

import ast
import builtins
import contextlib
import copy
import functools
import hashlib
import json
import os
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from nbconvert.preprocessors import Preprocessor
from nbformat import NotebookNode
from nbformat.v4 import new_code_cell, new_output
from nbgrader.coursedir import CourseDirectory
from traitlets import Bool

from ..timing import stage
from . import record

RECORD_SOURCE = Path(record.__file__).read_text()
INJECTED = "course_injected"
# What the grader writes in a test cell whose result it cannot confirm: the feedback page shows these.
UNREADABLE_RECORD = (
    "the grader could not read the answers this test checked, "
    "so it cannot confirm the result (was the kernel restarted or the recording disturbed?)"
)
RECHECK_FAILED = " (this test passed inside the notebook but failed when the grader re-checked the answers outside it)"


def free_names(source: str) -> list[str]:
    """Names a cell reads but does not define: the student's variables it uses."""
    return list(_free_names(source))


@functools.lru_cache(maxsize=1024)
def _free_names(source: str) -> tuple[str, ...]:
    """free_names, once per source: every student's test cells are the same, restored from the gradebook."""
    tree = ast.parse(source)
    loaded, bound = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "get"
            and isinstance(node.func.value, ast.Call)
            and getattr(node.func.value.func, "id", None) == "globals"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            loaded.add(node.args[0].value)  # globals().get("name")
    return tuple(sorted(loaded - bound - set(dir(builtins))))


def is_test_cell(cell: NotebookNode) -> bool:
    info = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and info.get("grade", False) and not info.get("solution", False)


def injected_cell(source: str) -> NotebookNode:
    cell = new_code_cell(source)
    cell.metadata[INJECTED] = True
    return cell


class InjectRecorders(Preprocessor):
    """Have every test cell record what it reads: from IPython's cell events, or by cells around it."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        sources = Counter(cell.source for cell in nb.cells if cell.cell_type == "code")
        plan, cells = [], []
        for cell in nb.cells:
            if not is_test_cell(cell):
                cells.append(cell)
                continue
            names, grade_id = free_names(cell.source), cell.metadata["nbgrader"]["grade_id"]
            if sources[cell.source] == 1:  # recognised by its source alone: recorded by the events
                plan.append((hashlib.sha256(cell.source.encode()).hexdigest(), names, grade_id))
                cells.append(cell)
            else:
                cells.append(injected_cell(f"__course_record.begin(globals(), {names!r})"))
                cells.append(cell)
                cells.append(injected_cell(f"__course_record.end(globals(), {grade_id!r})"))
        setup = (
            "import types as _course_types\n"
            "__course_record = _course_types.ModuleType('course_record')\n"
            f"exec({RECORD_SOURCE!r}, __course_record.__dict__)\n"
            f"__course_record.install({plan!r})\n"
            "del _course_types"
        )
        nb.cells = [injected_cell(setup)] + cells
        return nb, resources


class Opaque:
    """Stands in for an object the record could not describe: no test accepts it."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f"<unrecordable {self.type_name}>"


class InvalidRecord(Exception):
    """A record that no recording code writes, or one larger than the grader decodes."""


PLAIN_DTYPES = {
    order + code
    for order in "<>|="
    for code in ("b1", "i1", "i2", "i4", "i8", "u1", "u2", "u4", "u8", "f2", "f4", "f8")
}
SCALARS = {"bool": (bool,), "int": (int,), "float": (float, int), "str": (str,)}
ESTIMATOR_KINDS = {
    "coef_": "ndarray",
    "intercept_": "ndarray",
    "classes_": "ndarray",
    "n_iter_": "ndarray",
    "n_features_in_": "int",
}
MAX_DECODED_ITEMS = 4_000_000  # numbers, characters and items a record may decode into, in all
MAX_DEPTH = 8  # nested lists and tuples, as course.plugins.record encodes them
TRUSTED = {"np": np, "numpy": np}  # names a test may read without importing them: always the grader's


def _number(value):
    return type(value) in (bool, int, float)


class Decoder:
    """Rebuilds the values of one record from trusted types only, within MAX_DECODED_ITEMS in all.

    Each kind is rebuilt exactly as course.plugins.record encodes it: arrays and numpy
    scalars of plain numeric dtypes whose size matches the data sent, and fitted
    LogisticRegression models with plain parameters and the fitted attributes
    tests read. Anything else raises InvalidRecord.
    """

    def __init__(self, max_items=MAX_DECODED_ITEMS):
        self.left = max_items

    def take(self, count):
        self.left -= count
        if self.left < 0:
            raise InvalidRecord(f"the record holds more than {MAX_DECODED_ITEMS} values")

    def value(self, encoded, calls=(), depth=0):
        kind = encoded.get("kind") if isinstance(encoded, dict) else None
        self.take(1)
        if kind == "none":
            return None
        if kind in SCALARS:
            value = encoded.get("value")
            if type(value) not in SCALARS[kind]:
                raise InvalidRecord(f"a {kind} that is not one")
            self.take(len(value) if kind == "str" else 0)
            return {"bool": bool, "int": int, "float": float, "str": str}[kind](value)
        if kind == "ndarray":
            return self.array(encoded)
        if kind == "npscalar":
            if not _number(encoded.get("value")):
                raise InvalidRecord("a numpy scalar that is not a number")
            return self.dtype(encoded).type(encoded["value"])
        if kind in ("list", "tuple"):
            items = encoded.get("items")
            if type(items) is not list or depth >= MAX_DEPTH:
                raise InvalidRecord(f"a {kind} nested too deep or without items")
            self.take(len(items))
            decoded = [self.value(item, (), depth + 1) for item in items]
            return decoded if kind == "list" else tuple(decoded)
        if kind == "estimator":
            return self.estimator(encoded)
        if kind == "function":
            return Replay(calls, self)
        if kind == "opaque":
            return Opaque(str(encoded.get("type", "object"))[:200])
        raise InvalidRecord(f"a value of unknown kind {str(kind)[:40]!r}")

    def dtype(self, encoded):
        if encoded.get("dtype") not in PLAIN_DTYPES:
            raise InvalidRecord(f"an array or scalar of dtype {str(encoded.get('dtype'))[:40]!r}, not a plain number")
        return np.dtype(encoded["dtype"])

    def array(self, encoded):
        dtype, shape, data = self.dtype(encoded), encoded.get("shape"), encoded.get("data")
        if not (
            type(shape) is list
            and len(shape) <= 32
            and all(type(n) is int and n >= 0 for n in shape)
            and type(data) is list
            and int(np.prod(shape, dtype=object)) == len(data)
        ):
            raise InvalidRecord("an array whose shape does not match its data")
        self.take(len(data))
        if not all(_number(item) for item in data):
            raise InvalidRecord("an array holding something other than numbers")
        return np.array(data, dtype=dtype).reshape(shape)

    def estimator(self, encoded):
        from sklearn.linear_model import LogisticRegression

        estimator = LogisticRegression()
        params, attributes = encoded.get("params"), encoded.get("attributes")
        if not (
            isinstance(params, dict)
            and isinstance(attributes, dict)
            and set(params) <= set(estimator.get_params())
            and set(attributes) <= set(ESTIMATOR_KINDS)
        ):
            raise InvalidRecord("a model with parameters or attributes that no fitted LogisticRegression has")
        for name, value in params.items():
            if not isinstance(value, dict) or value.get("kind") not in ("none", *SCALARS):
                raise InvalidRecord(f"a model parameter {name} that is not a plain value")
        estimator.set_params(**{name: self.value(value) for name, value in params.items()})
        for name, value in attributes.items():
            if not isinstance(value, dict) or value.get("kind") not in (ESTIMATOR_KINDS[name], "opaque"):
                raise InvalidRecord(f"a model attribute {name} of the wrong kind")
            setattr(estimator, name, self.value(value))
        return estimator


class Replay:
    """A student's function, answered from the record of the calls the test made in the kernel."""

    def __init__(self, calls, decoder):
        if not isinstance(calls, (list, tuple)) or not all(
            isinstance(call, dict) and type(call.get("key")) is str for call in calls
        ):
            raise InvalidRecord("a function without a list of calls")
        self.outcomes, self.decoder = {call["key"]: call for call in calls}, decoder

    def __call__(self, *args, **kwargs):
        call = self.outcomes.get(record.call_key(args, kwargs))
        if call is None:
            raise AssertionError(
                "the function was called differently when re-checked: its results in the notebook cannot be trusted"
            )
        if "error" in call:
            name, message = call["error"]
            error_class = getattr(builtins, str(name), None)
            if not (isinstance(error_class, type) and issubclass(error_class, Exception)):
                error_class = RuntimeError
            raise error_class(str(message)[:1000])
        return self.decoder.value(call.get("result"))


def replay(source: str, cell_record: dict) -> None:
    """Run a test cell's source on recorded data; raise what the test raises.

    Only the names the test reads from the student's namespace (free_names) are
    taken from the record; builtins, numpy and everything the test imports or
    binds itself are the grader's own, whatever the record holds.
    """
    values, calls = cell_record.get("values"), cell_record.get("calls")
    if not (isinstance(values, dict) and isinstance(calls, dict)):
        raise InvalidRecord("a record without values or calls")
    decoder = Decoder()
    namespace = {"__name__": "__course_replay__", "__builtins__": builtins}
    for name in free_names(source):
        if name in TRUSTED:
            namespace[name] = TRUSTED[name]
        elif name in values and not name.startswith("__"):
            namespace[name] = decoder.value(values[name], calls.get(name, ()))
    with warnings.catch_warnings(), np.errstate(all="ignore"), remembered_fits():
        warnings.simplefilter("ignore")
        exec(_compiled(source), namespace)


DETERMINISTIC_SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky")
MAX_FITS = 1024
_fits: dict[str, dict] = {}  # fitted attributes of LogisticRegression fits in re-checks, by fit_key, newest last


def fit_key(estimator: Any, X: Any, y: Any, sample_weight: Any = None, **options: Any) -> str | None:
    """What a LogisticRegression fit depends on, as a digest; None for a fit not to remember.

    The estimator's class and parameters and the full contents of the arrays it is fitted on: a fit
    with a random element (solvers that shuffle without a fixed seed), a warm start or anything but
    plain numeric arrays is not remembered.
    """
    from sklearn.linear_model import LogisticRegression

    params = estimator.get_params(deep=False)
    if type(estimator) is not LogisticRegression or options or params.get("warm_start"):
        return None
    if params.get("solver") not in DETERMINISTIC_SOLVERS and type(params.get("random_state")) is not int:
        return None
    digest = hashlib.sha256(repr(sorted(params.items())).encode())
    for array in (X, y, sample_weight):
        if array is None:
            digest.update(b"none")
            continue
        if type(array) is not np.ndarray or array.dtype.kind not in "biuf":
            return None
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


@contextlib.contextmanager
def remembered_fits() -> Iterator[None]:
    """Within a re-check, scikit-learn's LogisticRegression.fit remembers each fit by fit_key.

    Test cells fit reference models on the instructor's data, the same for every student: a worker
    fits each once. A remembered fit gives the estimator the fitted attributes (copies) the real fit
    gave it; warnings, which the re-check ignores, are not repeated. Student values a test fits on are
    remembered by their full contents too, so one record never stands in for another.
    """
    from sklearn.linear_model import LogisticRegression

    real_fit = LogisticRegression.fit

    def fit(self, X, y, sample_weight=None, **options):
        key = fit_key(self, X, y, sample_weight, **options)
        if key is not None and key in _fits:
            for name, value in _fits[key].items():
                setattr(self, name, copy.deepcopy(value))
            return self
        before = set(vars(self))
        result = real_fit(self, X, y, sample_weight, **options)
        if key is not None and result is self:
            if len(_fits) >= MAX_FITS:
                del _fits[next(iter(_fits))]
            _fits[key] = {
                name: copy.deepcopy(value)
                for name, value in vars(self).items()
                if name not in before or name.endswith("_")
            }
        return result

    LogisticRegression.fit = fit
    try:
        yield
    finally:
        LogisticRegression.fit = real_fit


@functools.lru_cache(maxsize=256)
def _compiled(source: str):
    return compile(source, "<test cell>", "exec")


_rechecked: dict[str, tuple[str, str] | None] = {}  # re-check outcomes by what they depend on, newest last
MAX_RECHECKED = 4096
UNCACHED = (MemoryError, RecursionError)  # failures that depend on the moment, not on the record


def recheck(source: str, cell_record: dict) -> tuple[str, str] | None:
    """replay(source, cell_record), remembered: None if the test passes, else (error name, message).

    A re-check depends only on the test's source, the record and the data files of the folder it
    runs in (the assignment's source folder, which no student can write); students who hand in
    the same answers have the same records (many right answers, every blank notebook), and their
    re-check is done once. A record is remembered by its full content, so no student's record can
    stand in for another's.
    """
    try:
        key = hashlib.sha256(json.dumps([os.getcwd(), source, cell_record], sort_keys=True).encode()).hexdigest()
    except (TypeError, ValueError):
        key = None
    if key is not None and key in _rechecked:
        return _rechecked[key]
    try:
        replay(source, cell_record)
        outcome = None
    except UNCACHED as error:
        return type(error).__name__, str(error)
    except Exception as error:  # the test failed when re-checked
        outcome = type(error).__name__, str(error)
    if key is not None:
        if len(_rechecked) >= MAX_RECHECKED:
            del _rechecked[next(iter(_rechecked))]
        _rechecked[key] = outcome
    return outcome


def error_output(name: str, message: str) -> NotebookNode:
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


def has_error(cell: NotebookNode) -> bool:
    return any(output.output_type == "error" for output in cell.get("outputs", []))


def is_record(output: NotebookNode) -> bool:
    return output.get("output_type") == "display_data" and record.MIME in output.get("data", {})


def decoded(output: NotebookNode) -> dict:
    data = output.data[record.MIME]
    return json.loads(data) if isinstance(data, str) else data


def find_record(cell: NotebookNode) -> dict | None:
    """The record an injected recording cell shows (its first)."""
    return next((decoded(output) for output in cell.get("outputs", []) if is_record(output)), None)


class VerifyRecords(Preprocessor):
    """Re-run each passing test cell on its record outside the kernel; then drop injected cells."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        with stage("verification"), contextlib.chdir(self.recheck_folder(resources["nbgrader"]["assignment"])):
            self.verify_cells(nb.cells)
        nb.cells = [cell for cell in nb.cells if not cell.metadata.get(INJECTED)]
        return nb, resources

    def recheck_folder(self, assignment):
        """The assignment's source folder: the tests read its data files by relative paths, as in the kernel."""
        coursedir = CourseDirectory(config=self.config)
        return coursedir.format_path(coursedir.source_directory, ".", assignment)

    def verify_cells(self, cells):
        for index, cell in enumerate(cells):
            if not is_test_cell(cell):
                continue
            # the recorder's output comes after all the test's own: the last record in the cell
            own = [output for output in cell.get("outputs", []) if is_record(output)]
            if own:
                cell.outputs = [output for output in cell.outputs if not is_record(output)]
            if has_error(cell):
                continue
            after = cells[index + 1] if index + 1 < len(cells) else None
            if own:
                cell_record = decoded(own[-1])
            else:
                cell_record = find_record(after) if after is not None and after.metadata.get(INJECTED) else None
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            if not isinstance(cell_record, dict) or cell_record.get("grade_id") != grade_id:
                cell.outputs.append(error_output("GraderError", UNREADABLE_RECORD))
                continue
            failure = recheck(cell.source, cell_record)
            if failure is not None:  # the test failed when re-checked: report it like a failure
                name, message = failure
                cell.outputs.append(error_output(name, message + RECHECK_FAILED))
