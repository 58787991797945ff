"""The sandbox's writable folders, and their wipe after every kernel (run by the kernel server).

Only the standard library and course/studentfiles.py are imported: the server runs this inside the sandbox.
"""

import ctypes
import itertools
import os
import signal
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


IPC_RMID = 0
SYSVIPC = Path("/proc/sysvipc")


def remove_ipc_objects(sysvipc=SYSVIPC):
    """Remove every System V shared memory segment, semaphore set and message queue this process may,
    as `ipcrm --all` does, without starting a process: those of the sandbox's own IPC namespace,
    listed in /proc/sysvipc. Return how many could not be removed."""
    libc = ctypes.CDLL(None, use_errno=True)
    removers = {
        "shm": lambda ident: libc.shmctl(ident, IPC_RMID, None),
        "sem": lambda ident: libc.semctl(ident, 0, IPC_RMID),
        "msg": lambda ident: libc.msgctl(ident, IPC_RMID, None),
    }
    left = 0
    for kind, remove in removers.items():
        try:
            lines = (sysvipc / kind).read_text().splitlines()[1:]  # a header, then one object a line
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 1 and fields[1].isdigit() and remove(int(fields[1])) != 0:
                left += 1
    return left


def wipe(keep):
    """Empty the writable folders and remove System V IPC objects; return whether all went."""
    remove_ipc_objects()
    return all([empty_folder(Path(folder), keep) for folder in WIPED])
