"""Feedback: explains every failure, never shows hidden-test code."""

import re

import pytest

from course.common import open_api
from course.feedback import generate_feedback

from catalogue import CATALOGUES
from conftest import REFERENCE
from private import private_lines, visible_text

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def feedback(graded_catalogue):
    """{(assignment, student): course root}, with feedback in each course for its catalogue students."""
    roots, _ = graded_catalogue
    for assignment, course in sorted({(assignment, root) for (assignment, _), root in roots.items()}):
        generate_feedback(open_api(course), assignment)
    return roots


def feedback_page(roots, student, assignment):
    return roots[assignment, student] / "feedback" / student / assignment / f"{assignment}.html"


def feedback_pages(roots, assignment="*"):
    """Every feedback page of `assignment` (of all assignments by default) in the courses of `roots`."""
    return sorted(
        page for course in set(roots.values()) for page in (course / "feedback").glob(f"*/{assignment}/*.html")
    )


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_no_hidden_test_line_in_any_feedback(feedback, assignment):
    hidden = private_lines(assignment, solutions=False)
    pages = feedback_pages(feedback, assignment)
    assert hidden and len(pages) == len(CATALOGUES[assignment]) + 2
    for page in pages:
        text = visible_text(page)
        leaked = [line for line in hidden if line in text]
        assert not leaked, f"{page}: {leaked[:3]}"


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_wrong_answers_feedback_names_the_mistake(feedback, assignment):
    for variant in CATALOGUES[assignment]:
        if not variant.is_right:
            text = visible_text(feedback_page(feedback, variant.name, assignment))
            assert variant.message in text, variant.name


# The sigmoid exercise's line in each page's summary, with its points.
SIGMOID_SUMMARY = {
    "logistic_regression": "Exercise 5: the sigmoid: 2 / 2 points",
    "logistic_regression_from_scratch": "Exercise 1: the sigmoid: 1 / 1 point",
    "logistic_regression_evaluation": "Exercise 3: a confusion matrix at the threshold 0.5: 2 / 2 points",
}
# A line of the student's own code that each page shows.
OWN_CODE = {"logistic_regression_evaluation": "confusion = confusion_matrix(y_test, test_predictions)"}


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_feedback_shows_code_and_points(feedback, assignment):
    text = re.sub(r"\s+", " ", visible_text(feedback_page(feedback, REFERENCE, assignment)))
    assert OWN_CODE.get(assignment, "def sigmoid(z):") in text and SIGMOID_SUMMARY[assignment] in text


def test_summary_names_each_exercise_and_links_to_its_message(feedback):
    page = feedback_page(feedback, "sigmoid_sign_error", "logistic_regression").read_text()
    summary = page[page.index('<ol id="toc">') : page.index("</ol>")]
    items = re.findall(r"<li.*?</li>", summary, re.S)
    assert len(items) == 11 and "Exercise 1: standardize the hours</a>:" in items[0]
    lost = [item for item in items if "what went wrong" in item]
    assert len(lost) == 1 and "Exercise 5: the sigmoid" in lost[0] and 'href="#test_sigmoid"' in lost[0], lost


def test_failures_show_messages_not_tracebacks(feedback):
    for page in feedback_pages(feedback):
        assert "most recent call last" not in visible_text(page), page
