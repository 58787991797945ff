"""Student folders are read without following links: unit tests of course/studentfiles.py."""

import os

import pytest

from course.studentfiles import InvalidSubmission, copy_folder, read_folder, write_folder


def test_plain_folder_is_copied(tmp_path):
    source = tmp_path / "submitted"
    (source / "data").mkdir(parents=True)
    (source / "notebook.ipynb").write_text("{}")
    (source / "data" / "x.csv").write_text("1,2\n")
    (source / "__pycache__").mkdir()
    (source / "__pycache__" / "stale.pyc").write_bytes(b"x")
    assert copy_folder(source, tmp_path / "copy", 1 << 20) == ["data/x.csv", "notebook.ipynb"]
    assert (tmp_path / "copy" / "data" / "x.csv").read_text() == "1,2\n"


@pytest.mark.parametrize(
    "plant, message",
    [
        (lambda folder, secret: (folder / "answers.ipynb").symlink_to(secret), "symbolic link"),
        (lambda folder, secret: (folder / "data").symlink_to(secret.parent), "symbolic link"),
        (lambda folder, secret: os.link(secret, folder / "copy.txt"), "hard link"),
        (lambda folder, secret: os.mkfifo(folder / "pipe"), "FIFO"),
    ],
)
def test_links_and_special_files_are_refused_unread(tmp_path, plant, message):
    secret = tmp_path / "instructor" / "gradebook.db"
    secret.parent.mkdir()
    secret.write_text("SECRET")
    folder = tmp_path / "submitted"
    folder.mkdir()
    (folder / "notebook.ipynb").write_text("{}")
    plant(folder, secret)
    with pytest.raises(InvalidSubmission, match=message):
        read_folder(folder, 1 << 20)


def test_deep_and_large_folders_are_refused(tmp_path):
    deep = tmp_path / "deep"
    path = deep
    for _ in range(40):
        path = path / "d"
    path.mkdir(parents=True)
    with pytest.raises(InvalidSubmission, match="nested"):
        read_folder(deep, 1 << 20)
    big = tmp_path / "big"
    big.mkdir()
    (big / "a").write_bytes(b"x" * 600)
    (big / "b").write_bytes(b"x" * 600)
    with pytest.raises(InvalidSubmission, match="larger than 1000 bytes"):
        read_folder(big, 1000)


def test_paths_cannot_leave_the_destination(tmp_path):
    with pytest.raises(InvalidSubmission, match="outside"):
        write_folder({"../escaped.txt": b"x"}, tmp_path / "dest")
    assert not (tmp_path / "escaped.txt").exists()


def test_remove_tree_takes_deep_locked_and_linked_trees_without_recursion(tmp_path):
    import sys

    from course.studentfiles import remove_tree

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(300)  # a recursive removal would fail at this depth; an iterative one does not care
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("kept")
    tree = tmp_path / "tree"
    tree.mkdir()
    current = os.open(tree, os.O_RDONLY)
    for _ in range(600):
        os.mkdir("d", dir_fd=current)
        child = os.open("d", os.O_RDONLY, dir_fd=current)
        os.close(current)
        current = child
    os.symlink(outside, "link", dir_fd=current)
    os.mkfifo("fifo", dir_fd=current)
    os.close(current)
    (tree / "locked").mkdir()
    (tree / "locked" / "file").write_text("x")
    (tree / "locked").chmod(0)
    try:
        remove_tree(tree)
    finally:
        sys.setrecursionlimit(limit)
    assert not tree.exists() and (outside / "keep.txt").read_text() == "kept"


def test_remove_tree_gives_up_past_its_budget(tmp_path):
    from course.studentfiles import remove_tree

    for number in range(20):
        (tmp_path / "many" / str(number)).mkdir(parents=True)
    with pytest.raises(OSError, match="too many"):
        remove_tree(tmp_path / "many", max_entries=10)
