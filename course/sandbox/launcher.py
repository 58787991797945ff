"""The kernelspec's program: it gets a kernel from the sandbox's server and stands in for it.

nbgrader starts it in the notebook's folder, as it would start a kernel; it
sends the server the connection file and the folder's files, forwards the
signals it gets, and exits with the kernel's exit status.
"""

import base64
import json
import os
import signal
import socket
import sys
from pathlib import Path

from .bwrap import SandboxError
from .protocol import receive, send

PASSED_ON = ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING")  # nbgrader tells kernels it is grading (as stock)


def folder_files(folder, max_bytes):
    """The files of a notebook's folder (at most `max_bytes` in all), base64-encoded, for the kernel's scratch copy.

    Notebooks stay out: while nbgrader grades, the one being graded holds the
    test cells it restored from the gradebook, hidden tests included.
    """
    files, total = {}, 0
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb":
            total += path.stat().st_size
            if total > max_bytes:
                raise SandboxError(f"the notebook's folder is larger than {max_bytes} bytes")
            files[str(path.relative_to(folder))] = base64.b64encode(path.read_bytes()).decode()
    return files


def launch(connection_file, max_folder_bytes):
    """The kernelspec's argv: get a kernel from the sandbox's server and stand in for it until it exits."""
    request = {
        "connection": json.loads(Path(connection_file).read_text()),
        "files": folder_files(os.getcwd(), max_folder_bytes),
        "environment": {name: os.environ[name] for name in PASSED_ON if name in os.environ},
    }
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(os.environ["COURSE_SANDBOX_SOCKET"])
    send(conn, request)
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _: send(conn, {"signal": number}))
    reply = receive(conn, bytearray())
    if reply is None:
        return 1
    if "error" in reply:
        print(f"the sandboxed kernel could not start:\n{reply['error']}", file=sys.stderr)
        return 1
    return reply["exit"]


def main():
    sys.exit(launch(sys.argv[1], int(sys.argv[2])))
