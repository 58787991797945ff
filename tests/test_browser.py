"""Real-browser tests: each assignment in the pinned JupyterLab, driven as a student drives it.

One `jupyter lab` (with nbgrader's extensions) serves a temporary course for the whole module;
headless Debian Chromium opens notebooks in it through Playwright. For each assignment:

1. the solved source notebook runs from Run > Run All Cells without an error and draws its figures;
2. Run All on the blank release stops at its first answer with NotImplementedError (in the answer
   cell, or in the test cell below it when the answer is a function), and a wrong answer makes its
   test cell fail with a readable `AssertionError: <message>`, raised by the short visible check
   that the student sees whole in the cell; nbgrader's Validate button, pressed on the blank release
   once Run All has stopped, lists every failing test cell;
3. Validate says "Success!" on the solved release.

Accessibility: in 2, once Run All has stopped in the blank release of logistic_regression (its
Markdown, its first outputs and the NotImplementedError shown), axe-core finds no violation in the
notebook's own content as Lab renders it, and no serious or critical one in Lab itself that
docs/accessibility.md does not list as JupyterLab's. Lab is the same for every assignment, and
test_accessibility.py audits every assignment's text in its feedback page.

Every test leaves a screenshot in tests/browser-artifacts/ (git-ignored) and, when it fails, prints
the tail of Lab's log. With COURSE_BROWSER_TRACE=1 a failing test also leaves a Playwright trace there
(`playwright show-trace <file>`, on a machine with a display).
"""

import json
import os
import re

import nbformat
import pytest

from course import notebooks

from browser_support import (
    ARTIFACTS,
    AXE,
    LOAD,
    RUN,
    VIEWPORT,
    LabServer,
    Notebook,
    axe_violations,
    chromium_session,
    describe_violations,
    make_lab_course,
    missing_axe_message,
    severe,
)
from catalogue import CATALOGUES
from conftest import ASSIGNMENTS, REPO, VISIBLE_LINES, reference_answers, release_notebook

pytestmark = [pytest.mark.slow, pytest.mark.browser]

try:
    from playwright.sync_api import expect
except ImportError:  # reported by the `browser` fixture, so that the other test modules still run
    expect = None
else:
    expect.set_options(timeout=LOAD)

# The cells that draw a figure, by grade_id.
FIGURES = {
    "logistic_regression": ["sigmoid_plot", "boundary_plot"],
    "logistic_regression_from_scratch": ["loss_plot"],
    "logistic_regression_evaluation": ["roc_plot"],
}
# A realistic mistake from the catalogue that the visible check catches: its test cell must fail
# with its message in the release, where the hidden tests are not.
WRONG_VARIANT = {assignment: "sigmoid_sign_error" for assignment in ASSIGNMENTS}
WRONG_VARIANT["logistic_regression_evaluation"] = "confusion_matrix_transposed"
SUCCESS = "Success! Your notebook passes all the tests."  # nbgrader's lab extension, validate dialog
# The release audited with axe-core in JupyterLab (in test 2, once Run All has stopped).
AUDITED_IN_LAB = "logistic_regression"
# The serious and critical rules axe-core breaks in the pinned JupyterLab itself, with a released
# notebook open, and where; docs/accessibility.md says whose each one is and links upstream's issues.
# A rule not listed here fails the test, which names the elements.
JUPYTERLAB_UPSTREAM = {
    "aria-allowed-attr": "aria-pressed on Lab's toolbar buttons (<jp-button>), nbgrader's Validate among them",
    "aria-input-field-name": "Lab's CodeMirror cell editors (role=textbox) have no accessible name",
    "aria-required-children": "Lab's notebook viewport has role=feed but its cells are not articles",
    "button-name": "Lab's collapse buttons beside Markdown headings have no text",
}
# The notebook's own content as Lab renders it: its Markdown and its outputs.
NOTEBOOK_CONTENT = ".jp-Notebook .jp-RenderedMarkdown, .jp-Notebook .jp-OutputArea-output"


# ---- fixtures: one server and one browser for the module, a traced page for each test ----


@pytest.fixture(scope="module")
def lab_course(tmp_path_factory):
    return make_lab_course(tmp_path_factory.mktemp("lab-course"))


@pytest.fixture(scope="module")
def lab(lab_course, tmp_path_factory):
    server = LabServer(lab_course, tmp_path_factory.mktemp("lab-server"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser():
    yield from chromium_session()


# Playwright's trace (a DOM snapshot and a screenshot at every step) costs about a third of these tests'
# CPU, so it is recorded only when asked for: COURSE_BROWSER_TRACE=1 keeps a failing test's trace.
TRACE = os.environ.get("COURSE_BROWSER_TRACE") == "1"


@pytest.fixture
def page(request, browser, lab):
    """A fresh browser context; a screenshot always, the Lab log and (with TRACE) the trace on failure."""
    name = re.sub(r"[^\w.-]+", "_", request.node.name).strip("_")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    trace = ARTIFACTS / f"{name}-trace.zip"
    trace.unlink(missing_ok=True)
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(RUN)
    if TRACE:
        context.tracing.start(title=name, screenshots=True, snapshots=True)
    page = context.new_page()
    page.workspace = name  # a Lab workspace per test: no notebook reopens from an earlier test
    failed_before = request.session.testsfailed
    try:
        yield page
    finally:
        try:
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
        finally:
            failed = request.session.testsfailed > failed_before
            if TRACE:
                context.tracing.stop(path=str(trace) if failed else None)
            if failed:
                print(
                    f"Playwright trace: {trace if TRACE else 'rerun with COURSE_BROWSER_TRACE=1'}\n"
                    f"--- jupyter lab log (tail) ---\n{lab.log_tail()}"
                )
            context.close()
            lab.shutdown_kernels()


# ---- helpers ----


def open_notebook(page, lab, relative_path, notebook, suffix=""):
    """Write `notebook` at `relative_path` in the served course and open it in Lab."""
    path = lab.root / relative_path
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, str(path))
    opened = Notebook(page, lab, relative_path, page.workspace + suffix).open()
    # Every cell is in the DOM: the server's windowingMode "none" is in force.
    expect(opened.cells).to_have_count(len(notebook.cells))
    return opened


def without_outputs(notebook):
    notebook = nbformat.from_dict(notebook)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return notebook


def index_of(notebook, grade_id):
    return next(i for i, cell in enumerate(notebook.cells) if notebooks.grade_id(cell) == grade_id)


def graded_cells(notebook):
    """The cells nbgrader scores: test cells, and written answers (0 points while unchanged)."""
    return [cell for cell in notebook.cells if cell.metadata.get("nbgrader", {}).get("grade")]


def first_failing_cell(release):
    """Where Run All stops on the blank release: the first answer cell, or, when that answer only
    defines a function (`raise NotImplementedError()` in its body), the test cell that calls it."""
    first = next(i for i, cell in enumerate(release.cells) if notebooks.is_answer_cell(cell))
    if re.search(r"^raise NotImplementedError", release.cells[first].source, re.M):
        return first
    return next(i for i, cell in enumerate(release.cells) if i > first and cell.cell_type == "code")


def wrong_variant(assignment):
    variants = {variant.name: variant for variant in CATALOGUES[assignment]}
    return variants[WRONG_VARIANT[assignment]]


def error_texts(notebook_page):
    return notebook_page.error_outputs().all_inner_texts()


def assert_only_upstream_accessibility_violations(page, name):
    """axe-core on Lab with a notebook open: nothing in the notebook's content, nothing serious or
    critical in Lab but JUPYTERLAB_UPSTREAM. Every violation goes to tests/browser-artifacts/axe-NAME.json."""
    if not AXE.exists():
        pytest.fail(missing_axe_message(), pytrace=False)
    violations = axe_violations(page, within=NOTEBOOK_CONTENT)
    (ARTIFACTS / f"axe-{name}.json").write_text(json.dumps(violations, indent=1))
    in_content = [{**v, "nodes": [node for node in v["nodes"] if node["within"]]} for v in violations]
    in_content = [v for v in in_content if v["nodes"]]
    assert not in_content, "accessibility, in the notebook's own content:\n" + describe_violations(in_content)
    unlisted = [v for v in severe(violations) if v["id"] not in JUPYTERLAB_UPSTREAM]
    assert not unlisted, (
        "accessibility: serious or critical, and not listed as JupyterLab's in docs/accessibility.md and "
        "JUPYTERLAB_UPSTREAM (find whose it is, then fix it or list it):\n" + describe_violations(unlisted)
    )


def shown_source(cell):
    """The lines of a code cell's source as its editor shows them."""
    return [line.replace("\u200b", "").rstrip("\n") for line in cell.locator(".cm-line").all_inner_texts()]


# ---- 1. the solved notebook runs ----


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solved_notebook_runs_and_draws_its_figures(page, lab, assignment):
    source = notebooks.read(REPO / "source" / assignment / f"{assignment}.ipynb")
    # Outputs cleared, so that every output and figure seen comes from this run.
    notebook = open_notebook(page, lab, f"source/{assignment}/browser_solved.ipynb", without_outputs(source))
    expect(notebook.images()).to_have_count(0)

    notebook.run_all()
    notebook.wait_until_all_executed()

    code_cells = sum(cell.cell_type == "code" for cell in source.cells)
    assert notebook.prompts() == [f"[{n}]:" for n in range(1, code_cells + 1)]
    assert error_texts(notebook) == []
    figures = FIGURES[assignment]
    expect(notebook.images()).to_have_count(len(figures))
    for grade_id in figures:
        image = notebook.cell(index_of(source, grade_id)).locator(".jp-OutputArea-output img")
        expect(image).to_have_count(1)
        image.scroll_into_view_if_needed()
        page.wait_for_function("image => image.complete && image.naturalWidth > 100", arg=image.element_handle())


# ---- 2. the blank release fails clearly ----


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_blank_release_stops_at_the_first_answer_fails_validation_and_a_wrong_answer_fails_readably(
    page, lab, assignment
):
    release = release_notebook(lab.root, assignment)
    notebook = open_notebook(page, lab, f"release/{assignment}/browser_blank.ipynb", release, "-blank")

    notebook.run_all()
    stop = first_failing_cell(release)
    expect(notebook.cell(stop).locator(".jp-OutputArea-output")).to_contain_text("NotImplementedError", timeout=RUN)
    notebook.wait_until_run_stopped()
    # Run All stops at the first error: the cells above ran cleanly, that is the only error.
    errors = error_texts(notebook)
    assert len(errors) == 1 and re.search(r"^NotImplementedError", errors[0], re.M), errors
    expect(notebook.error_outputs(notebook.cell(stop))).to_have_count(1)
    executed = [bool(re.fullmatch(r"\[\d+\]:", prompt)) for prompt in notebook.prompts()]
    ran = sum(cell.cell_type == "code" for cell in release.cells[: stop + 1])
    assert all(executed[:ran]) and not any(executed[ran:]), executed
    notebook.cell(stop).scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / f"{page.workspace}-blank.png"))
    if assignment == AUDITED_IN_LAB:
        assert_only_upstream_accessibility_violations(page, f"jupyterlab-{assignment}")
    # Validate, on the same blank notebook, lists every scored cell as failed.
    dialog = notebook.validate()
    message = dialog.locator("#validation-message")
    expect(message).to_have_class(re.compile(r"\bvalidation-failed\b"))
    # One entry per failed cell: "The following cell failed:", its source, then its error. On the
    # blank release every scored cell fails: each test cell, and each unanswered written answer.
    graded = graded_cells(release)
    expect(message.locator("p", has_text="The following cell failed:")).to_have_count(len(graded))
    blocks = message.locator(":scope > .jp-RenderedText > pre").all_inner_texts()
    assert [source.strip() for source in blocks[0::2]] == [cell.source.strip() for cell in graded]
    for cell, error in zip(graded, blocks[1::2], strict=False):
        if cell.cell_type == "code":
            assert re.search(r"^\w+(Error|Exception): ", error, re.M), error
    dialog.get_by_role("button", name="Ok").click()
    expect(dialog).to_have_count(0)

    # The reference solution with one realistic mistake: its test cell says what is wrong.
    variant = wrong_variant(assignment)
    solution = notebooks.fill(release, {**reference_answers(assignment), **variant.answers})
    notebook = open_notebook(page, lab, f"release/{assignment}/browser_one_wrong.ipynb", solution, "-wrong")
    notebook.run_all()
    failing = min(index_of(solution, grade_id) for grade_id in variant.expected)
    output = notebook.cell(failing).locator(".jp-OutputArea-output")
    expect(output).to_contain_text("AssertionError", timeout=RUN)
    notebook.wait_until_run_stopped()
    errors = error_texts(notebook)
    assert len(errors) == 1, errors
    last_line = errors[0].strip().splitlines()[-1]
    assert last_line.startswith("AssertionError: ") and variant.message in last_line, errors[0]
    # Raised by the test's own assert with a message, not by an error inside the test code.
    assert "During handling of the above exception" not in errors[0], errors[0]
    expect(notebook.error_outputs(notebook.cell(failing))).to_have_count(1)
    # What the student sees of the test cell is the release's short check, whole, and the message is its own.
    cell = notebook.cell(failing)
    check = shown_source(cell)
    assert check == solution.cells[failing].source.splitlines() and len(check) <= VISIBLE_LINES, check
    assert last_line.removeprefix("AssertionError: ") in "\n".join(check), (last_line, check)
    scroller = cell.locator(".cm-scroller")
    assert scroller.evaluate("element => element.scrollWidth <= element.clientWidth"), "the check is cut off"
    output.scroll_into_view_if_needed()
    cell.screenshot(path=str(ARTIFACTS / f"{page.workspace}-wrong.png"))


# ---- 3. Validate ----


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_validate_button_passes_the_solved_release(page, lab, assignment):
    release = release_notebook(lab.root, assignment)

    solved = notebooks.fill(release, reference_answers(assignment))
    notebook = open_notebook(page, lab, f"release/{assignment}/browser_validate_solved.ipynb", solved, "-solved")
    dialog = notebook.validate()
    expect(dialog.locator("#validation-message")).to_have_class(re.compile(r"\bvalidation-success\b"))
    expect(dialog.locator("#validation-message")).to_have_text(SUCCESS)
    page.screenshot(path=str(ARTIFACTS / f"{page.workspace}-solved.png"))
    dialog.get_by_role("button", name="Ok").click()
    expect(dialog).to_have_count(0)
