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
import itertools
import json
import os
import random
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import traceback
from pathlib import Path

from .studentfiles import MAX_REMOVED, remove_tree

SCRATCH = Path("/scratch")
WIPED = (str(SCRATCH), "/tmp", "/dev/shm")  # tmpfs, emptied after every kernel
IPC = SCRATCH / "ipc" / "kernel"  # the kernel's IPC sockets are IPC-1, IPC-2, ...: nbgrader reaches them from outside
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


def run_kernel(conn, ready, limits, environment):
    """In the forked child: read the launcher's request and become its kernel. Never returns.

    The child, not the server, reads the request, so the server's memory, which
    every later kernel inherits, never holds a student's files.
    """
    try:
        request = read_message(conn, bytearray())
        os.close(ready)  # the server may now listen for signals on `conn`
        work = SCRATCH / "work"
        work.mkdir(parents=True)
        (SCRATCH / "home").mkdir()
        write_files(work, request["files"])
        IPC.parent.mkdir()
        connection_file = SCRATCH / "kernel.json"
        connection_file.write_text(json.dumps({**request["connection"], "transport": "ipc", "ip": str(IPC)}))
        os.chdir(work)
        os.environ.clear()
        os.environ.update(environment, **request["environment"], HOME=str(SCRATCH / "home"),
                          MPLCONFIGDIR=str(SCRATCH / "home"))
        reseed()
        null = os.open(os.devnull, os.O_RDWR)  # before the kernel starts: it captures fds 1 and 2
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        from ipykernel.kernelapp import IPKernelApp
        app = IPKernelApp.instance()
        app.initialize(["-f", str(connection_file)])
    except BaseException:
        send_message(conn, {"error": traceback.format_exc()})
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
    """Remove everything in `folder` but the mount points in `keep`; return whether all else is gone.

    Links are removed, never followed; folders made unreadable are made readable
    first; a tree too deep or too large to remove is reported, never raised.
    """
    try:
        folder.chmod(0o700 | folder.stat().st_mode)
        entries = list(itertools.islice(folder.iterdir(), MAX_REMOVED + 1))
    except OSError:
        return False
    clean = len(entries) <= MAX_REMOVED
    for entry in entries:
        if entry in keep:
            continue
        try:
            if any(entry in kept.parents for kept in keep):
                clean = empty_folder(entry, keep) and clean
            elif entry.is_dir() and not entry.is_symlink():
                remove_tree(entry)
            else:
                entry.unlink()
        except OSError:
            clean = False
    return clean


def wipe(keep):
    """Empty the writable folders and remove System V IPC objects; return whether all went."""
    subprocess.run(["ipcrm", "--all"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return all([empty_folder(Path(folder), keep) for folder in WIPED])


def serve(conn, listener, limits, environment):
    """One kernel: fork it, then forward the launcher's signals to it until it exits.

    Returns the kernel's exit status, or None when the launcher went away first.
    """
    ready_read, ready_write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(ready_read)
        listener.close()
        run_kernel(conn, ready_write, limits, environment)
    os.close(ready_write)
    os.read(ready_read, 1)  # until the child has read the request (or died)
    os.close(ready_read)
    pidfd = os.pidfd_open(pid)
    buffer = bytearray()
    try:
        while True:
            ready, _, _ = select.select([conn, pidfd], [], [])
            if pidfd in ready:
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
            chunk = conn.recv(4096)
            if not chunk:  # the launcher is gone: so is its kernel
                return None
            buffer.extend(chunk)
            while b"\n" in buffer:
                line, _, rest = bytes(buffer).partition(b"\n")
                buffer[:] = rest
                os.kill(pid, json.loads(line)["signal"])
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
            status = serve(conn, listener, settings["limits"], settings["environment"])
        except Exception:  # a bad request costs that kernel only
            traceback.print_exc()
            status = None
        kill_leftovers()
        clean = wipe(keep)
        if status is not None:  # only now: the next kernel must not start before the wipe is done
            send_message(conn, {"exit": status})
        conn.close()
        if not clean:
            sys.exit("could not empty the sandbox after a kernel: stopping, so that a fresh one is started")
