"""The suite passes wherever a maintainer clones: other users reach this Python through a private mount.

Tests that act as students run this virtual environment's Python as other
users. In a clone inside a 0700 folder (`mktemp -d`, or a Debian home) those
users cannot read it. The test puts this very environment behind a 0700
folder and checks that `course.samples.run_python` still runs it as a student.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from course.samples import run_python

STUDENT = (20041, 20041)
IMPORT = ["-c", "import nbgrader, os; print(os.getuid())"]

pytestmark = [pytest.mark.root, pytest.mark.skipif(os.geteuid() != 0, reason="acts as another user and mounts")]


PROBE = """\
import subprocess, sys
sys.executable, sys.prefix = {python!r}, {venv!r}  # as if this environment lay behind the 0700 folder
from course.samples import run_python
try:
    direct = subprocess.run([sys.executable, *{args!r}], user={uid}, group={gid}, capture_output=True).returncode
except PermissionError:
    direct = "refused"
staged = run_python({args!r}, user=({uid}, {gid}))
print("direct", direct)
print("staged", staged.returncode, staged.stdout.strip())
"""


def test_a_student_runs_this_python_from_behind_a_0700_folder(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o700)
    venv = locked / "venv"
    venv.mkdir()
    probe = tmp_path / "probe.py"
    probe.write_text(
        PROBE.format(
            python=str(venv / Path(sys.executable).relative_to(sys.prefix)),
            venv=str(venv),
            args=IMPORT,
            uid=STUDENT[0],
            gid=STUDENT[1],
        )
    )
    script = f"mount --bind {sys.prefix} {venv} && exec {sys.executable} {probe}"
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
    )
    lines = result.stdout.splitlines()
    assert "direct refused" in lines or "direct 1" in lines, (
        f"the 0700 folder should stop a plain run: {result.stdout} {result.stderr[-500:]}"
    )
    assert f"staged 0 {STUDENT[0]}" in lines, f"{result.stdout} {result.stderr[-1000:]}"


def test_without_a_user_it_is_this_python(tmp_path):
    result = run_python(IMPORT)
    assert result.returncode == 0 and result.stdout.strip() == str(os.getuid())
