"""The warm kernel server that runs inside a grading sandbox (see course/sandbox.py).

It imports the heavy libraries once, then forks one IPython kernel per
submission. Each kernel gets a fresh scratch folder holding the files of its
notebook's folder, resource limits and a clean environment. When the kernel
ends, every process it left behind is killed and the scratch folder, /tmp and
/dev/shm are wiped, so the next student finds the sandbox as the first did.

Launchers (the kernelspec's argv, course.sandbox.launch) connect to a listening
socket that this server inherits as a file descriptor; its path lies outside
the sandbox, so student code cannot reach it. Protocol, one JSON object per
line: the launcher sends {"connection": ..., "files": {path: base64},
"environment": {...}} and then
{"signal": n} to forward signals; the server answers {"exit": code}.

Only the standard library is imported before `preload()`, and the server never
reads anything but what launchers send: a forked kernel inherits nothing secret.
"""

import base64
import ctypes
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import sys
import traceback
from pathlib import Path

SCRATCH = Path("/scratch")
WIPED = (str(SCRATCH), "/tmp", "/dev/shm")  # tmpfs, emptied after every kernel
PRELOAD = ["numpy", "pandas", "scipy.special", "sklearn.linear_model", "sklearn.preprocessing",
           "sklearn.model_selection", "sklearn.metrics", "matplotlib", "matplotlib.figure",
           "matplotlib.backends.backend_agg", "IPython", "ipykernel.kernelapp"]
PR_SET_DUMPABLE = 4


def preload():
    """Import what every kernel needs, once, as a fresh kernel would (inline backend, one thread)."""
    import importlib
    fonts = SCRATCH / "matplotlib"
    shutil.copytree("/opt/font-cache", fonts)  # matplotlib's font list, built once by the grader
    os.environ["MPLCONFIGDIR"] = str(fonts)
    for name in PRELOAD:
        importlib.import_module(name)


def not_traceable():
    """Kernels run as the same user: without this they could ptrace the server and outlive their turn."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)


def read_message(conn, buffer):
    """The next JSON line from `conn` (None at end of stream); `buffer` keeps what follows it."""
    while b"\n" not in buffer:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return json.loads(line)


def send_message(conn, message):
    try:
        conn.sendall(json.dumps(message).encode() + b"\n")
    except OSError:
        pass


def write_files(folder, files):
    """The notebook folder's files, from the launcher, under `folder` (no path may leave it)."""
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


def run_kernel(request, limits, environment):
    """In the forked child: become the submission's kernel. Never returns."""
    try:
        work = SCRATCH / "work"
        work.mkdir(parents=True)
        (SCRATCH / "home").mkdir()
        write_files(work, request["files"])
        connection_file = SCRATCH / "kernel.json"
        connection_file.write_text(json.dumps(request["connection"]))
        os.chdir(work)
        os.environ.clear()
        os.environ.update(environment, **request["environment"], HOME=str(SCRATCH / "home"),
                          MPLCONFIGDIR=str(SCRATCH / "home"))
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1):
            os.dup2(null, fd)
        reseed()
        set_limits(limits)
        from ipykernel.kernelapp import IPKernelApp
        app = IPKernelApp.instance()
        app.initialize(["-f", str(connection_file)])
        app.start()
    except BaseException:
        traceback.print_exc()
    finally:
        os._exit(0)


def reseed():
    """A forked kernel would otherwise repeat the server's random streams."""
    import numpy as np
    random.seed()
    np.random.seed()


def kill_leftovers():
    """Kill every process in this sandbox's PID namespace but this one and its init."""
    while True:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            break
        reap()


def reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def empty_folder(folder, keep=()):
    """Remove everything in `folder` but the folders in `keep` (mount points); links are removed, not followed."""
    for entry in folder.iterdir() if folder.is_dir() else ():
        if entry in keep:
            continue
        if any(entry in kept.parents for kept in keep):
            empty_folder(entry, keep)
        elif entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def serve(conn, listener, limits, environment):
    """One kernel, from a launcher's request to its exit."""
    buffer = bytearray()
    request = read_message(conn, buffer)
    if request is None:
        return
    pid = os.fork()
    if pid == 0:
        listener.close()
        conn.close()
        run_kernel(request, limits, environment)
    pidfd = os.pidfd_open(pid)
    try:
        while True:
            ready, _, _ = select.select([conn, pidfd], [], [])
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                send_message(conn, {"exit": os.waitstatus_to_exitcode(status)})
                return
            message = read_message(conn, buffer)
            if message is None:  # the launcher is gone: so is its kernel
                return
            os.kill(pid, message["signal"])
    finally:
        os.close(pidfd)


def main():
    listen_fd, settings = int(sys.argv[1]), json.loads(sys.argv[2])
    keep = {Path(path) for path in settings["mounts"]}  # bound into the wiped folders (say, a venv in /tmp)
    listener = socket.socket(fileno=listen_fd)
    preload()
    not_traceable()
    print("ready", flush=True)
    while True:
        conn, _ = listener.accept()
        try:
            serve(conn, listener, settings["limits"], settings["environment"])
        except Exception:  # a bad request costs that kernel only
            traceback.print_exc()
        finally:
            conn.close()
            kill_leftovers()
            for folder in WIPED:
                empty_folder(Path(folder), keep)


if __name__ == "__main__":
    main()
