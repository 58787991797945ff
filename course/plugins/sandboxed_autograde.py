"""Formgrader's autograde button grades in the sandbox, as `course grade` does: a Jupyter server extension.

Formgrader's button posts to /formgrader/api/submission/ASSIGNMENT/STUDENT/autograde, where
nbgrader would run the student's notebook in the server's own process, as the instructor, next
to the hidden tests and the gradebook. This extension answers that route first, with
`python -m course --root ROOT grade ASSIGNMENT --student STUDENT`: the same kernel, limits and
isolation as `course grade` (course/parallel.py, course/sandbox/). Formgrader shows its output.

jupyter_server_config.py (`make lab`) and the hub's instructor server (course/hub.py) enable it.
"""

import asyncio
import json
import sys

from nbgrader.server_extensions.formgrader.base import BaseApiHandler, check_notebook_dir, check_xsrf
from tornado import web
from tornado.routing import PathMatches, Rule

ROUTE = r"/formgrader/api/submission/([^/]+)/([^/]+)/autograde"


async def course_grade(root, assignment, student):
    """Run `course grade` on one student; return nbgrader's result dict (success, log, error).

    Names come from the URL: one that would read as an option (`--no-sandbox`) is refused unrun.
    """
    if assignment.startswith("-") or student.startswith("-"):
        return {"success": False, "log": "", "error": f"not an assignment and a student: {assignment!r}, {student!r}"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "course",
        "--root",
        root,
        "grade",
        assignment,
        f"--student={student}",
        "--jobs",
        "1",
        cwd=root,  # python -m course imports the course package of the course it grades
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output = (await process.communicate())[0].decode(errors="replace")
    result = {"success": process.returncode == 0, "log": output}
    if process.returncode:
        result["error"] = output.strip().splitlines()[-1] if output.strip() else f"exit status {process.returncode}"
    return result


class SandboxedAutogradeHandler(BaseApiHandler):
    @web.authenticated
    @check_xsrf
    @check_notebook_dir
    async def post(self, assignment, student):
        self.write(json.dumps(await course_grade(self.coursedir.root, assignment, student)))


def _jupyter_server_extension_points():
    return [{"module": "course.plugins.sandboxed_autograde"}]


def _load_jupyter_server_extension(serverapp):
    pattern = serverapp.base_url.rstrip("/") + ROUTE
    # Ahead of every other route, Formgrader's own included, whichever extension loads first.
    router = serverapp.web_app.default_router
    router.rules.insert(0, router.process_rule(Rule(PathMatches(pattern), SandboxedAutogradeHandler)))
    serverapp.log.info("Formgrader's autograde grades in the sandbox, with `course grade`")
