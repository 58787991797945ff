"""A resident grader: warm workers that `course grade` hands its students to while it runs.

`course serve` imports nbgrader and scikit-learn once, forks its workers, and lets each start its
sandbox (course/sandbox/), whose kernel server imports the notebooks' libraries and starts the first
kernel. Then it listens on a Unix socket in a private folder of its own (mode 0700) and writes where,
with its process id, to SERVER_RECORD in the course root. A `course grade` of that course reads the
record, checks that the server runs as its own user (and the server checks the same of it), and
sends its options instead of grading: the server grades with nbgrader's autograder in the sandbox,
through the same code as a local run (course/grade.py), one run at a time, in the order they come,
and sends back what the run prints and its exit status. Grades, messages and gradebook writes are
a local run's; only the imports and the sandboxes' start are already done.

A `course grade` that finds no server it can trust (no record, a stale one, another user's) grades
itself, as always. A client that goes away mid-run costs nothing: the run finishes and records every
grade. A killed worker costs its student, as in a local run, and the pool is forked again.
"""

import contextlib
import json
import os
import signal
import socket
import stat
import struct
import sys
import tempfile
from pathlib import Path

SERVER_RECORD = ".course-serve.json"  # in the course root: where the server listens, and its process id
RECORD_BYTES = 4096
MESSAGE_BYTES = 1 << 20
CONNECT_SECONDS = REQUEST_SECONDS = 30
serving = False  # in the server's process: its runs grade here, never with a server


def record_path(root):
    return Path(root).resolve() / SERVER_RECORD


def send(conn, message):
    """Write `message` to `conn` as one line of JSON (a client and its server talk in these)."""
    conn.sendall(json.dumps(message).encode() + b"\n")


def messages(conn):
    """The JSON messages that arrive on `conn`, one per line, until it closes (or sends a line too long)."""
    with conn.makefile("rb") as lines:
        for line in iter(lambda: lines.readline(MESSAGE_BYTES), b""):
            if not line.endswith(b"\n"):
                return
            yield json.loads(line)


def peer(conn):
    """(process id, user id) of the process at the other end of the Unix socket `conn` (the kernel says it)."""
    pid, uid, _ = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    return pid, uid


# ---- The client: `course grade` when a server of the course runs ----


def read_record(root):
    """SERVER_RECORD's socket path: a regular file's, read without following a link or waiting on a FIFO."""
    descriptor = os.open(record_path(root), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise ValueError("not a regular file")
        return str(json.loads(file.read(RECORD_BYTES))["socket"])


def connect(root):
    """A connection to the course's resident grader and the server's process id, or None when there is
    none this user can trust."""
    try:
        conn = socket.socket(socket.AF_UNIX)
        conn.settimeout(CONNECT_SECONDS)  # a listener that never takes the call
        conn.connect(read_record(root))
        conn.settimeout(None)  # a run takes as long as it takes
    except (OSError, ValueError, TypeError, KeyError):
        conn.close()
        return None  # none, stale, unreadable or not ours to enter: grade here
    pid, uid = peer(conn)
    if uid != os.getuid():
        conn.close()
        print(f"note: the resident grader named by {SERVER_RECORD} runs as another user: grading here", file=sys.stderr)
        return None
    return conn, pid


def grade_with_server(root, options):
    """Send `course grade`'s `options` to the course's resident grader and relay what it prints.

    Returns the run's exit status, or None (nothing sent) when no server of this user runs.
    """
    if serving:
        return None
    connected = connect(root)
    if connected is None:
        return None
    conn, pid = connected
    with conn:
        send(conn, options)
        print(f"grading with the resident grader (course serve, process {pid})", file=sys.stderr, flush=True)
        for message in messages(conn):
            if "exit" in message:
                return message["exit"]
            stream = sys.stdout if message.get("stream") == "stdout" else sys.stderr
            stream.write(message.get("text", ""))
            stream.flush()
        print("error: the resident grader stopped during the run (see its output)", file=sys.stderr)
        return 1


# ---- The server ----


class Relay:
    """A text stream that sends what is written to the client as {"stream", "text"} messages; once the
    client is gone it drops what follows, so the run goes on."""

    def __init__(self, conn, name):
        self.conn, self.name = conn, name

    def write(self, text):
        if text and self.conn is not None:
            try:
                send(self.conn, {"stream": self.name, "text": text})
            except OSError:
                self.conn = None
        return len(text)

    def flush(self):
        pass


def grade_argv(root, options):
    """`course grade`'s command line for a request's options (only what a local run takes)."""
    argv = ["--root", str(root), "grade", str(options["assignment"])]
    if options.get("student"):
        argv += ["--student", *map(str, options["student"])]
    if options.get("timings"):
        argv += ["--timings", str(options["timings"])]
    return argv


def answer(conn, root, main):
    """Run one client's `course grade` with `main` (course/__main__.py), its output relayed."""
    if peer(conn)[1] != os.getuid():
        return  # another user's process: it gets nothing, not even an answer
    conn.settimeout(REQUEST_SECONDS)  # a client that never sends its request does not hold up the next
    try:
        options = next(messages(conn), None)
    except (OSError, ValueError):  # too slow, or not JSON
        return
    conn.settimeout(None)
    if not isinstance(options, dict) or "assignment" not in options:
        return
    out, err = Relay(conn, "stdout"), Relay(conn, "stderr")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(grade_argv(root, options))
        except (Exception, SystemExit) as error:  # argparse exits on bad options: the server stays up
            print(f"error: {type(error).__name__}: {error}", file=sys.stderr)
            status = 1
    with contextlib.suppress(OSError):
        send(conn, {"exit": status})


def write_record(root, socket_path):
    """SERVER_RECORD in the course root, replaced at once (readable by this user alone)."""
    record = record_path(root)
    temporary = record.with_name(f"{SERVER_RECORD}.{os.getpid()}")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump({"socket": str(socket_path), "pid": os.getpid()}, file)
    os.replace(temporary, record)


def remove_record(root):
    """Remove SERVER_RECORD if it is still this server's."""
    with contextlib.suppress(OSError, ValueError):
        record = record_path(root)
        if json.loads(record.read_bytes()[:RECORD_BYTES]).get("pid") == os.getpid():
            record.unlink()


def stop(*_):
    """SIGTERM stops the server as Ctrl-C does (a run's own error handling does not catch it)."""
    raise KeyboardInterrupt


def serve(api, jobs, main, assignments=None):
    """Keep `jobs` warm workers for the course of `api` until interrupted, grading each client's run.

    The workers are warmed up on `assignments` (default: every assignment in the gradebook)."""
    from .gradebook import open_gradebook, recorded_assignment
    from .parallel import ResidentWorkers, check_sandbox

    global serving
    with open_gradebook(api) as gradebook:  # before any worker starts: a clear error instead
        for assignment in assignments or []:
            recorded_assignment(gradebook, assignment)
        assignments = assignments or sorted(assignment.name for assignment in gradebook.assignments)
    check_sandbox()
    serving = True
    root = Path(api.coursedir.root).resolve()
    folder = Path(tempfile.mkdtemp(prefix="course-serve-"))  # 0700: only this user can reach the socket
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "grader.sock"))
    listener.listen(16)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started where Ctrl-C was ignored
    with ResidentWorkers(jobs, api.config) as workers:
        try:
            workers.wait_warm()
            workers.warm_up(api, assignments)
            write_record(root, folder / "grader.sock")
            print(
                f"resident grader for {root}: {jobs} warm workers; `course grade` of this course grades with them "
                "while this runs (Ctrl-C stops it)",
                flush=True,
            )
            while True:
                conn, _ = listener.accept()
                with conn:
                    answer(conn, root, main)
                workers.refresh()
        finally:
            remove_record(root)
            listener.close()
            with contextlib.suppress(OSError):
                (folder / "grader.sock").unlink()
                folder.rmdir()
