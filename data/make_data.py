"""Make the course's synthetic exam data sets, byte for byte reproducibly.

Run from the repository root:  .venv/bin/python data/make_data.py

It writes the canonical CSV files into data/ and copies them into the data/
folder of every assignment under source/, so that a released assignment is
self-contained. The generative model and its true coefficients are documented
in data/README.md; keep the two in step.
"""

import shutil
from pathlib import Path

import numpy as np

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

    for assignment_data in sorted(Path(source_dir).glob("*/data")):
        for name in files:
            shutil.copyfile(Path(data_dir) / name, assignment_data / name)
    return sorted(files)


if __name__ == "__main__":
    main()
