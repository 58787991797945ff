"""Autograde several students at once; only this process writes the gradebook.

Each student is graded by stock `nbgrader autograde` in a worker process, in a
throw-away copy of the course: the config and tooling, the assignment's source,
the student's submission and a snapshot of the gradebook. The worker hands back
plain data, the autograded files and each cell's results, and the coordinator
records them in the real gradebook through nbgrader's API. A worker that fails
or is killed costs that one student, who is reported and can be regraded alone.
"""

import base64
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from nbgrader.api import Gradebook

from .gradebook import gradebook_path

WORKER_TIMEOUT = 3600


def copy_for_worker(root, assignment, student, snapshot, workdir):
    """The files one student's grading needs, copied into `workdir`."""
    root, workdir = Path(root), Path(workdir)
    shutil.copy(root / "nbgrader_config.py", workdir)
    shutil.copytree(root / "course", workdir / "course", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(root / "source" / assignment, workdir / "source" / assignment)
    shutil.copytree(root / "submitted" / student / assignment, workdir / "submitted" / student / assignment)
    shutil.copy(snapshot, workdir / "gradebook.db")


def read_results(workdir, course_id, assignment, student):
    """The worker's grading as plain data: files (base64) and per-notebook, per-cell results."""
    workdir = Path(workdir)
    graded = workdir / "autograded" / student / assignment
    files = {str(path.relative_to(graded)): base64.b64encode(path.read_bytes()).decode()
             for path in sorted(graded.rglob("*")) if path.is_file()}
    with Gradebook(f"sqlite:///{workdir / 'gradebook.db'}", course_id) as gradebook:
        submission = gradebook.find_submission(assignment, student)
        notebooks = {
            notebook.name: {
                "grades": {g.name: [g.auto_score, g.needs_manual_grade] for g in notebook.grades},
                "comments": {c.name: c.auto_comment for c in notebook.comments},
                "late_submission_penalty": notebook.late_submission_penalty,
            } for notebook in submission.notebooks}
        timestamp = submission.timestamp.isoformat() if submission.timestamp else None
    return {"files": files, "notebooks": notebooks, "timestamp": timestamp}


def grade_in_copy(root, course_id, assignment, student, snapshot):
    """Worker: grade one student with stock nbgrader in a private copy; return plain data."""
    with tempfile.TemporaryDirectory(prefix=f"grade-{student}-") as workdir:
        copy_for_worker(root, assignment, student, snapshot, workdir)
        env = dict(os.environ, PATH=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
        run = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", assignment, f"--student={student}",
                              "--force"], cwd=workdir, env=env, capture_output=True, text=True,
                             timeout=WORKER_TIMEOUT)
        if run.returncode != 0:
            raise RuntimeError(run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "autograde failed")
        return read_results(workdir, course_id, assignment, student)


def record(api, assignment, student, results):
    """Coordinator: put a worker's autograded files in place and its results in the gradebook."""
    graded = Path(api.coursedir.root) / "autograded" / student / assignment
    shutil.rmtree(graded, ignore_errors=True)
    for name, data in results["files"].items():
        (graded / name).parent.mkdir(parents=True, exist_ok=True)
        (graded / name).write_bytes(base64.b64decode(data))
    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gradebook:
        gradebook.update_or_create_student(student)
        timestamp = {"timestamp": results["timestamp"]} if results["timestamp"] else {}
        gradebook.update_or_create_submission(assignment, student, **timestamp)
        for notebook_name, notebook in results["notebooks"].items():
            submitted = gradebook.find_submission_notebook(notebook_name, assignment, student)
            for grade in submitted.grades:
                grade.auto_score, grade.needs_manual_grade = notebook["grades"][grade.name]
            for comment in submitted.comments:
                comment.auto_comment = notebook["comments"][comment.name]
            submitted.late_submission_penalty = notebook["late_submission_penalty"]
        gradebook.db.commit()


def grade_parallel(api, assignment, students, jobs, on_done=None):
    """Grade `students` with `jobs` worker processes; return {student: result dict} like api.autograde."""
    root = Path(api.coursedir.root)
    results = {}
    with tempfile.TemporaryDirectory(prefix="gradebook-snapshot-") as scratch:
        snapshot = Path(scratch) / "gradebook.db"
        shutil.copy(gradebook_path(api), snapshot)
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            futures = {pool.submit(grade_in_copy, root, api.coursedir.course_id, assignment, student, snapshot):
                       student for student in students}
            for future in as_completed(futures):
                student = futures[future]
                try:
                    record(api, assignment, student, future.result())
                    results[student] = {"success": True}
                except Exception as error:  # a failed or killed worker costs this student only
                    results[student] = {"success": False, "error": f"{type(error).__name__}: {error}"}
                if on_done:
                    on_done(student, results[student])
    return results
