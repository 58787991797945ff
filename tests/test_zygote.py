"""The sandbox's wipe (course/sandbox/scratch.py): iterative, never following links, never raising."""

import functools
import os
import subprocess
import sys

import pytest

from course.sandbox import scratch as sandbox_scratch

from conftest import REPO


def deep_tree(folder, depth):
    current = os.open(folder, os.O_RDONLY)
    for _ in range(depth):
        os.mkdir("d", dir_fd=current)
        child = os.open("d", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = child
    os.close(current)


def test_wipe_empties_deep_locked_and_linked_trees(tmp_path):
    scratch, outside, kept = tmp_path / "scratch", tmp_path / "outside", tmp_path / "scratch" / "venv" / "bin"
    kept.mkdir(parents=True)
    outside.mkdir()
    (outside / "keep.txt").write_text("kept")
    deep_tree(scratch, 600)
    (scratch / "link").symlink_to(outside)
    (scratch / "venv" / "planted").write_text("x")
    (scratch / "locked").mkdir()
    (scratch / "locked").chmod(0)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(300)  # a recursive wipe would fail at this depth; an iterative one does not care
    try:
        assert sandbox_scratch.empty_folder(scratch, keep={kept}) is True
    finally:
        sys.setrecursionlimit(limit)
    assert sorted(p.relative_to(scratch).as_posix() for p in scratch.rglob("*")) == ["venv", "venv/bin"]
    assert (outside / "keep.txt").read_text() == "kept"


def test_a_tree_too_large_to_wipe_is_reported_not_raised(tmp_path, monkeypatch):
    """The server then stops, and the worker starts a fresh sandbox for the next student."""
    for number in range(30):
        (tmp_path / "scratch" / "many" / str(number)).mkdir(parents=True)
    monkeypatch.setattr(sandbox_scratch, "remove_tree", functools.partial(sandbox_scratch.remove_tree, max_entries=10))
    assert sandbox_scratch.empty_folder(tmp_path / "scratch") is False


def test_system_v_ipc_objects_are_removed_without_starting_a_process():
    """As `ipcrm --all` did, in an IPC namespace of its own (the sandbox has one): no object is left."""
    script = (
        "ipcmk --shmem 4096 >/dev/null && ipcmk --semaphore 2 >/dev/null && ipcmk --queue >/dev/null && "
        f"{sys.executable} -c 'from course.sandbox.scratch import remove_ipc_objects; print(remove_ipc_objects())' && "
        "ipcs"
    )
    map_root = [] if os.geteuid() == 0 else ["--map-root-user"]
    run = subprocess.run(
        ["unshare", "--ipc", *map_root, "sh", "-c", script],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
        timeout=60,
    )
    if run.returncode != 0 and "unshare" in run.stderr:
        pytest.skip(f"no IPC namespace here: {run.stderr.strip()}")
    assert run.returncode == 0, run.stderr
    left, *listing = run.stdout.splitlines()
    assert left == "0" and "0x" not in "\n".join(listing), run.stdout
