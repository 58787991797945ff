"""Collect submissions from the exchange into submitted/, trusting nothing a student can set.

nbgrader's exchange keeps each submission as an inbound entry named
`<student>+<assignment>+<timestamp>+<random>`, in a folder every student may
write to, holding a `timestamp.txt` the student owns. So here:

- an entry counts for the student it names only if that student owns it (the
  entry's uid is the student's account); nbgrader's own check only warns;
- an entry holding links, special files or more than the caps allow
  (course/limits.py) is refused, and the student's latest sound entry is taken;
- the submission time is when the student last changed the entry, as the file
  system records it (the latest change time of the entry, its files and their
  folders, which no one but root can set back), not the student's `timestamp.txt`.

The collected folder is what nbgrader's collect makes, with that time in
`timestamp.txt`. Every refusal and every `timestamp.txt` that disagrees with the
recorded time is reported, one line each.
"""

import os
import pwd
import shutil
import stat
from datetime import UTC, datetime
from pathlib import Path

from nbgrader.utils import parse_utc

from .common import CourseError, check_assignment, exchange_root
from .limits import SubmissionLimits
from .studentfiles import InvalidSubmission, read_folder, walk, write_folder

TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f %Z"  # as nbgrader's submit writes it
TOLERANCE_SECONDS = 60  # a student's timestamp.txt within this of the recorded time agrees


def inbound_entries(folder, assignment):
    """{student: [entry path]} of the inbound entries named for `assignment`."""
    entries = {}
    for path in folder.iterdir():
        parts = path.name.rsplit("+", 3)
        if len(parts) == 4 and parts[1] == assignment:
            entries.setdefault(parts[0], []).append(path)
    return entries


def entry_problem(student, info, check_owner):
    """Why an inbound entry with lstat `info` cannot be `student`'s submission, or None."""
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if student in ("", ".", ".."):
        return "it names no valid student id"
    return owner_problem(student, info.st_uid) if check_owner else None


def owner_problem(student, uid):
    """Why an entry owned by `uid` cannot be `student`'s, or None when it is theirs."""
    try:
        account = pwd.getpwnam(student)
    except KeyError:
        return f"it names {student!r}, who has no account on this machine (it is owned by {user_name(uid)})"
    if account.pw_uid != uid:
        return f"it names {student} but is owned by {user_name(uid)}"
    return None


def user_name(uid):
    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


def changed(entry):
    """When the entry, a file in it or a folder holding one last changed (UTC); links are refused."""
    times = [os.lstat(entry).st_ctime]
    for relative, info in walk(entry):
        times.append(info.st_ctime)
        times += [os.lstat(entry / parent).st_ctime for parent in Path(relative).parents if parent != Path(".")]
    return datetime.fromtimestamp(max(times), UTC)


def stated_time(files):
    """The time the student's own timestamp.txt states (UTC), or why there is none."""
    if "timestamp.txt" not in files:
        return None, "it has no timestamp.txt"
    try:
        return parse_utc(files["timestamp.txt"].decode().strip()).replace(tzinfo=UTC), None
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None, "its timestamp.txt is not a time"


def recorded_time(folder):
    """The submission time in an already collected folder, or None."""
    try:
        return parse_utc((folder / "timestamp.txt").read_text().strip()).replace(tzinfo=UTC)
    except (OSError, UnicodeDecodeError, ValueError, OverflowError):
        return None


def take(entry, destination, limits):
    """Copy `entry` to `destination` unless it is no newer than what is there; return notes on its time."""
    limits.check(entry)
    files = read_folder(entry, limits.max_submission_bytes)
    when = changed(entry)  # after reading: a change while it was read counts
    stated, problem = stated_time(files)
    if problem is None and abs((stated - when).total_seconds()) > TOLERANCE_SECONDS:
        problem = f"its timestamp.txt says {stated:%Y-%m-%d %H:%M:%S} UTC"
    notes = [f"{problem}; the exchange recorded {when:%Y-%m-%d %H:%M:%S} UTC, which counts"] if problem else []
    existing = recorded_time(destination)
    if existing is None or when > existing:
        shutil.rmtree(destination, ignore_errors=True)
        write_folder({**files, "timestamp.txt": when.strftime(TIME_FORMAT).encode()}, destination)
    return notes


def collect(api, assignment):
    """Collect each student's latest sound entry; return (students in submitted/, report lines).

    c.ExchangeCollect.check_owner (nbgrader's setting, default True) turns the owner check off,
    for an exchange where every student shares one account (the demo).
    """
    check_assignment(api, assignment)
    inbound = exchange_root(api) / api.coursedir.course_id / "inbound"
    if not inbound.is_dir():
        raise CourseError(f"no inbound folder {inbound}: release an assignment first")
    check_owner = api.config.get("ExchangeCollect", {}).get("check_owner", True)
    limits = SubmissionLimits(config=api.config)
    lines = []
    for student, entries in sorted(inbound_entries(inbound, assignment).items()):
        sound = []
        for entry in entries:
            try:
                info = os.lstat(entry)
            except FileNotFoundError:  # removed since it was listed
                continue
            problem = entry_problem(student, info, check_owner)
            if problem:
                lines.append(f"refused inbound entry {entry.name}: {problem}")
            else:
                sound.append((info.st_ctime, entry))
        destination = Path(api.coursedir.format_path(api.coursedir.submitted_directory, student, assignment))
        for _, entry in sorted(sound, reverse=True):
            try:
                lines += [f"{student}: {note} ({entry.name})" for note in take(entry, destination, limits)]
                break
            except (InvalidSubmission, OSError) as error:  # OSError: the student changed it while it was read
                lines.append(f"refused {student}'s inbound entry {entry.name}: {error}")
    return sorted(api.get_submitted_students(assignment)), lines
