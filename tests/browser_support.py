"""Real-browser support: the pinned JupyterLab on a temporary course, driven by headless Chromium.

`LabServer` starts `.venv/bin/jupyter lab` (with nbgrader's server and lab extensions) on
127.0.0.1 with a random port and a token, in temporary HOME and Jupyter folders so that no
developer setting leaks in. `Notebook` opens one notebook in it through Playwright and does what a
student does: Run All, read the outputs, click Validate. `axe_violations` audits a page with
axe-core (tests/package.json, installed by make into tests/node_modules).

Run as a script, it remakes the README's picture of the released notebook:

    .venv/bin/python tests/browser_support.py docs/student-notebook.png
"""

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = REPO / "tests" / "browser-artifacts"
AXE = REPO / "tests" / "node_modules" / "axe-core" / "axe.min.js"
SERVER_CONFIG = REPO / "jupyter_server_config.py"
VIEWPORT = {"width": 1280, "height": 800}

# JupyterLab user settings for the test server. Since Lab 4.2 a notebook only keeps the cells in
# view in the DOM; "none" renders every cell. No news or update checks: there is no network.
LAB_SETTINGS = {
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
}

# Timeouts in milliseconds, for Playwright.
LOAD = 60_000  # Lab's page, a notebook, its kernel
RUN = 120_000  # Run All on a whole notebook
VALIDATE = 120_000  # nbgrader runs the whole notebook on the server


def missing_chromium_message():
    return (
        f"{CHROMIUM} is missing: the browser tests drive Debian's Chromium. "
        "Run `make test`, which installs it (apt-get install chromium)."
    )


def missing_axe_message():
    return (
        f"{AXE} is missing: the accessibility audits inject axe-core into the pages. "
        "Run `make test`, which installs it (npm ci in tests/, pinned by tests/package-lock.json)."
    )


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _terminate_with_parent():
    """In the child, before exec: get SIGTERM if the test process dies without cleaning up."""
    if sys.platform.startswith("linux"):
        import ctypes

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class LabServer:
    """`jupyter lab` serving `root`, with its own HOME, Jupyter folders and Lab settings."""

    def __init__(self, root, scratch=None):
        self.root = Path(root)
        self.scratch = Path(scratch or tempfile.mkdtemp(prefix="lab-server-"))
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.scratch / "jupyter-lab.log"
        self.process = None

    def environment(self):
        folders = {
            name: self.scratch / name
            for name in ["home", "config", "data", "runtime", "settings", "workspaces", "matplotlib"]
        }
        for folder in folders.values():
            folder.mkdir(parents=True, exist_ok=True)
        for plugin, values in LAB_SETTINGS.items():
            path = folders["settings"] / f"{plugin}.jupyterlab-settings"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("JUPYTER", "JPY_", "IPYTHON", "MPL")) and key != "PYTHONPATH"
        }
        env.update(
            HOME=str(folders["home"]),
            JUPYTER_CONFIG_DIR=str(folders["config"]),
            JUPYTER_DATA_DIR=str(folders["data"]),
            JUPYTER_RUNTIME_DIR=str(folders["runtime"]),
            JUPYTERLAB_SETTINGS_DIR=str(folders["settings"]),
            JUPYTERLAB_WORKSPACES_DIR=str(folders["workspaces"]),
            MPLCONFIGDIR=str(folders["matplotlib"]),
            # The kernelspec runs `python`: the venv's, like `make lab`.
            PATH=str(BIN) + os.pathsep + os.environ.get("PATH", ""),
            PYTHONUNBUFFERED="1",
        )
        # The venv's own config (.venv/etc/jupyter: nbgrader's server extensions) is on Jupyter's
        # config path whatever JUPYTER_CONFIG_DIR says, as is .venv/share/jupyter (lab extensions).
        return env, folders

    def start(self, timeout=90):
        env, folders = self.environment()
        # matplotlib builds its font cache on first use and says so on stderr, which would show
        # in the notebooks as an error-coloured output: build it now, like the Makefile does.
        subprocess.run(
            [sys.executable, "-c", "import matplotlib.pyplot"], env=env, check=True, capture_output=True, timeout=300
        )
        # The course's server configuration, as `make lab` loads it: Formgrader's Content-Security-Policy.
        command = [
            str(BIN / "jupyter"),
            "lab",
            "--no-browser",
            "--allow-root",
            f"--config={SERVER_CONFIG}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root}",
            f"--LabApp.user_settings_dir={folders['settings']}",
            f"--LabApp.workspaces_dir={folders['workspaces']}",
        ]
        self.log = open(self.log_path, "w")
        # nbgrader's Validate reads nbgrader_config.py from the server's working folder.
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_terminate_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self.process.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "/api/status")
                return self
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyter lab did not answer within {timeout}s:\n{self.log_tail()}")

    def log_tail(self, lines=40):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def api(self, method, path, timeout=10):
        request = urllib.request.Request(
            self.base + path, method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, path, workspace):
        """The URL that opens `path` (relative to the root) in a workspace of its own."""
        return f"{self.base}/lab/workspaces/{workspace}/tree/{path}?token={self.token}"

    def shutdown_kernels(self):
        for kernel in self.api("GET", "/api/kernels"):
            try:
                self.api("DELETE", f"/api/kernels/{kernel['id']}")
            except urllib.error.HTTPError:
                pass

    def stop(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            # SIGTERM: the server shuts its kernels down, then exits. It leads its own process group.
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)
            except ProcessLookupError:
                pass
        self.log.close()
        self.process = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


def chromium_session(need_axe=False):
    """Debian's headless Chromium under Playwright, for a test module's `browser` fixture (yield from it).

    A missing part fails the tests with what to run, rather than skipping them.
    """
    import pytest

    if not CHROMIUM.exists():
        pytest.fail(missing_chromium_message(), pytrace=False)
    if need_axe and not AXE.exists():
        pytest.fail(missing_axe_message(), pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "Playwright for Python is missing: run `make test`, which installs requirements.txt.", pytrace=False
        )
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


def offline_context(browser):
    """A browser context that reaches nothing but files, as a page opened from disk; close it after use."""
    context = browser.new_context(viewport=VIEWPORT, offline=True)
    context.route(re.compile(r"^(?!file:|data:)"), lambda route: route.abort())
    return context


class Notebook:
    """One notebook opened in JupyterLab in a Playwright page, seen as a student sees it."""

    def __init__(self, page, server, path, workspace):
        self.page, self.server, self.path, self.workspace = page, server, path, workspace
        self.panel = page.locator(".jp-NotebookPanel:visible")
        self.cells = self.panel.locator(".jp-Notebook .jp-Cell")
        self.code_cells = self.panel.locator(".jp-Notebook .jp-CodeCell")

    def open(self):
        self.page.goto(self.server.lab_url(self.path, self.workspace), timeout=LOAD)
        self.panel.wait_for(timeout=LOAD)
        self.wait_for_kernel_idle(LOAD)
        return self

    def wait_for_kernel_idle(self, timeout):
        """The notebook's kernel is started, connected and idle.

        The toolbar's indicator says idle before any kernel exists, so the status bar's
        "Python 3 (ipykernel) | Idle" must say so too.
        """
        self.page.wait_for_function(
            """() => {
                const indicator = document.querySelector(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook-ExecutionIndicator');
                const status = [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                    .some(item => /\\(ipykernel\\) \\| Idle$/.test(item.textContent.trim()));
                return indicator && indicator.dataset.status === 'idle' && status; }""",
            timeout=timeout,
        )

    def cell(self, index):
        return self.cells.nth(index)

    def run_all(self):
        """Run > Run All Cells, from the menu bar."""
        self.panel.locator(".jp-Notebook").click(position={"x": 5, "y": 5})
        self.page.locator(".lm-MenuBar").get_by_role("menuitem", name="Run", exact=True).click()
        self.page.locator(".lm-Menu").get_by_role("menuitem", name="Run All Cells", exact=True).click()

    def prompts(self):
        return self.code_cells.locator(".jp-InputPrompt").all_inner_texts()

    def wait_until_all_executed(self, timeout=RUN):
        """Every code cell has an execution count and the kernel is idle."""
        self.page.wait_for_function(
            """() => { const prompts = [...document.querySelectorAll(
                           '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')];
                       return prompts.length > 0 && prompts.every(p => /\\[\\d+\\]/.test(p.textContent)); }""",
            timeout=timeout,
        )
        self.wait_for_kernel_idle(timeout)

    def wait_until_run_stopped(self, timeout=RUN):
        """No cell is queued or running any more and the kernel is idle (Run All stopped)."""
        self.page.wait_for_function(
            """() => ![...document.querySelectorAll(
                           '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .jp-InputPrompt')]
                       .some(p => p.textContent.includes('*'))""",
            timeout=timeout,
        )
        self.wait_for_kernel_idle(timeout)

    def error_outputs(self, within=None):
        """Outputs rendered as errors or stderr (Lab shows both with the stderr MIME type)."""
        return (within or self.panel).locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')

    def images(self):
        return self.panel.locator(".jp-OutputArea-output img")

    def show_exercise_from_table_of_contents(self, heading):
        """Open the table of contents beside the notebook and click the heading that starts so."""
        self.page.locator('.jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id="table-of-contents"]').click()
        entry = self.page.get_by_role("treeitem", name=re.compile("^" + re.escape(heading)))
        entry.click()
        self.page.wait_for_function(
            """heading => { const cell = document.querySelector(
                    '.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell.jp-mod-active');
                const title = cell && cell.querySelector('.jp-RenderedMarkdown :is(h1, h2, h3, h4, h5, h6)');
                return title && title.textContent.trim().startsWith(heading)
                       && Math.abs(cell.getBoundingClientRect().top
                                   - cell.closest('.jp-WindowedPanel-outer').getBoundingClientRect().top) < 30; }""",
            arg=heading,
            timeout=LOAD,
        )

    def validate(self, timeout=VALIDATE):
        """Click nbgrader's Validate in the toolbar; return the results dialog once it shows."""
        self.panel.locator(".validate-button").click()
        dialog = self.page.locator(".jp-Dialog", has_text="Validation Results")
        dialog.wait_for(timeout=timeout)
        return dialog


# ---- accessibility: axe-core in the page ----

SEVERE = ("serious", "critical")  # axe's two highest impacts, which the audited pages must not have


def axe_violations(page, context=None, within=None):
    """Run axe-core's default rules on `page` (or on the part `context` selects); return its violations.

    Each violation is a dict: id (axe's rule), impact (minor, moderate, serious or critical), help
    (what the rule asks for) and nodes, one per offending element, each with its target (a CSS
    selector; " >>> " steps into a shadow root), the start of its html, and, when `within` (a CSS
    selector) is given, whether the element is inside an element that `within` matches.

    axe leaves the contrast of very short text (a single digit, say) for a person to review, with
    the ratio it measured: such a text whose measured ratio is under the required one counts here
    as a color-contrast violation.

    The script goes in through Playwright's `evaluate` (the DevTools protocol), which the page's
    Content-Security-Policy does not govern: the feedback page and the grade report, which refuse
    every script of their own (tests/test_inert.py), are audited under their policy unchanged, and
    no <script> element is added to them. iframes are not audited (axe would wait for an answer
    from a copy of itself in each frame).
    """
    if not page.evaluate("typeof window.axe === 'object' && typeof window.axe.run === 'function'"):
        page.evaluate(AXE.read_text(encoding="utf-8"))
    return page.evaluate(
        """async ([context, options, within]) => {
            const results = await axe.run(context || document, options);
            const violations = results.violations;
            const tooFaint = node => node.any.some(check => check.data && check.data.contrastRatio
                && check.data.contrastRatio < parseFloat(check.data.expectedContrastRatio));
            for (const review of results.incomplete.filter(r => r.id === 'color-contrast')) {
                const nodes = review.nodes.filter(tooFaint);
                if (!nodes.length) continue;
                let contrast = violations.find(v => v.id === 'color-contrast');
                if (!contrast) violations.push(contrast = {...review, impact: 'serious', nodes: []});
                contrast.nodes.push(...nodes);
            }
            return violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => ({
                    target: n.target.map(t => Array.isArray(t) ? t.join(' >>> ') : t).join(' | '),
                    html: n.html.slice(0, 200),
                    ...(within ? {within: Boolean(n.element && n.element.closest(within))} : {}),
                })),
            }));
        }""",
        [
            context,
            {"resultTypes": ["violations", "incomplete"], "iframes": False, "elementRef": bool(within)},
            within,
        ],
    )


def severe(violations):
    """The violations whose impact is serious or critical."""
    return [violation for violation in violations if violation["impact"] in SEVERE]


def describe_violations(violations, limit=5):
    """The violations as readable lines: rule, impact, what it asks for, and the first offending elements."""
    lines = []
    for violation in violations:
        lines.append(f"{violation['id']} ({violation['impact']}): {violation['help']}")
        nodes = violation["nodes"]
        lines += [f"    {node['target']}: {node['html']}" for node in nodes[:limit]]
        if len(nodes) > limit:
            lines.append(f"    and {len(nodes) - limit} more")
    return "\n".join(lines)


def optimize_png(path, colors=256):
    """Rewrite a screenshot as a palette PNG: a fraction of the size, no visible change for a UI."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(path, optimize=True)


def make_lab_course(root):
    """A temporary course at `root`, as `make_course` makes it (tooling included), for a Lab server."""
    from conftest import make_course

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    make_course(root)
    return root


def widen_left_panel(page, pixels):
    """Drag the handle between the left panel and the main area `pixels` to the right."""
    handle = page.locator("#jp-main-split-panel > .lm-SplitPanel-handle:visible").first
    box = handle.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + pixels, y, steps=5)
    page.mouse.up()
    page.wait_for_function(
        "x => document.querySelector('#jp-left-stack').getBoundingClientRect().right >= x - 5",
        arg=x + pixels,
        timeout=LOAD,
    )


def student_screenshot(target, assignment="logistic_regression"):
    """The released notebook as a student opens it: table of contents, an exercise, Validate."""
    from playwright.sync_api import sync_playwright

    target = Path(target).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="student-screenshot-") as scratch:
        root = make_lab_course(Path(scratch) / "course")
        with LabServer(root, Path(scratch) / "server") as server, sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                page = browser.new_page(viewport=VIEWPORT)
                notebook = Notebook(page, server, f"release/{assignment}/{assignment}.ipynb", "student").open()
                notebook.show_exercise_from_table_of_contents("Exercise 2")
                widen_left_panel(page, 70)
                page.screenshot(path=str(target))
            finally:
                browser.close()
    optimize_png(target)
    return target


if __name__ == "__main__":
    if not CHROMIUM.exists():
        sys.exit(missing_chromium_message())
    print(student_screenshot(sys.argv[1] if len(sys.argv) > 1 else REPO / "docs" / "student-notebook.png"))
