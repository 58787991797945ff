"""The grade report: an offline HTML page whose numbers match the gradebook, graded with real nbgrader."""

import shutil
import statistics
import warnings
from dataclasses import replace
from html.parser import HTMLParser

import matplotlib.axes
import pytest
from nbgrader.api import Gradebook

from course import notebooks
from course.common import CourseError, open_api
from course.report import write_report
from course.report.figures import EXERCISES_FIGURE, TOTALS_FIGURE

from catalogue import CATALOGUES, Variant
from conftest import REPO, course_cli, make_course, release_notebook, submit_variants
from hostile import HOSTILE

pytestmark = [pytest.mark.slow, pytest.mark.sandbox]

ASSIGNMENT, SOLO_ASSIGNMENT = "logistic_regression", "logistic_regression_from_scratch"
MISTAKES = {v.name: v for v in CATALOGUES[ASSIGNMENT]}
TWO_COLUMNS = MISTAKES["both_probability_columns"]  # made by two students
MIN_MAX = MISTAKES["min_max_scaling"]
KILLER = next(v for v in HOSTILE if v.name == "kills_its_kernel")
ESCAPE_ME = "<script>alert('x')</script> & more"
CLASS = [
    Variant("ref", {}),
    replace(TWO_COLUMNS, name="carol_two_columns"),
    replace(TWO_COLUMNS, name="dave_two_columns"),
    replace(MIN_MAX, name="bob_min_max"),
    # Kills its kernel in predict_exam; before that, its sigmoid raises a message full of HTML.
    replace(
        KILLER,
        name="ivan_kills_kernel",
        answers={**KILLER.answers, "sigmoid": f"def sigmoid(z):\n    raise ValueError({ESCAPE_ME!r})"},
    ),
]
UNTOUCHED, CORRUPT, SOLO = "oscar_untouched", "peggy_corrupt", "solo"
STOCK_FAILED = "quinn_failed_in_stock_nbgrader"  # in the gradebook with no autograded notebook
SOLO_MISTAKE = next(v for v in CATALOGUES[SOLO_ASSIGNMENT] if v.name == "gradient_sign_error")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A small class graded by `course grade` (nbgrader's autograder, sandboxed); a class of one on the
    second assignment."""
    root = tmp_path_factory.mktemp("report")
    make_course(root)
    submit_variants(root, ASSIGNMENT, CLASS)
    notebooks.write_submission(release_notebook(root, ASSIGNMENT), root, UNTOUCHED, ASSIGNMENT)
    corrupt = root / "submitted" / CORRUPT / ASSIGNMENT
    corrupt.mkdir(parents=True)
    (corrupt / f"{ASSIGNMENT}.ipynb").write_text("{ not a notebook")
    run = course_cli(root, "grade", ASSIGNMENT, "--jobs", "2")
    assert run.returncode == 1 and f"failed: {CORRUPT}" in run.stdout, run.stdout[-3000:]  # the corrupt one only
    # What stock `nbgrader autograde` leaves for a submission it fails on: a submission with no grades.
    shutil.copytree(root / "submitted" / CORRUPT, root / "submitted" / STOCK_FAILED)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbgrader's add_submission trips SQLAlchemy's autoflush warnings
        gradebook.add_student(STOCK_FAILED)
        gradebook.add_submission(ASSIGNMENT, STOCK_FAILED)
    submit_variants(root, SOLO_ASSIGNMENT, [replace(SOLO_MISTAKE, name=SOLO)])
    run = course_cli(root, "grade", SOLO_ASSIGNMENT, "--jobs", "1")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return root


# ---------------------------------------------------------------- reading the page


class Tables(HTMLParser):
    """Every <table id=...> of a page as a list of rows of cell texts, and every img src."""

    def __init__(self, text):
        super().__init__()
        self.tables, self.images, self._table, self._row, self._cell = {}, [], None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = self.tables.setdefault(attrs.get("id"), [])
        elif tag == "tr" and self._table is not None:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "img":
            self.images.append(attrs["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self._table.append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def report(root, assignment):
    """Write the report; return its page path, raw HTML and parsed tables (header row removed)."""
    page = write_report(open_api(root), assignment)
    text = page.read_text(encoding="utf-8")
    parsed = Tables(text)
    tables = {name: rows[1:] for name, rows in parsed.tables.items()}
    return page, text, tables, parsed.images


def number(text):
    return float(text)  # the page shows numbers rounded to 2 decimals


# ---------------------------------------------------------------- expectations from the gradebook


def exercise_of_cells(root, assignment):
    """{grade cell: exercise}, the exercise being the nearest answer cell above it in the released notebook."""
    owner, current = {}, None
    for cell in release_notebook(root, assignment).cells:
        info = cell.metadata.get("nbgrader", {})
        if info.get("solution"):
            current = info["grade_id"]
        if info.get("grade"):
            owner[info["grade_id"]] = current
    return owner


def gradebook_view(root, assignment, leave_out=()):
    """Totals, per-exercise (scores, max, pending count) and pending cells, straight from the gradebook."""
    owner = exercise_of_cells(root, assignment)
    totals, exercises, pending = {}, {}, {}
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            student = submission.student.id
            if student in leave_out:
                continue
            totals[student] = max(0.0, submission.score - submission.late_submission_penalty)
            per_exercise = {}
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    score, maximum, manual = per_exercise.get(owner[grade.name], (0.0, 0.0, False))
                    per_exercise[owner[grade.name]] = (
                        score + grade.score,
                        maximum + grade.max_score,
                        manual or grade.needs_manual_grade,
                    )
                    if grade.needs_manual_grade:
                        pending.setdefault(student, []).append(grade.name)
            for name, (score, maximum, manual) in per_exercise.items():
                entry = exercises.setdefault(name, {"max": maximum, "scores": [], "pending": 0})
                if manual:
                    entry["pending"] += 1
                else:
                    entry["scores"].append(score)
    return totals, exercises, pending


# ---------------------------------------------------------------- tests


def test_page_is_offline_with_its_figures(graded):
    page, text, _, images = report(graded, ASSIGNMENT)
    assert page == graded / "reports" / ASSIGNMENT / "index.html"
    assert sorted(images) == sorted([TOTALS_FIGURE, EXERCISES_FIGURE])
    for image in images:
        data = (page.parent / image).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 5000, image
    assert "http://" not in text and "https://" not in text
    assert "<script" not in text and "<link" not in text and "<style>" in text


def test_figures_are_deterministic(graded):
    page, *_ = report(graded, ASSIGNMENT)
    first = {name: (page.parent / name).read_bytes() for name in (TOTALS_FIGURE, EXERCISES_FIGURE)}
    report(graded, ASSIGNMENT)
    assert first == {name: (page.parent / name).read_bytes() for name in first}


def test_total_scores_match_the_gradebook(graded, monkeypatch):
    plotted = []
    original = matplotlib.axes.Axes.hist

    def hist(self, values, *args, **kwargs):
        plotted.append(sorted(values))
        return original(self, values, *args, **kwargs)

    monkeypatch.setattr(matplotlib.axes.Axes, "hist", hist)
    _, text, tables, _ = report(graded, ASSIGNMENT)
    totals, _, _ = gradebook_view(graded, ASSIGNMENT, leave_out={CORRUPT, STOCK_FAILED})
    assert set(totals) == {v.name for v in CLASS} | {UNTOUCHED}
    assert plotted == [sorted(totals.values())]
    assert {row[0]: number(row[1]) for row in tables["totals"]} == pytest.approx(totals, abs=0.005)
    assert f"mean {statistics.fmean(totals.values()):.2f}".rstrip("0").rstrip(".") in text
    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gradebook:
        maximum = gradebook.find_assignment(ASSIGNMENT).max_score
    assert f"out of {maximum:g} points" in text
    assert totals["ref"] == 17 and totals[UNTOUCHED] == 0  # full marks but the reflection; nothing


def test_totals_are_after_late_penalties(graded):
    student = "bob_min_max"
    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gradebook:
        raw = gradebook.find_submission(ASSIGNMENT, student).score
        notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        before, notebook.late_submission_penalty = notebook.late_submission_penalty, 1.5
        gradebook.db.commit()
    try:
        _, text, tables, _ = report(graded, ASSIGNMENT)
    finally:
        with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gradebook:
            gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student).late_submission_penalty = before
            gradebook.db.commit()
    rows = {row[0]: row[1:] for row in tables["totals"]}
    assert [number(value) for value in rows[student]] == [raw - 1.5, 1.5]
    assert number(rows["ref"][1]) == 0
    assert "1 late submission lost 1.5 points" in text


def test_exercise_means_match_the_gradebook(graded):
    _, _, tables, _ = report(graded, ASSIGNMENT)
    _, exercises, _ = gradebook_view(graded, ASSIGNMENT, leave_out={CORRUPT, STOCK_FAILED})
    rows = {row[0]: row for row in tables["exercises"]}
    assert set(rows) == set(exercises)
    for name, entry in exercises.items():
        _, points, mean, _, lost, pending = rows[name]
        assert number(points) == entry["max"], name
        if entry["scores"]:
            assert number(mean) == pytest.approx(statistics.fmean(entry["scores"]), abs=0.005), name
            assert int(lost) == sum(score < entry["max"] for score in entry["scores"]), name
        else:
            assert mean == "–" and lost == "–", name
        assert int(pending or 0) == entry["pending"], name
    # The mistakes lost the points of their own exercise: two students, one, and the killer and untouched.
    assert int(rows["pass_probabilities"][4]) == 2 + 2
    assert int(rows["scale_hours"][4]) == 1 + 2


@pytest.mark.parametrize("variant,students", [(TWO_COLUMNS, 2), (MIN_MAX, 1)], ids=["two_columns", "min_max"])
def test_failure_messages_are_counted_per_exercise(graded, variant, students):
    _, _, tables, _ = report(graded, ASSIGNMENT)
    (test_cell,) = variant.expected
    exercise = exercise_of_cells(graded, ASSIGNMENT)[test_cell]
    rows = [row for row in tables[f"messages-{exercise}"] if variant.message in row[0]]
    assert len(rows) == 1, tables[f"messages-{exercise}"]
    message, count, who = rows[0]
    assert message.startswith("AssertionError: ") and "\n" not in message
    assert int(count) == students
    assert sorted(who.split(", ")) == sorted(v.name for v in CLASS if v.message == variant.message)
    assert len(tables[f"messages-{exercise}"]) <= 5


def test_failure_messages_are_escaped(graded):
    _, text, tables, _ = report(graded, ASSIGNMENT)
    assert "<script>" not in text
    assert "ValueError: &lt;script&gt;alert(" in text
    assert [row[1:] for row in tables["messages-sigmoid"] if row[0] == f"ValueError: {ESCAPE_ME}"] == [
        ["1", "ivan_kills_kernel"]
    ]


def test_manual_grading_list_follows_the_gradebook(graded):
    _, _, tables, _ = report(graded, ASSIGNMENT)
    _, _, pending = gradebook_view(graded, ASSIGNMENT, leave_out={CORRUPT, STOCK_FAILED})
    listed = {row[0]: row[1].split(", ") for row in tables["pending"]}
    assert listed == pending
    # Everyone who wrote a reflection; the untouched release's blank one is scored 0 by nbgrader.
    assert set(listed) == {v.name for v in CLASS} and listed["ref"] == ["reflection"]

    with Gradebook(f"sqlite:///{graded / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade("reflection", ASSIGNMENT, ASSIGNMENT, "carol_two_columns")
        grade.manual_score = 2
        grade.needs_manual_grade = False  # as nbgrader's formgrader does when it saves a score
        gradebook.db.commit()
    _, _, tables, _ = report(graded, ASSIGNMENT)
    assert {row[0] for row in tables["pending"]} == set(listed) - {"carol_two_columns"}
    reflection = next(row for row in tables["exercises"] if row[0] == "reflection")
    assert number(reflection[2]) == pytest.approx(1.0)  # carol's 2 and the untouched release's 0
    assert int(reflection[5]) == len(listed) - 1


def test_failed_runs_are_named_with_the_reason(graded):
    _, _, tables, _ = report(graded, ASSIGNMENT)
    failed = {row[0]: row[1] for row in tables["failed"]}
    assert set(failed) == {"ivan_kills_kernel", CORRUPT, STOCK_FAILED}
    assert "kernel died" in failed["ivan_kills_kernel"] and "predict_exam" in failed["ivan_kills_kernel"]
    assert "its grading failed (course grade names the reason)" in failed[CORRUPT]
    assert "could not autograde" in failed[STOCK_FAILED]
    for student in (CORRUPT, STOCK_FAILED):
        assert student not in {row[0] for row in tables["totals"]} | {row[0] for row in tables["pending"]}


def test_class_of_one(graded):
    page, text, tables, images = report(graded, SOLO_ASSIGNMENT)
    totals, exercises, _ = gradebook_view(graded, SOLO_ASSIGNMENT)
    assert sorted(images) == sorted([TOTALS_FIGURE, EXERCISES_FIGURE])
    assert all((page.parent / image).is_file() for image in images)
    assert {row[0]: number(row[1]) for row in tables["totals"]} == totals == {SOLO: totals[SOLO]}
    assert "1 student autograded" in text
    rows = {row[0]: row for row in tables["exercises"]}
    assert int(rows["gradient"][4]) == 1 and int(rows["sigmoid"][4]) == 0
    assert number(rows["sigmoid"][2]) == exercises["sigmoid"]["max"]
    assert [row[1:] for row in tables["messages-gradient"] if SOLO_MISTAKE.message in row[0]] == [["1", SOLO]]
    assert "None: every submission ran to the end." in text


def test_assignment_without_submissions(tmp_path):
    make_course(tmp_path)
    folder = tmp_path / "reports" / ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / TOTALS_FIGURE).write_bytes(b"stale")  # from an earlier report
    page, text, tables, images = report(tmp_path, ASSIGNMENT)
    assert "No submissions of logistic_regression yet" in text
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
    assert not images and not tables and sorted(p.name for p in folder.iterdir()) == ["index.html"]


def test_unknown_assignment_is_a_course_error(graded):
    with pytest.raises(CourseError, match="unknown assignment 'no_such_assignment'") as error:
        write_report(open_api(graded), "no_such_assignment")
    assert "\n" not in str(error.value)
    assert not (graded / "reports" / "no_such_assignment").exists()


def test_missing_gradebook_is_a_course_error_and_not_created(tmp_path):
    shutil.copy(REPO / "nbgrader_config.py", tmp_path)
    shutil.copytree(REPO / "source", tmp_path / "source")
    with pytest.raises(CourseError, match="no gradebook"):
        write_report(open_api(tmp_path), ASSIGNMENT)
    assert not (tmp_path / "gradebook.db").exists() and not (tmp_path / "reports").exists()
