"""Check test cells again outside the student's kernel.

nbgrader runs the tests in the student's own kernel, where the student's code
may have replaced np.allclose, isinstance or the traceback printer. Two
preprocessors, wired into autograding by nbgrader_config.py, close that gap:

* InjectRecorders (before Execute) puts cells around every test cell that
  record, as plain JSON data, the values and function calls the test reads
  (see course.record).
* VerifyRecords (after Execute) runs each test cell that passed in the kernel
  a second time in the grader's own process, on the recorded data, with
  pristine numpy and builtins. If that run fails, or the record is missing,
  the cell gets an error output, so nbgrader scores it 0. It then removes
  the injected cells.

JSON is decoded, never unpickled: no student code runs in the grader.
"""

import ast
import builtins
import contextlib
import json
import warnings
from pathlib import Path

import numpy as np
from nbconvert.preprocessors import Preprocessor
from nbformat.v4 import new_code_cell, new_output
from traitlets import Bool

from . import record

RECORD_SOURCE = Path(record.__file__).read_text()
INJECTED = "course_injected"


def free_names(source):
    """Names a cell reads but does not define: the student's variables it uses."""
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
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "get" and isinstance(node.func.value, ast.Call)
              and getattr(node.func.value.func, "id", None) == "globals"
              and node.args and isinstance(node.args[0], ast.Constant)):
            loaded.add(node.args[0].value)  # globals().get("name")
    return sorted(loaded - bound - set(dir(builtins)))


def is_test_cell(cell):
    info = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and info.get("grade", False) and not info.get("solution", False)


def injected_cell(source):
    cell = new_code_cell(source)
    cell.metadata[INJECTED] = True
    return cell


class InjectRecorders(Preprocessor):
    """Surround every test cell with cells that record what it reads."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        setup = ("import types as _course_types\n"
                 "__course_record = _course_types.ModuleType('course_record')\n"
                 f"exec({RECORD_SOURCE!r}, __course_record.__dict__)\n"
                 "del _course_types")
        cells = [injected_cell(setup)]
        for cell in nb.cells:
            if is_test_cell(cell):
                names = free_names(cell.source)
                cells.append(injected_cell(f"__course_record.begin(globals(), {names!r})"))
                cells.append(cell)
                grade_id = cell.metadata["nbgrader"]["grade_id"]
                cells.append(injected_cell(f"__course_record.end(globals(), {grade_id!r})"))
            else:
                cells.append(cell)
        nb.cells = cells
        return nb, resources


class Opaque:
    """Stands in for an object the record could not describe: no test accepts it."""

    def __init__(self, type_name):
        self.type_name = type_name

    def __repr__(self):
        return f"<unrecordable {self.type_name}>"


class Replay:
    """A student's function, answered from the record of the calls the test made in the kernel."""

    def __init__(self, calls):
        self.outcomes = {call["key"]: call for call in calls}

    def __call__(self, *args, **kwargs):
        call = self.outcomes.get(record.call_key(args, kwargs))
        if call is None:
            raise AssertionError("the function was called differently when re-checked: "
                                 "its results in the notebook cannot be trusted")
        if "error" in call:
            name, message = call["error"]
            error_class = getattr(builtins, name, None)
            if not (isinstance(error_class, type) and issubclass(error_class, Exception)):
                error_class = RuntimeError
            raise error_class(message)
        return decode(call["result"])


def decode(encoded, calls=()):
    """The value an encode() record describes, rebuilt from trusted types only."""
    kind = encoded["kind"]
    if kind == "none":
        return None
    if kind in ("bool", "int", "float", "str"):
        return {"bool": bool, "int": int, "float": float, "str": str}[kind](encoded["value"])
    if kind == "ndarray":
        return np.array(encoded["data"], dtype=np.dtype(encoded["dtype"])).reshape(encoded["shape"])
    if kind == "npscalar":
        return np.dtype(encoded["dtype"]).type(encoded["value"])
    if kind in ("list", "tuple"):
        items = [decode(item) for item in encoded["items"]]
        return items if kind == "list" else tuple(items)
    if kind == "estimator":
        from sklearn.linear_model import LogisticRegression

        params = {name: decode(value) for name, value in encoded["params"].items()}
        estimator = LogisticRegression()
        valid = estimator.get_params()
        estimator.set_params(**{name: value for name, value in params.items() if name in valid})
        for name, value in encoded["attributes"].items():
            setattr(estimator, name, decode(value))
        return estimator
    if kind == "function":
        return Replay(calls)
    return Opaque(encoded.get("type", "object"))


def replay(source, cell_record):
    """Run a test cell's source on recorded data; raise what the test raises."""
    namespace = {"__name__": "__course_replay__"}
    for name, value in cell_record["values"].items():
        namespace[name] = decode(value, cell_record["calls"].get(name, ()))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        exec(compile(source, "<test cell>", "exec"), namespace)


def error_output(name, message):
    return new_output("error", ename=name, evalue=message, traceback=[f"{name}: {message}"])


def has_error(cell):
    return any(output.output_type == "error" for output in cell.get("outputs", []))


def find_record(cell):
    for output in cell.get("outputs", []):
        if output.output_type == "display_data" and record.MIME in output.get("data", {}):
            data = output.data[record.MIME]
            return json.loads(data) if isinstance(data, str) else data
    return None


class VerifyRecords(Preprocessor):
    """Re-run each passing test cell on its record outside the kernel; then drop injected cells."""

    enabled = Bool(True)

    def preprocess(self, nb, resources):
        # The tests read data files relative to the notebook, as they do in the kernel.
        with contextlib.chdir(resources.get("metadata", {}).get("path") or "."):
            self.verify_cells(nb.cells)
        nb.cells = [cell for cell in nb.cells if not cell.metadata.get(INJECTED)]
        return nb, resources

    def verify_cells(self, cells):
        for index, cell in enumerate(cells):
            if not is_test_cell(cell) or has_error(cell):
                continue
            after = cells[index + 1] if index + 1 < len(cells) else None
            cell_record = find_record(after) if after is not None and after.metadata.get(INJECTED) else None
            grade_id = cell.metadata["nbgrader"]["grade_id"]
            if cell_record is None or cell_record.get("grade_id") != grade_id:
                cell.outputs.append(error_output(
                    "GraderError", "the grader could not read the answers this test checked, "
                    "so it cannot confirm the result (was the kernel restarted or the recording disturbed?)"))
                continue
            try:
                replay(cell.source, cell_record)
            except Exception as error:  # the test failed when re-checked: report it like a failure
                cell.outputs.append(error_output(
                    type(error).__name__,
                    f"{error} (this test passed inside the notebook but failed when the grader "
                    "re-checked the answers outside it)"))
