"""Student content stays inert for every reader: Formgrader, the feedback page, the grade report.

One course for the module: mallory's submission (tests/inert.py) carries script payloads in her
written answer, her outputs, an error and a file beside her notebook. It is graded with
`python -m course grade`, then `course feedback` and `course report` write their pages. One
`jupyter lab` with Formgrader (and the course's jupyter_server_config.py) serves it; headless
Chromium opens every page that shows her work. Each payload, if it ran, would set a flag in the
page and write pwned-NAME.txt into the server's root: the tests check both, and first prove
that the check sees a payload that does run. Each defence is also attacked on its own: the
sanitized page without its policy, and the policy against script injected into the page.
"""

import base64
import re
import subprocess
import sys
import time
from urllib.parse import quote

import pytest
from nbgrader.api import Gradebook

from course import notebooks
from course.plugins.safehtml import render_markdown, sanitize

from browser_support import (
    ARTIFACTS,
    LOAD,
    VIEWPORT,
    LabServer,
    chromium_session,
    make_lab_course,
    offline_context,
)
from inert import ASSIGNMENT, FILE_PREFIX, FLAG, STUDENT, WRITTEN_TEXT, act, payload_submission

pytestmark = [pytest.mark.slow, pytest.mark.sandbox, pytest.mark.browser]

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the `browser` fixture
    expect = None

FILE_PAYLOAD = "notes.html"  # handed in beside the notebook, served by Formgrader from her folder


# ---- fixtures: one graded course, one server, one browser ----


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    root = make_lab_course(tmp_path_factory.mktemp("inert-course"))
    with open(root / "nbgrader_config.py", "a") as config:  # her outputs on her feedback page too: harder to keep inert
        config.write("\nc.ShowFailuresNotTests.show_outputs = True\n")
    notebook = payload_submission(root)
    (notebook.parent / FILE_PAYLOAD).write_text(f"<p>notes</p><script>{act('file_html')}</script>")
    for command in (
        ["grade", ASSIGNMENT, "--jobs", "1"],
        ["feedback", ASSIGNMENT, "--allow-pending"],
        ["report", ASSIGNMENT],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "course", *command], cwd=root, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stdout + done.stderr
    assert_payloads_reached_the_autograded_notebook(root)
    return root


def assert_payloads_reached_the_autograded_notebook(root):
    """Grading kept every payload: each rich output kind, the error with an HTML name, her file."""
    folder = root / "autograded" / STUDENT / ASSIGNMENT
    outputs = [
        output for cell in notebooks.read(folder / f"{ASSIGNMENT}.ipynb").cells for output in cell.get("outputs", [])
    ]
    kinds = {kind for output in outputs for kind in output.get("data", {})}
    assert {"text/html", "text/markdown", "image/svg+xml", "application/javascript"} <= kinds, kinds
    assert any(output.get("ename", "").startswith("<img") for output in outputs)
    assert (folder / FILE_PAYLOAD).is_file()


@pytest.fixture(scope="module")
def server(course, tmp_path_factory):
    lab = LabServer(course, tmp_path_factory.mktemp("inert-server"))
    try:
        yield lab.start()
    finally:
        lab.stop()


@pytest.fixture(scope="module")
def browser():
    yield from chromium_session(need_axe=False)


@pytest.fixture
def offline_page(browser):
    """A page that reaches nothing but files; `page.requests` lists every URL it asked for."""
    context = offline_context(browser)
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    yield page
    context.close()


# ---- helpers ----


def flags(page):
    return page.evaluate(f"window.{FLAG} || []")


def written_files(root):
    return sorted(path.name for path in root.glob(FILE_PREFIX + "*"))


def wait_for_file(path, timeout=30):
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was never written"
        time.sleep(0.1)


def assert_inert(page, root=None):
    """No payload ran: no flag in the page, and (with a server) no file written through its API."""
    page.wait_for_load_state("networkidle", timeout=LOAD)
    assert flags(page) == []
    if root is not None:
        assert written_files(root) == []


def prove_the_check_sees_a_payload(page, root=None):
    """The same payload code, run by the test itself, sets the flag (and writes its file)."""
    page.evaluate(act("control"))
    assert flags(page) == ["control"]
    if root is not None:
        wait_for_file(root / f"{FILE_PREFIX}control.txt")
        (root / f"{FILE_PREFIX}control.txt").unlink()
    page.evaluate(f"delete window.{FLAG}")


def inject_inline_script(page):
    """Script put into the page's DOM, as a sanitizer bypass would: the page's policy must refuse it."""
    page.evaluate(
        """([code, handler]) => {
        const script = document.createElement('script');
        script.textContent = code;
        document.body.append(script);
        const image = document.createElement('img');
        image.setAttribute('onerror', handler);
        image.src = 'x';
        document.body.append(image);
    }""",
        [act("injected_script"), act("injected_handler")],
    )


def assert_error_shown_as_text(page):
    """Her exception's HTML type name and message are readable text in the error output."""
    error = page.locator(".output_error").last
    expect(error).to_contain_text("<img src=x onerror=")
    expect(error).to_contain_text("<script>window.__pwned")


def screenshot(page, locator, name):
    """The viewport with `locator` in view, into tests/browser-artifacts/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    locator.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / name))


def figures(page):
    return page.locator('img[src^="data:image/png"]')


def assert_figures_drawn(page, count):
    expect(figures(page)).to_have_count(count)
    for image in figures(page).all():
        image.scroll_into_view_if_needed()
        page.wait_for_function("image => image.complete && image.naturalWidth > 100", arg=image.element_handle())


def assert_math_rendered(page):
    """Formulas are laid out as MathML: a display fraction is taller than a line of text."""
    fraction = page.locator('math[display="block"] mfrac').first
    expect(fraction).to_be_visible()
    box = fraction.bounding_box()
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 20")
    assert box["width"] > 5 and box["height"] > line, (box, line)


def instructor_page(browser, server):
    """A page logged in to the server as the instructor, through its login form (cookies, as Formgrader needs)."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{server.base}/login", timeout=LOAD)
    page.locator("#password_input").fill(server.token)
    page.locator("#password_input").press("Enter")
    page.wait_for_url(re.compile(r"/(lab|tree)"), timeout=LOAD)
    return context, page


def feedback_page(course):
    return course / "feedback" / STUDENT / ASSIGNMENT / f"{ASSIGNMENT}.html"


def submission_id(course):
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, STUDENT).id


# ---- instructor side: Formgrader ----


def test_formgrader_grading_page_runs_no_payload_and_grading_still_works(browser, server, course):
    context, page = instructor_page(browser, server)
    try:
        submission = submission_id(course)
        response = page.goto(f"{server.base}/formgrader/submissions/{submission}/", timeout=LOAD)
        policy = response.headers["content-security-policy"]
        scripts = next(part for part in policy.split(";") if part.strip().startswith("script-src"))
        assert "'unsafe-inline'" not in scripts and "'unsafe-eval'" not in scripts, policy
        assert_inert(page, course)

        # What the grader needs: her figures, her written text, the formula, the score box.
        assert_figures_drawn(page, 2)
        expect(page.get_by_text(WRITTEN_TEXT)).to_be_visible()
        assert_math_rendered(page)
        assert_error_shown_as_text(page)
        screenshot(page, page.get_by_text(WRITTEN_TEXT), "formgrader-written-answer.png")
        screenshot(page, figures(page).last, "formgrader-figure.png")

        # Formgrader's own scripts run under the policy: a typed score is saved.
        score = page.locator("input#reflection")
        score.scroll_into_view_if_needed()
        with page.expect_response(lambda r: "/formgrader/api/grade/" in r.url and r.request.method == "PUT") as saved:
            score.fill("2")
            score.press("Tab")
        assert saved.value.ok
        grades = server.api("GET", f"/formgrader/api/grades?submission_id={submission}")
        assert [grade["manual_score"] for grade in grades if grade["name"] == "reflection"] == [2]

        prove_the_check_sees_a_payload(page, course)
        inject_inline_script(page)
        assert_inert(page, course)
    finally:
        context.close()


def test_formgrader_serves_a_handed_in_html_file_sandboxed(browser, server, course):
    context, page = instructor_page(browser, server)
    try:
        url = f"{server.base}/formgrader/submissions/{submission_id(course)}/{FILE_PAYLOAD}"
        response = page.goto(url, timeout=LOAD)
        assert response.ok and "sandbox" in response.headers["content-security-policy"]
        expect(page.get_by_text("notes")).to_be_visible()
        assert_inert(page, course)
    finally:
        context.close()


def test_formgrader_other_views_work_and_refuse_script_reflected_from_the_url(browser, server, course):
    """A student's view lists her assignment; a crafted student id in the URL runs nothing.

    nbgrader writes that id unescaped into an inline script and into the page; the policy allows
    inline scripts that only assign string literals, so the crafted one is refused."""
    context, page = instructor_page(browser, server)
    try:
        page.goto(f"{server.base}/formgrader/manage_students/{STUDENT}", timeout=LOAD)
        expect(page.locator("#main-table")).to_contain_text(ASSIGNMENT)
        # Manage Submissions fills its table from the API (it once stayed at "Loading, please wait...").
        page.goto(f"{server.base}/formgrader/manage_submissions/{ASSIGNMENT}", timeout=LOAD)
        expect(page.locator("#main-table")).to_contain_text(STUDENT)
        expect(page.locator("#main-table")).not_to_contain_text("Loading, please wait")
        crafted = f"x\";window.{FLAG}=['reflected_script'];\"<img src=x onerror=\"window.{FLAG}=['reflected_img']\">"
        page.goto(f"{server.base}/formgrader/manage_students/{quote(crafted, safe='')}", timeout=LOAD)
        expect(page.locator(".breadcrumb img")).to_have_count(1)  # the markup is nbgrader's, unescaped
        assert_inert(page, course)
    finally:
        context.close()


# ---- student side: the feedback page, offline ----


def test_feedback_page_offline_runs_no_payload_and_renders_math(offline_page, course):
    page = offline_page
    page.goto(feedback_page(course).as_uri(), timeout=LOAD)
    assert_inert(page)
    assert_figures_drawn(page, 2)
    expect(page.get_by_text(WRITTEN_TEXT)).to_be_visible()
    assert_math_rendered(page)
    assert_error_shown_as_text(page)
    # Failure messages wrap: none needs sideways scrolling to be read (issue 19, item 9).
    widths = page.eval_on_selector_all(
        ".output_area pre", "pres => pres.map(p => [p.innerText.length, p.scrollWidth - p.clientWidth])"
    )
    assert max(length for length, _ in widths) > 200, "a long message, which would overflow unwrapped"
    assert all(overflow <= 1 for _, overflow in widths), widths
    # The summary names each exercise with its points and links to what went wrong.
    summary = page.locator("#toc li")
    expect(summary).to_have_count(11)
    expect(summary.first).to_have_text(re.compile(r"^Exercise 1: standardize the hours:\s+2 / 2 points$"))
    expect(summary.last.locator("a.exercise")).to_have_attribute("href", "#reflection")
    screenshot(page, summary.first, "feedback-summary.png")
    screenshot(page, page.get_by_text(WRITTEN_TEXT), "feedback-written-answer.png")
    screenshot(page, page.locator('math[display="block"]').first, "feedback-math.png")
    assert all(url.startswith(("file:", "data:")) for url in page.requests), page.requests

    prove_the_check_sees_a_payload(page)
    inject_inline_script(page)
    assert_inert(page)


def test_feedback_page_sanitized_alone_runs_no_payload(browser, course):
    """The sanitizer without the policy's help: the page's HTML with its CSP <meta> removed."""
    html = re.sub(
        r'<meta content="[^"]*" http-equiv="Content-Security-Policy"/>', "", feedback_page(course).read_text()
    )
    assert "Content-Security-Policy" not in html
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    page = context.new_page()
    try:
        page.set_content(html, timeout=LOAD)
        assert_inert(page)
        inject_inline_script(page)  # without a policy, injected script runs: the check sees it
        page.wait_for_function(f"(window.{FLAG} || []).length == 2")
    finally:
        context.close()


# ---- the grade report ----


def test_grade_report_runs_no_payload(offline_page, course):
    page = offline_page
    page.goto((course / "reports" / ASSIGNMENT / "index.html").as_uri(), timeout=LOAD)
    assert_inert(page)
    images = page.locator("img")
    expect(images).to_have_count(2)
    for image in images.all():
        page.wait_for_function("image => image.complete && image.naturalWidth > 100", arg=image.element_handle())
    expect(page.locator("#totals")).to_contain_text(STUDENT)
    prove_the_check_sees_a_payload(page)
    inject_inline_script(page)
    assert_inert(page)


# ---- the sanitizer: what it keeps ----


def test_sanitizer_keeps_what_a_grader_needs():
    png = "data:image/png;base64," + base64.b64encode(b"\x89PNG").decode()
    table = (
        '<table class="dataframe" border="1"><thead><tr style="text-align: right;"><th></th><th>hours</th>'
        "</tr></thead><tbody><tr><th>0</th><td>1.5</td></tr></tbody></table>"
    )
    assert sanitize(table) == table.replace(' border="1"', "").replace(' style="text-align: right;"', "")
    html = render_markdown(
        f"## Answer\n\nText with *emphasis*, `code` and $e^{{w}}$.\n\n![figure]({png})\n\n"
        "[docs](https://scikit-learn.org) and <script>x</script>"
    )
    for kept in [
        "<h2>Answer</h2>",
        "<em>emphasis</em>",
        "<code>code</code>",
        '<math display="inline">',
        f'<img src="{png}" alt="figure">',
        '<a href="https://scikit-learn.org">docs</a>',
        "&lt;script&gt;x&lt;/script&gt;",
    ]:
        assert kept in html, (kept, html)


def test_sanitizer_keeps_highlighting_but_no_class_that_borrows_the_page_styles():
    html = render_markdown(
        '```python\nx = 1\n```\n\n<div class="hidden">my real answer</div>'
        '<span class="label label-success">20 / 20 points</span><p class="sr-only">y</p>'
    )
    assert '<div class="highlight">' in html and '<span class="mi">1</span>' in html, html
    for borrowed in ["hidden", "label", "sr-only"]:
        assert borrowed not in html.replace(">my real answer<", ""), html
    assert "my real answer" in html and "20 / 20 points" in html, "the text stays, as plain text"


def test_formgrader_policy_takes_only_a_plain_host_from_the_host_header():
    from course.plugins.formgrader_policy import policy

    body = b"<html><head></head><body></body></html>"
    honest = policy("127.0.0.1:8888", "/", body, "/formgrader")
    assert "script-src 127.0.0.1:8888/formgrader/static/ " in honest
    forged = policy("x; script-src * 'unsafe-inline'", "/", body, "/formgrader")
    assert "*" not in forged and "unsafe-inline'" not in forged.split("script-src", 1)[1].split(";")[0], forged
    assert forged.count("script-src") == 1


def test_formgrader_policy_leaves_a_304_to_the_policy_the_browser_has():
    """A reload answered 304 reuses the cached page: a policy without its data-only scripts' hashes would break it."""
    from types import SimpleNamespace

    from tornado.httputil import HTTPHeaders

    from course.plugins.formgrader_policy import policy_transform, source_hash

    request = SimpleNamespace(path="/formgrader/manage_assignments", host="127.0.0.1:8888")
    transform = policy_transform("/")(request)
    page = b'<html><head><script>var base_url = "/";</script></head><body></body></html>'
    headers = HTTPHeaders()
    transform.transform_first_chunk(200, headers, page, True)
    assert source_hash(b'var base_url = "/";') in headers["Content-Security-Policy"]
    not_modified = HTTPHeaders()
    transform.transform_first_chunk(304, not_modified, b"", True)
    assert "Content-Security-Policy" not in not_modified
