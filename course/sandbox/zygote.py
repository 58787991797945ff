"""The warm kernel server that runs inside a grading sandbox (see course/sandbox/__init__.py).

It imports the heavy libraries once, then forks one IPython kernel per
submission. Each kernel gets a fresh scratch folder holding the files of its
notebook's folder, resource limits and a clean environment. When the kernel
ends, every process it left behind is killed and the scratch folder, /tmp and
/dev/shm are wiped, so the next student finds the sandbox as the first did.

The grader (course/sandbox/kernel.py) connects to a listening socket that this
server inherits as a file descriptor; its path lies outside the sandbox, so student
code cannot reach it. They talk in the newline-delimited JSON of
course/sandbox/protocol.py. The grader connects for the next kernel as soon as the
last one has ended: the server accepts only once the sandbox is wiped, and the
kernel starts IPython before the notebook's files arrive.

Only the standard library is imported before `preload()`, and the server never
reads anything but the signals the grader forwards: a forked kernel inherits nothing secret.
"""

import base64
import contextlib
import ctypes
import gc
import json
import os
import random
import resource
import select
import shutil
import socket
import sys
import traceback
from pathlib import Path

from .protocol import complete_messages, receive, send
from .scratch import SCRATCH, kill_leftovers, wipe

IPC = SCRATCH / "ipc" / "kernel"  # the kernel's IPC sockets are IPC-1, IPC-2, ...: nbgrader reaches them from outside
PRELOAD = [
    "numpy",
    "pandas",
    "scipy.special",
    "sklearn.linear_model",
    "sklearn.preprocessing",
    "sklearn.model_selection",
    "sklearn.metrics",
    "matplotlib",
    "matplotlib.figure",
    "matplotlib.backends.backend_agg",
    "matplotlib.pyplot",
    "IPython",
    "IPython.core.history",
    "ipykernel.kernelapp",
    "ipykernel.ipkernel",
    "ipykernel.debugger",
]
PR_SET_DUMPABLE = 4


def preload():
    """Import what every kernel needs, once, as a fresh kernel would (inline backend, one thread)."""
    import importlib

    fonts = SCRATCH / "matplotlib"
    shutil.copytree("/opt/font-cache", fonts)  # matplotlib's font list, built once by the grader
    os.environ["MPLCONFIGDIR"] = str(fonts)
    for name in PRELOAD:
        importlib.import_module(name)
    warm_up()


def warm_up():
    """Pay once what every kernel would pay on its first figure and its first fit, results thrown away:
    the fonts, the grammar of matplotlib's math text (log-scale tick labels), the PNG encoder, and
    scikit-learn's first cross-validated fit and metrics. Caches only: no global state a kernel reads
    changes (no pyplot figure, no random stream, no warning filter or registry)."""
    import io
    import warnings

    import numpy as np
    from matplotlib.figure import Figure
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss, roc_curve
    from sklearn.model_selection import cross_val_predict

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        figure = Figure(figsize=(4, 3), layout="constrained")
        axes = figure.subplots()
        axes.plot([1, 10, 100], [0.6, 0.4, 0.3], label="a line")
        axes.set(xscale="log", title="a title", xlabel="x (log scale)", ylabel="y")
        axes.legend()
        figure.savefig(io.BytesIO(), format="png", bbox_inches="tight")
        X = np.random.default_rng(0).normal(size=(40, 2))
        y = (X[:, 0] > 0).astype(int)
        p = cross_val_predict(LogisticRegression(), X, y, cv=2, method="predict_proba")[:, 1]
        log_loss(y, p), roc_curve(y, p)


def not_traceable():
    """Kernels run as the same user: without this they could ptrace the server and outlive their turn."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def answer(conn, message):
    """Send the grader `message`, if it is still there to read it."""
    with contextlib.suppress(OSError):
        send(conn, message)


def write_files(folder, files):
    """The notebook folder's files, from the grader, under `folder` (no path may leave it)."""
    for name, data in files.items():
        path = (folder / name).resolve()
        if folder.resolve() not in path.parents:
            raise ValueError(f"refusing file outside the scratch folder: {name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))


def set_limits(limits):
    for name, value in limits.items():
        kind = getattr(resource, f"RLIMIT_{name.upper()}")
        resource.setrlimit(kind, (value, value))


def run_kernel(conn, ready, limits, environment):
    """In the forked child: become the kernel the grader asks for. Never returns.

    The grader's first message holds the kernel's connection settings alone: the
    kernel starts IPython with them while the grader does other work. The second
    holds the notebook folder's files and nbgrader's environment variables: the
    kernel writes the files to its working folder and runs. The child, not the
    server, reads the messages, so the server's memory, which every later kernel
    inherits, never holds a student's files.
    """
    buffer = bytearray()
    try:
        connection = receive(conn, buffer)
        if connection is None:  # the grader went away before asking for anything
            os._exit(1)
        work = SCRATCH / "work"
        work.mkdir(parents=True)
        (SCRATCH / "home").mkdir()
        IPC.parent.mkdir()
        connection_file = SCRATCH / "kernel.json"
        connection_file.write_text(json.dumps({**connection["connection"], "transport": "ipc", "ip": str(IPC)}))
        os.chdir(work)
        os.environ.clear()
        os.environ.update(environment, HOME=str(SCRATCH / "home"), MPLCONFIGDIR=str(SCRATCH / "home"))
        null = os.open(os.devnull, os.O_RDWR)  # before the kernel starts: it captures fds 1 and 2
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        app.initialize(["-f", str(connection_file)])
        request = receive(conn, buffer)
        os.close(ready)  # the server may now listen for signals on `conn`
        if request is None:
            os._exit(1)
        write_files(work, request["files"])
        os.environ.update(request["environment"])
        reseed()
    except BaseException:
        answer(conn, {"error": traceback.format_exc()})
        os._exit(1)
    conn.close()
    set_limits(limits)
    try:
        app.start()
    finally:
        os._exit(0)


def reseed():
    """A forked kernel would otherwise repeat the server's random streams."""
    import numpy as np

    random.seed()
    np.random.seed()


def serve(conn, listener, limits, environment):
    """One kernel: fork it, then forward the grader's signals to it until it exits.

    Returns the kernel's exit status and the CPU seconds it used (with the processes it
    waited for), or (None, None) when the grader went away first.
    """
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        listener.close()
        run_kernel(conn, ready_write, limits, environment)
    os.close(ready_write)
    os.read(ready_read, 1)  # until the child has read the notebook's files (or died)
    os.close(ready_read)
    pidfd = os.pidfd_open(pid)
    buffer = bytearray()
    try:
        while True:
            ready, _, _ = select.select([conn, pidfd], [], [])
            if pidfd in ready:
                _, status, usage = os.wait4(pid, 0)
                return os.waitstatus_to_exitcode(status), usage.ru_utime + usage.ru_stime
            chunk = conn.recv(4096)
            if not chunk:  # the grader is gone: so is its kernel
                return None, None
            buffer.extend(chunk)
            for message in complete_messages(buffer):
                os.kill(pid, message["signal"])
    finally:
        os.close(pidfd)


def main():
    listen_fd, settings = int(sys.argv[1]), json.loads(sys.argv[2])
    keep = {Path(path) for path in settings["mounts"]}  # bound into the wiped folders (say, a venv in /tmp)
    listener = socket.socket(fileno=listen_fd)
    preload()
    gc.freeze()  # the preloaded modules live as long as the server: a kernel's collections need not walk (copy) them
    not_traceable()
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        try:
            status, cpu = serve(conn, listener, settings["limits"], settings["environment"])
        except Exception:  # a bad request costs that kernel only
            traceback.print_exc()
            status = cpu = None
        kill_leftovers()
        clean = wipe(keep)
        if status is not None:  # only now: the next kernel must not start before the wipe is done
            server = resource.getrusage(resource.RUSAGE_SELF)
            answer(conn, {"exit": status, "cpu": cpu, "server_cpu": server.ru_utime + server.ru_stime})
        conn.close()
        if not clean:
            sys.exit("could not empty the sandbox after a kernel: stopping, so that a fresh one is started")
