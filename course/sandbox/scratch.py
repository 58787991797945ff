"""The sandbox's writable folders, and their wipe after every kernel (run by the kernel server).

Only the standard library and course/studentfiles.py are imported: the server runs this inside the sandbox.
"""

import itertools
import os
import signal
import subprocess
from pathlib import Path

from ..studentfiles import MAX_REMOVED, remove_tree

SCRATCH = Path("/scratch")
WIPED = (str(SCRATCH), "/tmp", "/dev/shm")  # tmpfs, emptied after every kernel


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
