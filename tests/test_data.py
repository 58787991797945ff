"""The data sets: reproducible from their seed, copied into the assignments, documented."""

import filecmp
import importlib.util

import numpy as np
import pytest

from conftest import REPO


def load_make_data():
    spec = importlib.util.spec_from_file_location("make_data", REPO / "data" / "make_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_make_data_reproduces_the_committed_files_byte_for_byte(tmp_path):
    (tmp_path / "source" / "assignment" / "data").mkdir(parents=True)
    names = load_make_data().main(tmp_path, tmp_path / "source")
    for name in names:
        assert filecmp.cmp(tmp_path / name, REPO / "data" / name, shallow=False), name
        assert filecmp.cmp(tmp_path / name, tmp_path / "source" / "assignment" / "data" / name, shallow=False)


@pytest.mark.parametrize("folder", sorted((REPO / "source").glob("*/data")), ids=lambda p: p.parent.name)
def test_assignment_data_are_the_canonical_files(folder):
    for path in folder.glob("*.csv"):
        assert filecmp.cmp(path, REPO / "data" / path.name, shallow=False), f"run `make data`: {path}"


def test_split_is_large_enough_to_measure_accuracy():
    train = np.loadtxt(REPO / "data" / "exam_train.csv", delimiter=",", skiprows=1)
    test = np.loadtxt(REPO / "data" / "exam_test.csv", delimiter=",", skiprows=1)
    assert len(train) >= 100 and len(test) >= 40
    assert 0.2 < train[:, 2].mean() < 0.8 and 0.2 < test[:, 2].mean() < 0.8


def test_guessed_hours_include_one_far_outside_the_training_range():
    hours = np.loadtxt(REPO / "data" / "hours.csv", delimiter=",", skiprows=1)[:, 0]
    guessed = np.loadtxt(REPO / "data" / "guessed_hours.csv", delimiter=",", skiprows=1)
    assert guessed.max() > 1.5 * hours.max()


def test_data_card_documents_columns_and_true_coefficients():
    card = (REPO / "data" / "README.md").read_text()
    make_data = load_make_data()
    for path in (REPO / "data").glob("*.csv"):
        assert f"`{path.name}`" in card
        for column in path.read_text().splitlines()[0].split(","):
            assert f"`{column}`" in card, column
    for value in [
        make_data.HOURS_INTERCEPT,
        make_data.HOURS_SLOPE,
        make_data.EXAM_INTERCEPT,
        make_data.EXAM_HOURS,
        make_data.EXAM_COURSES,
        make_data.SEED,
    ]:
        assert str(value) in card, value


def test_breast_cancer_split_is_stratified_with_malignant_as_the_positive_class():
    train = np.loadtxt(REPO / "data" / "breast_cancer_train.csv", delimiter=",", skiprows=1)
    test = np.loadtxt(REPO / "data" / "breast_cancer_test.csv", delimiter=",", skiprows=1)
    assert train.shape == (455, 31) and test.shape == (114, 31)
    assert (train[:, -1].sum(), test[:, -1].sum()) == (170, 42)  # 212 malignant masses in all, coded 1
