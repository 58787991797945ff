"""Accessible to every student: axe-core audits the pages the course writes, in Chromium.

The pages are the demo's (conftest's `demo`, the `make demo` that test_cli and test_first_hour
share, so nothing is graded for these tests): the feedback page of `ben`, the sample student with
typical mistakes, for every assignment (his failures shown, with their messages), and the grade
report of every assignment. Each is opened offline under its own Content-Security-Policy, and
axe-core's default rules (tests/package.json pins the version) find no serious or critical
violation. Every violation found, of any impact, is written to tests/browser-artifacts/.

The released notebook in JupyterLab is audited in test_browser.py, beside the other Lab tests;
docs/accessibility.md lists what axe reports there and whose it is.
"""

import json

import pytest

from browser_support import (
    ARTIFACTS,
    LOAD,
    axe_violations,
    chromium_session,
    describe_violations,
    offline_context,
    severe,
)
from conftest import ASSIGNMENTS

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the `browser` fixture
    expect = None

STUDENT = "ben"  # the demo's student with typical mistakes (course/samples.py)


@pytest.fixture(scope="module")
def course(demo):
    run = demo["run"]
    assert run.returncode == 0, f"make demo: {run.stdout[-2000:]} {run.stderr[-3000:]}"
    return demo["demo"] / "course"


@pytest.fixture(scope="module")
def browser():
    yield from chromium_session(need_axe=True)


@pytest.fixture
def offline_page(browser):
    """A page that reaches nothing but files, as a student or instructor opens the page from disk."""
    context = offline_context(browser)
    yield context.new_page()
    context.close()


def audit(page, name):
    """axe's violations on `page`, saved as tests/browser-artifacts/axe-NAME.json; the page's own
    policy is still in force and no script element was added to it."""
    violations = axe_violations(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(violations, indent=1))
    assert page.evaluate("document.scripts.length") == 0
    expect(page.locator('meta[http-equiv="Content-Security-Policy"]')).to_have_count(1)
    return violations


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_feedback_page_with_failures_has_no_serious_accessibility_violation(offline_page, course, assignment):
    page = offline_page
    page.goto((course / "feedback" / STUDENT / assignment / f"{assignment}.html").as_uri(), timeout=LOAD)
    expect(page.locator("#toc li.lost").first).to_be_visible()  # a page that shows what went wrong
    violations = audit(page, f"feedback-{assignment}")
    assert not severe(violations), "\n" + describe_violations(severe(violations))


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_grade_report_has_no_serious_accessibility_violation(offline_page, course, assignment):
    page = offline_page
    page.goto((course / "reports" / assignment / "index.html").as_uri(), timeout=LOAD)
    expect(page.locator("img")).to_have_count(2)
    violations = audit(page, f"report-{assignment}")
    assert not severe(violations), "\n" + describe_violations(severe(violations))
