"""One warm sandbox: the kernel server started in bwrap, and the kernelspec that reaches it."""

import json
import os
import select
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

from ..studentfiles import remove_tree
from . import kernel
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

    def __init__(self, limits=None):
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
        self.process = self._start_server()
        kernel.prepare_next(str(self.socket_path), self.kernel_ip())  # the first kernel starts now

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
                        kernel.SOCKET_ENV: str(self.socket_path),
                        kernel.FOLDER_BYTES_ENV: str(self.limits.folder_bytes),
                    },
                    "display_name": "Python 3 (grading sandbox)",
                    "language": "python",
                    "interrupt_mode": "signal",
                }
            )
        )

    def _start_server(self):
        import matplotlib

        font_cache = self.folder / "font-cache"
        font_cache.mkdir()
        for fontlist in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
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
            process = subprocess.Popen(
                command,
                pass_fds=[self.listener.fileno(), info_write],
                env=self.environment(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
            )
        os.close(info_write)
        with os.fdopen(info_read, "rb") as info:
            self.server_pid = read_child_pid(info, self.limits.start_seconds)
        started, _, _ = select.select([process.stdout], [], [], self.limits.start_seconds)
        if self.server_pid is None or not started or process.stdout.readline().strip() != "ready":
            process.kill()
            process.wait()
            log = self.log.read_text().strip() or f"no answer in {self.limits.start_seconds} s"
            self.close()
            # bwrap itself works here (check_available passed): the cause is in the server's log, not the setup
            raise SandboxError(f"cannot sandbox student code: the sandbox's kernel server did not start: {log}")
        return process

    @staticmethod
    def environment():
        path = os.pathsep.join([str(Path(python_executable()).parent), "/usr/bin", "/bin"])
        return {**ENVIRONMENT, "PATH": path}

    def alive(self):
        return self.process.poll() is None

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

    def close(self):
        kernel.discard(str(self.socket_path))
        if getattr(self, "process", None):
            self.process.kill()
            self.process.wait()
        self.listener.close()
        try:
            remove_tree(self.folder)
        except OSError:
            pass  # nothing a kernel wrote is in it: what is left is the grader's own


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
