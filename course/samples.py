"""The sample students that `make demo` grades: one perfect, one with typical mistakes, one blank.

Each sample is built from the current release, so it always matches the
assignment: the perfect student types the reference solutions, the typical
student types them too except where noted, the blank student submits the
release untouched.
"""

from pathlib import Path

from . import notebooks

TYPICAL_MISTAKES = {
    "logistic_regression": {
        # Standardizes the new students with their own mean and standard deviation.
        "scale_hours": """\
scaler = StandardScaler().fit(hours_studied)
hours_studied_scaled = scaler.transform(hours_studied)
guessed_hours_scaled = StandardScaler().fit_transform(guessed_hours)""",
        # Takes column 0 of predict_proba, the probability of failing.
        "pass_probabilities": """\
passed_predictions = model.predict_proba(guessed_hours_scaled)[:, 0]
for hours, probability in zip(guessed_hours.ravel(), np.ravel(passed_predictions)):
    print(f"{hours:5.1f} hours studied: P(pass) = {probability:.3f}")""",
        # Uses math.exp, which only takes single numbers.
        "sigmoid": """\
import math

def sigmoid(z):
    return 1 / (1 + math.exp(-z))""",
        # Reports a percentage.
        "accuracy": """\
accuracy_2 = 100 * np.mean(passed_predictions_2 == passed_exam_2_test)
print(f"Test accuracy: {accuracy_2:.3f}")""",
        "reflection": "The model got most of the test students right, so it works well.",
    },
    "logistic_regression_from_scratch": {
        # Sums the log-loss instead of averaging it.
        "log_loss": """\
def log_loss(y, p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))""",
        # Uses >= at the threshold.
        "predict_class": """\
def predict_class(probabilities, threshold=0.5):
    return (probabilities >= threshold).astype(int)""",
        "comparison": "My weights are the same as scikit-learn's.",
    },
}

STUDENTS = {"ada": "perfect", "ben": "typical", "cy": "blank"}


def sample_notebook(course_root, assignment, kind):
    """The notebook a sample student of this kind submits."""
    root = Path(course_root)
    release = notebooks.read(root / "release" / assignment / f"{assignment}.ipynb")
    if kind == "blank":
        return release
    answers = notebooks.solutions(notebooks.read(root / "source" / assignment / f"{assignment}.ipynb"))
    if kind == "typical":
        answers.update(TYPICAL_MISTAKES.get(assignment, {}))
    return notebooks.fill(release, answers)


def write_samples(course_root, assignment):
    """Put every sample student's submission into submitted/; return the student ids."""
    for student, kind in STUDENTS.items():
        notebook = sample_notebook(course_root, assignment, kind)
        notebooks.write_submission(notebook, course_root, student, assignment)
    return list(STUDENTS)
