"""Make the course's data sets, byte for byte reproducibly.

Run from the repository root:  .venv/bin/python data/make_data.py

It writes the canonical CSV files into data/ and copies them into the data/
folder of every assignment under source/, so that a released assignment is
self-contained. The generative model and its true coefficients are documented
in data/README.md; keep the two in step. The breast-cancer files are not
synthetic: they are scikit-learn's copy of the Wisconsin diagnostic data, split
into a training and a test set with a seeded, stratified draw.
"""

import shutil
from pathlib import Path

import numpy as np
from sklearn.datasets import load_breast_cancer

SEED = 20261129
DATA_DIR = Path(__file__).resolve().parent
SOURCE_DIR = DATA_DIR.parent / "source"

# True model of the one-feature data: logit(p) = HOURS_INTERCEPT + HOURS_SLOPE * hours
HOURS_INTERCEPT, HOURS_SLOPE = -5.4, 1.2
N_HOURS_STUDENTS = 60

# True model of the two-feature data:
# logit(p) = EXAM_INTERCEPT + EXAM_HOURS * hours + EXAM_COURSES * math_courses
EXAM_INTERCEPT, EXAM_HOURS, EXAM_COURSES = -6.0, 0.9, 0.8
N_EXAM_TRAIN, N_EXAM_TEST = 120, 48

# Hours of the new students whose chance of passing the assignment asks for.
# 20 lies far beyond the training data (0.75 to 10 hours with this seed): it
# shows that a logistic model extrapolates with full confidence where it has
# seen no data.
GUESSED_HOURS = [0.5, 2.0, 4.5, 6.0, 8.0, 20.0]


# The breast-cancer split: BREAST_CANCER_TEST_SIZE of the 569 masses (114) go to the test set,
# in the same share of malignant masses as the whole data, drawn with their own default_rng(SEED).
BREAST_CANCER_TEST_SIZE = 0.2
EXAM_FILES = ["hours.csv", "guessed_hours.csv", "exam_train.csv", "exam_test.csv"]
BREAST_CANCER_FILES = ["breast_cancer_train.csv", "breast_cancer_test.csv"]
# The files copied into each assignment's data/; an assignment folder not listed here gets every file.
ASSIGNMENT_FILES = {
    "logistic_regression": EXAM_FILES,
    "logistic_regression_from_scratch": EXAM_FILES,
    "logistic_regression_evaluation": BREAST_CANCER_FILES,
}


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def draw_hours(rng, n):
    """Hours studied, 0.5 to 10 in quarter hours."""
    return np.round(rng.uniform(0.5, 10.0, size=n) * 4) / 4


def draw_passed(rng, logit):
    return (rng.uniform(size=logit.shape) < sigmoid(logit)).astype(int)


def make_hours_data(rng):
    hours = draw_hours(rng, N_HOURS_STUDENTS)
    passed = draw_passed(rng, HOURS_INTERCEPT + HOURS_SLOPE * hours)
    return hours, passed


def make_exam_data(rng):
    n = N_EXAM_TRAIN + N_EXAM_TEST
    hours = draw_hours(rng, n)
    courses = rng.binomial(6, 0.4, size=n)
    passed = draw_passed(rng, EXAM_INTERCEPT + EXAM_HOURS * hours + EXAM_COURSES * courses)
    order = rng.permutation(n)
    train, test = order[:N_EXAM_TRAIN], order[N_EXAM_TRAIN:]
    return (hours[train], courses[train], passed[train]), (hours[test], courses[test], passed[test])


def make_breast_cancer_data(rng):
    """scikit-learn's breast-cancer data with malignant = 1, split into stratified train and test rows."""
    data = load_breast_cancer()
    features, malignant = data.data, (data.target == 0).astype(int)  # scikit-learn codes malignant as 0
    n_test = int(np.ceil(BREAST_CANCER_TEST_SIZE * len(malignant)))
    n_test_malignant = int(np.rint(n_test * malignant.mean()))
    test = np.zeros(len(malignant), dtype=bool)
    for label, count in [(1, n_test_malignant), (0, n_test - n_test_malignant)]:
        test[rng.choice(np.flatnonzero(malignant == label), size=count, replace=False)] = True
    header = [str(name) for name in data.feature_names] + ["malignant"]
    # Rows keep scikit-learn's order; each value is written as its shortest exact decimal.
    return header, (features[~test], malignant[~test]), (features[test], malignant[test])


def write_rows(path, header, features, labels):
    lines = [",".join(header)]
    for row, label in zip(features, labels, strict=True):
        lines.append(",".join([*(repr(float(value)) for value in row), str(int(label))]))
    path.write_text("\n".join(lines) + "\n")


def write_csv(path, header, columns, formats):
    lines = [",".join(header)]
    for row in zip(*columns, strict=True):
        lines.append(",".join(fmt % value for fmt, value in zip(formats, row, strict=True)))
    path.write_text("\n".join(lines) + "\n")


def main(data_dir=DATA_DIR, source_dir=SOURCE_DIR):
    """Write the data sets into data_dir and copy them into each source assignment's data/."""
    rng = np.random.default_rng(SEED)
    hours, passed = make_hours_data(rng)
    train, test = make_exam_data(rng)

    files = {
        "hours.csv": (["hours_studied", "passed_exam"], (hours, passed), ("%.2f", "%d")),
        "guessed_hours.csv": (["hours_studied"], (np.array(GUESSED_HOURS),), ("%.2f",)),
        "exam_train.csv": (["hours_studied", "math_courses", "passed_exam"], train, ("%.2f", "%d", "%d")),
        "exam_test.csv": (["hours_studied", "math_courses", "passed_exam"], test, ("%.2f", "%d", "%d")),
    }
    for name, (header, columns, formats) in files.items():
        write_csv(Path(data_dir) / name, header, columns, formats)

    header, train, test = make_breast_cancer_data(np.random.default_rng(SEED))
    write_rows(Path(data_dir) / "breast_cancer_train.csv", header, *train)
    write_rows(Path(data_dir) / "breast_cancer_test.csv", header, *test)

    names = sorted([*files, *BREAST_CANCER_FILES])
    for assignment_data in sorted(Path(source_dir).glob("*/data")):
        for name in ASSIGNMENT_FILES.get(assignment_data.parent.name, names):
            shutil.copyfile(Path(data_dir) / name, assignment_data / name)
    return names


if __name__ == "__main__":
    main()
