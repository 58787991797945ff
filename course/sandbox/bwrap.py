"""The bubblewrap (bwrap) command that builds a grading sandbox, and the check that it works here."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from .scratch import WIPED

PACKAGE = Path(__file__).resolve().parents[1]  # course/, read-only at /opt/course/course in the sandbox
NOBODY = 65534
ETC = ["ld.so.cache", "localtime", "fonts", "mime.types", "nsswitch.conf"]
HOW_TO_ENABLE = (
    "Install bubblewrap (Debian/Ubuntu: apt install bubblewrap; make test installs it) and allow "
    "unprivileged user namespaces (Debian: sysctl kernel.unprivileged_userns_clone=1; Ubuntu 24.04+: "
    "sysctl kernel.apparmor_restrict_unprivileged_userns=0; in a container, run it with user "
    "namespaces allowed). Or grade with --no-sandbox, which runs student code as you, next to the "
    "hidden tests and the gradebook."
)


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
    # As root, try it as the user kernels run as; any other user is that user already (and may not setgroups).
    switch = {"user": uid, "group": gid, "extra_groups": []} if os.geteuid() == 0 else {}
    trial = subprocess.run(
        [bwrap, *ISOLATION, "--ro-bind", "/", "/", "true"], capture_output=True, text=True, timeout=30, **switch
    )
    if trial.returncode != 0:
        raise SandboxError(
            f"cannot sandbox student code: bwrap failed ({trial.stderr.strip() or trial.returncode}). {HOW_TO_ENABLE}"
        )


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
    """argv that runs `module`'s main() with the package `course` loaded from the folder `root`, and from nowhere else.

    `python -m` would put the working folder (a student's, had it been started there) first
    on the import path, so a submitted course/ or shlex.py would run as the grader.
    -I leaves it, PYTHONPATH and every other PYTHON* variable out. The package is
    loaded from `root` by name, because the installed `course`, if any, is not the one
    to run: in the sandbox only /opt/course holds the package, and outside it the
    grader's `course` may be a copy of the course (a grading worker's) or another
    checkout than the installed one.
    """
    init = str(Path(root) / "course" / "__init__.py")
    return [
        python_executable(),
        "-I",
        "-c",
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('course', {init!r}); "
        "package = importlib.util.module_from_spec(spec); sys.modules['course'] = package; "
        f"spec.loader.exec_module(package); from {module} import main; main()",
    ]


def read_only_roots():
    """{path in the sandbox: real path} of what kernels read: Python, the virtual environment, course/."""
    roots = {str(Path(p).resolve()): Path(p).resolve() for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    roots["/opt/course/course"] = PACKAGE
    return roots


def bwrap_command(roots, font_cache, info_fd, limits, scratch=None):
    """bwrap's argv: a new root with /usr, a few /etc files, `roots` read-only, tmpfs scratch, no network.

    Nothing of the host is writable inside: all a kernel writes lands in the
    size-capped tmpfs of WIPED, or in the tmpfs `scratch` maps them to (capped in
    files too). bwrap writes its child's pid to `info_fd` as JSON.
    """
    command = [
        shutil.which("bwrap") or "bwrap",
        *ISOLATION,
        "--new-session",
        "--info-fd",
        str(info_fd),
        "--proc",
        "/proc",
        "--dev",
        "/dev",
    ]
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
        command += (
            ["--bind", str(scratch[tmpfs]), tmpfs]
            if scratch
            else ["--size", str(limits.scratch_bytes), "--tmpfs", tmpfs]
        )
    command += ["--remount-ro", "/dev"]
    for destination, source in roots.items():
        command += ["--ro-bind", str(source), destination]
    return command + ["--ro-bind", str(font_cache), "/opt/font-cache", "--remount-ro", "/", "--chdir", "/scratch"]


def as_nobody(command, roots, stage, limits):
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
        options = f"size={limits.scratch_bytes},nr_inodes={limits.scratch_files},mode=0755,uid={NOBODY},gid={NOBODY}"
        mounts.append(f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(scratch[destination]))}")
    inner = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--"] + command(staged, scratch)
    return [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "sh",
        "-c",
        " && ".join(mounts + ["exec " + shlex.join(inner)]),
    ]
