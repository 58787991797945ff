"""Read, copy and remove what a student submitted or a student's code wrote, never following a link.

Everything under a student's folder is hostile. A symbolic link read as the
grader would hand the grader's files (the hidden tests, the gradebook, another
student's work) to the student's code; a FIFO would block the reader; a hard
link shares its contents with a file elsewhere. So folders are walked without
following links, each file is opened with O_NOFOLLOW and checked after it is
open, and anything but plain folders and plain files refuses the whole folder
with a message that names the offending path. The walk is iterative and
bounded, so a folder nested thousands deep costs nothing but the refusal;
remove_tree removes such a folder without recursion, in bounded memory.

Only the standard library is used: the sandbox's kernel server imports this file.
"""

import os
import stat
from pathlib import Path

SKIPPED = ("__pycache__", ".ipynb_checkpoints")  # caches nbgrader and Python leave; never read
MAX_ENTRIES = 10_000  # files and folders in one submission
MAX_DEPTH = 32  # folders nested in one submission
MAX_REMOVED = 200_000  # files and folders remove_tree removes before it gives up


class InvalidSubmission(Exception):
    """A student's folder holds something the grader will not read."""


def _kind(mode):
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    ):
        if test(mode):
            return name
    return "not a plain file"


def walk(folder):
    """Yield (relative path, os.stat_result) of every plain file under `folder`; refuse anything else."""
    folder = Path(folder)
    pending, entries = [(folder, 0)], 0
    while pending:
        current, depth = pending.pop()
        with os.scandir(current) as scan:
            children = sorted(scan, key=lambda entry: entry.name)
        for entry in children:
            entries += 1
            relative = Path(entry.path).relative_to(folder)
            if entries > MAX_ENTRIES:
                raise InvalidSubmission(f"more than {MAX_ENTRIES} files and folders")
            if entry.name in SKIPPED:
                continue
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISDIR(info.st_mode):
                if depth + 1 >= MAX_DEPTH:
                    raise InvalidSubmission(f"{relative}: folders nested more than {MAX_DEPTH} deep")
                pending.append((Path(entry.path), depth + 1))
            elif not stat.S_ISREG(info.st_mode):
                raise InvalidSubmission(f"{relative} is {_kind(info.st_mode)}")
            elif info.st_nlink > 1:
                raise InvalidSubmission(f"{relative} is a hard link to another file")
            else:
                yield str(relative), info


def read_file(path):
    """The bytes of plain file `path`, opened without following a link or blocking on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink > 1:  # swapped since it was listed
            raise InvalidSubmission(f"{path} changed while it was read")
        with os.fdopen(fd, "rb", closefd=False) as file:
            return file.read()
    finally:
        os.close(fd)


def read_folder(folder, max_bytes, skip=()):
    """{relative path: bytes} of every file under `folder`, at most `max_bytes` in all.

    Files whose suffix is in `skip` are left out (and not read). Raise
    InvalidSubmission for links, special files, hard links and oversized folders.
    """
    files, total = {}, 0
    for relative, info in walk(folder):
        if Path(relative).suffix in skip:
            continue
        total += info.st_size
        if total > max_bytes:
            raise InvalidSubmission(f"the submission is larger than {max_bytes} bytes")
        files[relative] = read_file(Path(folder) / relative)
    return files


def write_folder(files, destination):
    """Write {relative path: bytes} under `destination`, refusing any path that would leave it."""
    destination = Path(destination)
    base = destination.resolve()
    for name, data in files.items():
        path = (destination / name).resolve()
        if base not in path.parents:
            raise InvalidSubmission(f"{name}: a path outside the submission")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def copy_folder(source, destination, max_bytes):
    """Copy a student's folder, refusing links and special files, and return the relative paths copied."""
    files = read_folder(source, max_bytes)
    write_folder(files, destination)
    return sorted(files)


FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _open_folder(name, dir_fd=None):
    """A descriptor of folder `name` (never a link), made readable and writable first if it was locked."""
    try:
        return os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)
    except PermissionError:
        os.chmod(name, 0o700, dir_fd=dir_fd)  # a folder: O_NOFOLLOW would have failed on a link
        return os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)


def _clear_files(fd, left):
    """Unlink every entry of folder `fd` but its folders; return their names, counting all against `left`."""
    os.chmod(fd, 0o700)
    names, folders = [], []
    with os.scandir(fd) as scan:
        for entry in scan:
            left[0] -= 1
            if left[0] < 0:
                raise OSError("too many entries to remove")
            (folders if entry.is_dir(follow_symlinks=False) else names).append(entry.name)
    for name in names:
        os.unlink(name, dir_fd=fd)
    return folders


def remove_tree(path, max_entries=MAX_REMOVED):
    """Remove folder `path` and all it holds, iteratively, one descriptor open at a time, following no link.

    Raise OSError if it cannot, or if it holds more than `max_entries` entries;
    what is left is then the caller's to discard (a sandbox's tmpfs goes with the sandbox).
    """
    left, current = [max_entries], _open_folder(path)
    try:
        stack = [(None, _clear_files(current, left))]
        while stack:
            name, pending = stack[-1]
            if pending:
                child = _open_folder(pending[-1], current)
                os.close(current)
                current = child
                stack.append((pending.pop(), _clear_files(current, left)))
                continue
            stack.pop()
            if name is not None:
                parent = os.open("..", FOLDER_FLAGS, dir_fd=current)
                os.close(current)
                current = parent
                os.rmdir(name, dir_fd=current)
    finally:
        os.close(current)
    os.rmdir(path)
