"""Broken and hostile submissions: the robustness catalogue.

Each entry is graded with real `nbgrader autograde` next to an honest student.
The run must complete, the honest student must get full marks, and every cell
in `expected` must score as given (no undeserved points). Where the expected
scores are all zero, the answers are wrong on purpose, so any point earned
would be a point the exploit stole.
"""

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
ALL_TESTS = ["test_scale_hours", "test_scale_hours_guessed", "test_fit_hours_model", "test_coefficients",
             "test_pass_probabilities", "test_sigmoid", "test_scale_exam_features", "test_fit_exam_model",
             "test_predict_exam", "test_accuracy", "test_decision_boundary"]
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

HOSTILE = [
    Variant("exception_in_answer_cell", {"sigmoid": "raise ValueError('something went wrong')"},
            {"test_sigmoid": 0}),
    Variant("infinite_loop", {"sigmoid": "while True:\n    pass"}, {"test_sigmoid": 0}),
    Variant("prints_300000_lines",
            {"coefficients": "for line in range(300_000):\n    print(line)\n"
                             "calculated_coefficients = model.coef_\nintercept = model.intercept_"}),
    Variant("kills_its_kernel", {**WRONG_ANSWERS, "predict_exam": "import os\nos._exit(0)"}, ALL_ZERO),
    Variant("asks_for_input", {"accuracy": "accuracy_2 = float(input('What is the accuracy? '))"},
            {"test_accuracy": 0}),
    Variant("deleted_test_cell", {"sigmoid": VISIBLE_ONLY_SIGMOID}, {"test_sigmoid": 0},
            edit=remove_cell("test_sigmoid")),
    Variant("edited_test_cell", {"sigmoid": VISIBLE_ONLY_SIGMOID}, {"test_sigmoid": 0},
            edit=replace_cell_source("test_sigmoid", "assert True")),
    Variant("raised_points", {}, {}, edit=raise_points("test_coefficients", 100)),
    Variant("object_equal_to_everything",
            {"pass_probabilities": LOOKS_RIGHT + "passed_predictions = LooksRight("
                                                 "model.predict_proba(guessed_hours_scaled)[:, 1])",
             "accuracy": LOOKS_RIGHT + "accuracy_2 = LooksRight([np.mean(passed_predictions_2 == passed_exam_2_test)])"},
            {"test_pass_probabilities": 0, "test_accuracy": 0}),
    Variant("patched_numpy_comparisons", with_first_answer_prefixed(PATCH_NUMPY), ALL_ZERO),
    Variant("patched_builtins", with_first_answer_prefixed(PATCH_BUILTINS), ALL_ZERO),
    Variant("hidden_tracebacks", with_first_answer_prefixed(HIDE_TRACEBACKS), ALL_ZERO),
    Variant("cheats_only_when_graded", with_first_answer_prefixed(ONLY_WHEN_GRADED), ALL_ZERO),
]
