"""Feedback: explains every failure, never shows hidden-test code."""

import html
import re

import pytest

from catalogue import CATALOGUES
from conftest import REFERENCE
from course.feedback import generate_feedback
from course.nbgrader_api import open_api
from private import private_lines


def visible_text(path):
    """The feedback page's text as a reader sees it (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", path.read_text()))


@pytest.fixture(scope="module")
def feedback(graded_catalogue):
    course, _ = graded_catalogue
    api = open_api(course)
    for assignment in CATALOGUES:
        generate_feedback(api, assignment)
    return course


def feedback_page(course, student, assignment):
    return course / "feedback" / student / assignment / f"{assignment}.html"


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_no_hidden_test_line_in_any_feedback(feedback, assignment):
    hidden = private_lines(assignment, solutions=False)
    pages = sorted((feedback / "feedback").glob(f"*/{assignment}/*.html"))
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


@pytest.mark.parametrize("assignment", sorted(CATALOGUES))
def test_feedback_shows_code_and_points(feedback, assignment):
    text = visible_text(feedback_page(feedback, REFERENCE, assignment))
    assert "def sigmoid(z):" in text and "Test cell (Score: 2.0 / 2.0)" in text


def test_failures_show_messages_not_tracebacks(feedback):
    for page in (feedback / "feedback").glob("*/*/*.html"):
        assert "most recent call last" not in visible_text(page), page
