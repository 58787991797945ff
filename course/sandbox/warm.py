"""One warm sandbox: the kernel server started in bwrap, and the kernelspec that reaches it."""

import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from ..studentfiles import remove_tree
from .bwrap import (
    SandboxError,
    as_nobody,
    bwrap_command,
    check_available,
    isolated_python,
    python_executable,
    read_only_roots,
)
from .limits import SandboxLimits
from .protocol import FOLDER_BYTES_ENV, SOCKET_ENV
from .scratch import empty_folder
from .zygote import IPC

KERNEL_NAME = "course-sandbox"
ENVIRONMENT = {  # the kernel's whole environment (plus HOME and MPLCONFIGDIR in its scratch folder)
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}


class Sandbox:
    """One warm sandbox: a bwrap'd kernel server and the kernelspec that reaches it."""

    def __init__(self, limits=None, wait=True):
        """Start the sandbox's server; with `wait`, until it is ready (else wait_ready() does it: another
        process may, the grading worker that takes a sandbox its coordinator started)."""
        check_available()
        self.limits = limits or SandboxLimits()
        self.folder = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
        self.runtime = self.folder / "runtime"  # jupyter_client's connection files; the sandbox never sees it
        self.runtime.mkdir()
        self.socket_path = self.folder / "zygote.sock"  # outside the sandbox: only the grader reaches it
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(self.socket_path))
        self.listener.listen(4)
        self._write_kernelspec()
        self.ready = False
        self.process = self._start_server()
        if wait:
            self.wait_ready()

    def _write_kernelspec(self):
        """The kernelspec nbgrader's Execute names: SandboxKernelManager finds the server through its env.

        Its argv is never run (the kernel manager asks the server instead): it says so, for anyone who tries.
        """
        spec = self.folder / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        refusal = (
            "raise SystemExit('course-sandbox kernels start only through course grade (course/sandbox/kernel.py)')"
        )
        (spec / "kernel.json").write_text(
            json.dumps(
                {
                    "argv": [python_executable(), "-I", "-c", refusal, "{connection_file}"],
                    "env": {
                        SOCKET_ENV: str(self.socket_path),
                        FOLDER_BYTES_ENV: str(self.limits.folder_bytes),
                    },
                    "display_name": "Python 3 (grading sandbox)",
                    "language": "python",
                    "interrupt_mode": "signal",
                }
            )
        )

    def _start_server(self):
        font_cache = self.folder / "font-cache"
        font_cache.mkdir()
        for fontlist in matplotlib_fontlists():
            shutil.copy(fontlist, font_cache)
        settings = json.dumps(
            {"limits": self.limits.rlimits(), "environment": self.environment(), "mounts": list(read_only_roots())}
        )
        server = isolated_python("/opt/course", "course.sandbox.zygote") + [str(self.listener.fileno()), settings]
        info_read, info_write = os.pipe()

        def command(roots, scratch=None):
            return bwrap_command(roots, font_cache, info_write, self.limits, scratch) + server

        if os.geteuid() == 0:
            self.folder.chmod(0o711)
            command = as_nobody(command, read_only_roots(), self.folder / "roots", self.limits)
        else:
            command = command(read_only_roots())
        self.log = self.folder / "server.log"  # what the server and its kernels write to stderr
        with self.log.open("w") as log:
            self.process = subprocess.Popen(
                command,
                pass_fds=[self.listener.fileno(), info_write],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        self.pidfd = os.pidfd_open(self.process.pid)  # alive() asks it: it works in any process that inherits it
        os.close(info_write)
        with os.fdopen(info_read, "rb") as info:
            self.server_pid = read_child_pid(info, self.limits.start_seconds)
        if self.server_pid is None:
            self._did_not_start()
        return self.process

    def wait_ready(self):
        """Until the server has imported what kernels need; then its first kernel starts."""
        if self.ready:
            return
        started, _, _ = select.select([self.process.stdout], [], [], self.limits.start_seconds)
        if not started or self.process.stdout.readline().strip() != "ready":
            self._did_not_start()
        self.ready = True
        from .kernel import prepare_next  # (jupyter_client: imported by the process that grades, when it does)

        prepare_next(str(self.socket_path), self.kernel_ip())  # the first kernel starts now

    def _did_not_start(self):
        self.process.kill()
        self.process.wait()
        log = self.log.read_text().strip() or f"no answer in {self.limits.start_seconds} s"
        self.close()
        # bwrap itself works here (check_available passed): the cause is in the server's log, not the setup
        raise SandboxError(f"cannot sandbox student code: the sandbox's kernel server did not start: {log}")

    @staticmethod
    def environment():
        path = os.pathsep.join([str(Path(python_executable()).parent), "/usr/bin", "/bin"])
        return {**ENVIRONMENT, "PATH": path}

    def alive(self):
        """Whether the server runs (asked of its pidfd: right in a process that is not its parent too)."""
        if self.pidfd is None:
            return False
        exited, _, _ = select.select([self.pidfd], [], [], 0)
        return not exited

    def kernel_ip(self):
        """Where the grader reaches the kernels' IPC sockets: in the sandbox's own tmpfs, through
        /proc/PID/root of the kernel server, a view the kernel cannot write to the host through."""
        return f"/proc/{self.server_pid}/root{IPC}"

    def nbgrader_overrides(self):
        """Config that makes nbgrader's Execute use this sandbox's kernels (course/sandbox/kernel.py) over IPC."""
        return {
            "Execute": {"kernel_name": KERNEL_NAME},
            "NotebookClient": {"kernel_manager_class": "course.sandbox.kernel.SandboxKernelManager"},
            "KernelManager": {"transport": "ipc", "ip": self.kernel_ip()},
        }

    def jupyter_environment(self):
        """Environment for the grading process: where the kernelspec and the connection files are."""
        return {"JUPYTER_PATH": str(self.folder), "JUPYTER_RUNTIME_DIR": str(self.runtime)}

    def clear_runtime(self):
        empty_folder(self.runtime)

    def release(self):
        """Close this process's copies of the sandbox's sockets and pipes, leaving the server running:
        in a process that inherited the sandbox (forked) and is not to use it."""
        forget_kernels(self.socket_path)
        self.listener.close()
        if getattr(self, "process", None) and self.process.stdout:
            self.process.stdout.close()

    def close(self):
        """Stop the server (whichever process asks: the kernel ends too) and remove the sandbox's folder."""
        forget_kernels(self.socket_path)
        if getattr(self, "process", None):
            if self.process.returncode is None:
                with contextlib.suppress(OSError):
                    self.process.kill()
            self.process.wait()  # a process that is not its parent learns nothing here, and waits for nothing
            if self.process.stdout:
                self.process.stdout.close()
        if getattr(self, "pidfd", None) is not None:
            os.close(self.pidfd)
            self.pidfd = None
        self.listener.close()
        try:
            remove_tree(self.folder)
        except OSError:
            pass  # nothing a kernel wrote is in it: what is left is the grader's own


def forget_kernels(socket_path):
    """Close this process's connection for the next kernel of the server at `socket_path`, if any."""
    kernel = sys.modules.get(f"{__package__}.kernel")  # none without it: it is imported to ask for a kernel
    if kernel is not None:
        kernel.discard(str(socket_path))


def matplotlib_fontlists():
    """matplotlib's font list files, which kernels read (copied into the sandbox): from matplotlib's cache
    folder, found without importing matplotlib when it is where matplotlib puts it by default."""
    configured = os.environ.get("MPLCONFIGDIR")
    cache = Path(configured) if configured else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    found = sorted((cache if configured else cache / "matplotlib").glob("fontlist-*.json"))
    if found:
        return found
    import matplotlib

    return sorted(Path(matplotlib.get_cachedir()).glob("fontlist-*.json"))


def read_child_pid(info, timeout):
    """The pid of bwrap's child, from the JSON bwrap writes to its --info-fd (None if it writes none in time)."""
    text = b""
    while b"}" not in text:
        ready, _, _ = select.select([info], [], [], timeout)
        chunk = os.read(info.fileno(), 4096) if ready else b""
        if not chunk:
            return None
        text += chunk
    return json.loads(text)["child-pid"]
