"""A Content-Security-Policy on Formgrader's routes: a Jupyter server extension.

Formgrader shows submissions in the instructor's own Jupyter server, where a script could drive
the server's API with the page's cookies. course/plugins/safehtml.py sanitizes what a submission shows;
this policy is the second wall. Every response under /formgrader gets it:

- scripts load only from Formgrader's static folder; inline code runs only if nbgrader's
  templates (or the course's, course/templates/course_formgrade) hold it verbatim (allowed by
  hash, event handlers included) or if it only assigns string literals in the page's <head>, as
  Formgrader's `var submission_id = "...";` blocks do (hashed per response);
- no plugins, frames, or <base>; forms post to the server only;
- files served from a submission's folder (/formgrader/submissions/ID/FILE) are also sandboxed,
  so an HTML file a student hands in cannot run script in the server's origin.

jupyter_server_config.py enables it (`make lab` loads that file).
"""

import base64
import hashlib
import re
from functools import lru_cache
from pathlib import Path

import nbgrader
from tornado.web import OutputTransform

# nbgrader's templates, and the course's own for Formgrader's grading page (its MathJax stub).
TEMPLATES = [
    Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates",
    Path(__file__).resolve().parents[1] / "templates" / "course_formgrade",
]
INLINE_SCRIPT = re.compile(rb"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script\s*>", re.S | re.I)
EVENT_HANDLER = re.compile(r'\son\w+="([^"]*)"')
DATA_ONLY = re.compile(rb'\s*(var\s+\w+\s*=\s*"[^"\\<\n]*";\s*)+')
JINJA = re.compile(rb"\{[{%#]")
SUBMISSION_FILE = re.compile(r"formgrader/submissions/[^/]+/.")


def source_hash(code):
    """The CSP source that allows exactly this inline code."""
    digest = hashlib.sha256(code if isinstance(code, bytes) else code.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


@lru_cache(maxsize=1)
def shipped_code():
    """Hashes of the inline scripts and event handlers that the templates hold verbatim."""
    hashes = set()
    for path in sorted(path for folder in TEMPLATES for path in folder.rglob("*")):
        if path.suffix in {".tpl", ".j2"}:
            text = path.read_bytes()
            hashes |= {source_hash(code) for code in INLINE_SCRIPT.findall(text) if not JINJA.search(code)}
            hashes |= {
                source_hash(code) for code in EVENT_HANDLER.findall(text.decode()) if not JINJA.search(code.encode())
            }
    return sorted(hashes)


HOST = re.compile(r"([A-Za-z0-9-]+\.)*[A-Za-z0-9-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?")


def policy(host, base_url, body, path):
    """The policy of one Formgrader response with this `body`, as served at `host` + `base_url`.

    Data-only scripts are allowed in the <head> alone, where Formgrader puts them: a submission
    shows in the <body>, so it cannot set Formgrader's variables (`base_url`, say) that way.
    """
    head = body.split(b"</head>", 1)[0]
    data_blocks = {source_hash(code) for code in INLINE_SCRIPT.findall(head) if DATA_ONLY.fullmatch(code)}
    # The Host header names the static folder; one that is not a plain host[:port] could add directives.
    static = [f"{host}{base_url}formgrader/static/"] if HOST.fullmatch(host) else []
    scripts = " ".join([*static, "'unsafe-hashes'", *shipped_code(), *sorted(data_blocks)])
    directives = [
        "default-src 'self'",
        f"script-src {scripts}",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "object-src 'none'",
        "frame-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'self'",
    ]
    if SUBMISSION_FILE.search(path):
        directives.append("sandbox")
    return "; ".join(directives)


def policy_transform(base_url):
    """A tornado output transform that sets `policy` on every response under base_url/formgrader."""
    prefix = base_url + "formgrader"

    class FormgraderPolicy(OutputTransform):
        def __init__(self, request):
            self.request = request

        def transform_first_chunk(self, status_code, headers, chunk, finishing):
            # A 304 has no body: the browser keeps the page it has and the policy it came with
            # (the same page, by its ETag), whose data-only scripts a policy made now would refuse.
            if self.request.path.startswith(prefix) and status_code != 304:
                # A response written in pieces gets no per-response hashes: its data-only scripts are
                # refused, which may break it but lets nothing run.
                body = chunk if finishing else b""
                headers["Content-Security-Policy"] = policy(self.request.host, base_url, body, self.request.path)
            return status_code, headers, chunk

    return FormgraderPolicy


def _jupyter_server_extension_points():
    return [{"module": "course.plugins.formgrader_policy"}]


def _load_jupyter_server_extension(serverapp):
    # First, so that the transform sees the body before any encoding.
    serverapp.web_app.transforms.insert(0, policy_transform(serverapp.base_url))
    serverapp.log.info("Formgrader's routes are served with the course's Content-Security-Policy")
