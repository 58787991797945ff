"""Run student notebooks in a sandbox, from warm kernels.

A grading worker starts one bubblewrap (bwrap) sandbox and, inside it, the
kernel server of course/zygote.py, which imports numpy, pandas, scikit-learn
and matplotlib once and forks a kernel per submission. nbgrader's own
execution runs unchanged: its kernelspec, "course-sandbox", starts
`python -I -c "...course.sandbox.main()" CONNECTION_FILE`, a launcher that asks
the server for a kernel and stands in for it (exit status, signals). The kernel
talks to nbgrader over IPC sockets in the sandbox's own tmpfs, which the grader
reaches through /proc/PID/root of the server: no host folder is writable inside.

Inside the sandbox a kernel sees the system's /usr, the Python installation
and a scratch copy of its notebook's folder; not the course (source/,
gradebook.db, other students), nor the instructor's home. It has no network,
it runs as an unprivileged user (nobody, when grading as root) and under
limits on CPU time, memory, processes, file size and open files.
"""

import base64
import json
import os
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from .studentfiles import remove_tree
from .zygote import IPC, WIPED, empty_folder

KERNEL_NAME = "course-sandbox"
NOBODY = 65534
LIMITS = {  # setrlimit values for each kernel
    "cpu": 600,  # seconds of CPU time
    "as": 4 << 30,  # bytes of address space
    "nproc": 64,  # processes, counted inside the sandbox
    "fsize": 64 << 20,  # bytes per written file
    "nofile": 256,  # open files
}
SCRATCH_BYTES = 256 << 20  # size of each of the sandbox's tmpfs: /scratch, /tmp, /dev/shm
SCRATCH_FILES = 16_384  # files and folders in each of them (when grading as root)
SERVER_START_SECONDS = 120
MAX_FOLDER_BYTES = 64 << 20  # a notebook folder larger than this is not copied into the sandbox
ENVIRONMENT = {  # the kernel's whole environment (plus HOME and MPLCONFIGDIR in its scratch folder)
    "LANG": "C.UTF-8",
    "TMPDIR": "/tmp",
    "MPLBACKEND": "module://matplotlib_inline.backend_inline",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "PYDEVD_DISABLE_FILE_VALIDATION": "1",
}
PASSED_ON = ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING")  # nbgrader tells kernels it is grading (as stock)
ETC = ["ld.so.cache", "localtime", "fonts", "mime.types", "nsswitch.conf"]
HOW_TO_ENABLE = (
    "Install bubblewrap (Debian/Ubuntu: apt install bubblewrap; make test installs it) and allow "
    "unprivileged user namespaces (Debian: sysctl kernel.unprivileged_userns_clone=1; Ubuntu 24.04+: "
    "sysctl kernel.apparmor_restrict_unprivileged_userns=0; in a container, run it with user "
    "namespaces allowed). Or grade with --no-sandbox, which runs student code as you, next to the "
    "hidden tests and the gradebook.")


# Every namespace of its own (no network), no user namespaces inside, gone when the worker is.
ISOLATION = ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--as-pid-1"]


class SandboxError(Exception):
    """The sandbox cannot be created on this machine."""


def sandbox_user():
    """(uid, gid) kernels run as: nobody when grading as root (root ignores process limits), else you."""
    return (NOBODY, NOBODY) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def check_available():
    """Raise SandboxError, saying why and how to fix it, unless a sandbox can be created here."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        raise SandboxError(f"cannot sandbox student code: bubblewrap (bwrap) is not installed. {HOW_TO_ENABLE}")
    uid, gid = sandbox_user()
    trial = subprocess.run([bwrap, *ISOLATION, "--ro-bind", "/", "/", "true"],
                           capture_output=True, text=True, user=uid, group=gid, extra_groups=[], timeout=30)
    if trial.returncode != 0:
        raise SandboxError(f"cannot sandbox student code: bwrap failed ({trial.stderr.strip() or trial.returncode}). "
                           f"{HOW_TO_ENABLE}")


def python_executable():
    """This Python, by a path that exists in the sandbox too: with its environment's folder resolved.

    The sandbox binds the resolved folders of read_only_roots(), so a virtual
    environment reached through a symbolic link (.venv -> elsewhere) must be
    named by where it really is.
    """
    executable = Path(sys.executable)
    try:
        return str(Path(sys.prefix).resolve() / executable.relative_to(sys.prefix))
    except ValueError:
        return str(executable.resolve())


def isolated_python(root, module):
    """argv that runs `module`'s main() from the package folder `root`, and from nowhere else.

    `python -m` would put the working folder (a student's, for the launcher) first
    on sys.path, so a submitted course/ or shlex.py would run as the grader.
    -I leaves it, PYTHONPATH and every other PYTHON* variable out.
    """
    return [python_executable(), "-I", "-c",
            f"import sys; sys.path.insert(0, {str(root)!r}); from {module} import main; main()"]


def read_only_roots():
    """{path in the sandbox: real path} of what kernels read: Python, the virtual environment, course/."""
    roots = {str(Path(p).resolve()): Path(p).resolve() for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    roots["/opt/course/course"] = Path(__file__).resolve().parent
    return roots


def bwrap_command(roots, font_cache, info_fd, scratch=None):
    """bwrap's argv: a new root with /usr, a few /etc files, `roots` read-only, tmpfs scratch, no network.

    Nothing of the host is writable inside: all a kernel writes lands in the
    size-capped tmpfs of WIPED, or in the tmpfs `scratch` maps them to (capped in
    files too). bwrap writes its child's pid to `info_fd` as JSON.
    """
    command = [shutil.which("bwrap") or "bwrap", *ISOLATION, "--new-session", "--info-fd", str(info_fd),
               "--proc", "/proc", "--dev", "/dev"]
    for top in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/") / top
        if path.is_symlink():
            command += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            command += ["--ro-bind", str(path), str(path)]
    for name in ETC:
        if (Path("/etc") / name).exists():
            command += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for tmpfs in WIPED:  # first: the folders bound next may lie in /tmp
        command += (["--bind", str(scratch[tmpfs]), tmpfs] if scratch
                    else ["--size", str(SCRATCH_BYTES), "--tmpfs", tmpfs])
    command += ["--remount-ro", "/dev"]
    for destination, source in roots.items():
        command += ["--ro-bind", str(source), destination]
    return command + ["--ro-bind", str(font_cache), "/opt/font-cache", "--remount-ro", "/", "--chdir", "/scratch"]


def as_nobody(command, roots, stage):
    """Run `command(staged roots, scratch tmpfs)` (bwrap) as nobody, from root, after staging under `stage`.

    nobody may not traverse the paths root's Python lives under (/root is 0700), so
    each root is bind-mounted in a private mount namespace onto a folder nobody
    can reach, and bwrap binds it from there. The scratch tmpfs are mounted there
    too, capped in bytes and in files (bwrap's own tmpfs cannot cap files): a
    kernel cannot fill memory with millions of empty files.
    """
    staged, scratch, mounts = {}, {}, []
    for number, (destination, source) in enumerate(roots.items()):
        staged[destination] = stage / str(number)
        staged[destination].mkdir(parents=True)
        mounts.append(f"mount --bind {shlex.quote(str(source))} {shlex.quote(str(staged[destination]))}")
    for number, destination in enumerate(WIPED):
        scratch[destination] = stage / f"tmpfs{number}"
        scratch[destination].mkdir(parents=True)
        options = f"size={SCRATCH_BYTES},nr_inodes={SCRATCH_FILES},mode=0755,uid={NOBODY},gid={NOBODY}"
        mounts.append(f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(scratch[destination]))}")
    inner = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] + command(staged, scratch)
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            " && ".join(mounts + ["exec " + shlex.join(inner)])]


class Sandbox:
    """One warm sandbox: a bwrap'd kernel server and the kernelspec that reaches it."""

    def __init__(self):
        check_available()
        self.folder = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
        self.runtime = self.folder / "runtime"  # jupyter_client's connection files; the sandbox never sees it
        self.runtime.mkdir()
        self.socket_path = self.folder / "zygote.sock"  # outside the sandbox: only launchers reach it
        self.listener = socket.socket(socket.AF_UNIX)
        self.listener.bind(str(self.socket_path))
        self.listener.listen(4)
        self._write_kernelspec()
        self.process = self._start_server()

    def _write_kernelspec(self):
        spec = self.folder / "kernels" / KERNEL_NAME
        spec.mkdir(parents=True)
        (spec / "kernel.json").write_text(json.dumps({
            "argv": isolated_python(Path(__file__).resolve().parents[1], "course.sandbox") + ["{connection_file}"],
            "env": {"COURSE_SANDBOX_SOCKET": str(self.socket_path)},
            "display_name": "Python 3 (grading sandbox)", "language": "python", "interrupt_mode": "signal",
        }))

    def _start_server(self):
        import matplotlib
        font_cache = self.folder / "font-cache"
        font_cache.mkdir()
        for fontlist in Path(matplotlib.get_cachedir()).glob("fontlist-*.json"):
            shutil.copy(fontlist, font_cache)
        settings = json.dumps({"limits": LIMITS, "environment": self.environment(),
                               "mounts": list(read_only_roots())})
        server = isolated_python("/opt/course", "course.zygote") + [str(self.listener.fileno()), settings]
        info_read, info_write = os.pipe()

        def command(roots, scratch=None):
            return bwrap_command(roots, font_cache, info_write, scratch) + server
        if os.geteuid() == 0:
            self.folder.chmod(0o711)
            command = as_nobody(command, read_only_roots(), self.folder / "roots")
        else:
            command = command(read_only_roots())
        self.log = self.folder / "server.log"  # what the server and its kernels write to stderr
        with self.log.open("w") as log:
            process = subprocess.Popen(command, pass_fds=[self.listener.fileno(), info_write],
                                       env=self.environment(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=log, text=True)
        os.close(info_write)
        with os.fdopen(info_read, "rb") as info:
            self.server_pid = read_child_pid(info, SERVER_START_SECONDS)
        started, _, _ = select.select([process.stdout], [], [], SERVER_START_SECONDS)
        if self.server_pid is None or not started or process.stdout.readline().strip() != "ready":
            process.kill()
            process.wait()
            log = self.log.read_text().strip() or f"no answer in {SERVER_START_SECONDS} s"
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

    def nbgrader_overrides(self):
        """Config that makes nbgrader's Execute use this sandbox's kernels over IPC.

        The sockets lie in the sandbox's own tmpfs; the grader reaches them through
        /proc/PID/root of the kernel server, a view the kernel cannot write to the host through.
        """
        return {"Execute": {"kernel_name": KERNEL_NAME},
                "KernelManager": {"transport": "ipc", "ip": f"/proc/{self.server_pid}/root{IPC}"}}

    def jupyter_environment(self):
        """Environment for the grading process: where the kernelspec and the connection files are."""
        return {"JUPYTER_PATH": str(self.folder), "JUPYTER_RUNTIME_DIR": str(self.runtime)}

    def clear_runtime(self):
        empty_folder(self.runtime)

    def close(self):
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


def folder_files(folder):
    """The files of a notebook's folder, base64-encoded, for the kernel's scratch copy.

    Notebooks stay out: while nbgrader grades, the one being graded holds the
    test cells it restored from the gradebook, hidden tests included.
    """
    files, total = {}, 0
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb":
            total += path.stat().st_size
            if total > MAX_FOLDER_BYTES:
                raise SandboxError(f"the notebook's folder is larger than {MAX_FOLDER_BYTES} bytes")
            files[str(path.relative_to(folder))] = base64.b64encode(path.read_bytes()).decode()
    return files


def launch(connection_file):
    """The kernelspec's argv: get a kernel from the sandbox's server and stand in for it until it exits."""
    request = {"connection": json.loads(Path(connection_file).read_text()), "files": folder_files(os.getcwd()),
               "environment": {name: os.environ[name] for name in PASSED_ON if name in os.environ}}
    conn = socket.socket(socket.AF_UNIX)
    conn.connect(os.environ["COURSE_SANDBOX_SOCKET"])
    conn.sendall(json.dumps(request).encode() + b"\n")
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _: conn.sendall(json.dumps({"signal": number}).encode() + b"\n"))
    reply = b""
    while not reply.endswith(b"\n"):
        chunk = conn.recv(1 << 16)
        if not chunk:
            return 1
        reply += chunk
    reply = json.loads(reply)
    if "error" in reply:
        print(f"the sandboxed kernel could not start:\n{reply['error']}", file=sys.stderr)
        return 1
    return reply["exit"]


def main():
    sys.exit(launch(sys.argv[1]))
