"""The sample students that `make demo` grades: one perfect, one with typical mistakes, one blank.

Each sample is built from the current release, so it always matches the
assignment: the perfect student types the reference solutions, the typical
student types them too except where noted, the blank student submits the
release untouched. tests/catalogue.py grades each typical mistake on its own.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from . import notebooks
from .common import open_api
from .release import generate

TYPICAL_MISTAKES = {
    "logistic_regression": {
        # Standardizes the new students with their own mean and standard deviation.
        "scale_hours": """\
scaler = StandardScaler().fit(hours_studied)
hours_studied_scaled = scaler.transform(hours_studied)
guessed_hours_scaled = StandardScaler().fit_transform(guessed_hours)""",
        # Takes column 0 of predict_proba, the probability of failing.
        "pass_probabilities": """\
passed_predictions = model.predict_proba(guessed_hours_scaled)[:, 0]
for hours, probability in zip(guessed_hours.ravel(), np.ravel(passed_predictions)):
    print(f"{hours:5.1f} hours studied: P(pass) = {probability:.3f}")""",
        # Uses math.exp, which only takes single numbers.
        "sigmoid": """\
import math

def sigmoid(z):
    return 1 / (1 + math.exp(-z))""",
        # Reports a percentage.
        "accuracy": """\
accuracy_2 = 100 * np.mean(passed_predictions_2 == passed_exam_2_test)
print(f"Test accuracy: {accuracy_2:.3f}")""",
        "reflection": "The model got most of the test students right, so it works well.",
    },
    "logistic_regression_from_scratch": {
        # Sums the log-loss instead of averaging it.
        "log_loss": """\
def log_loss(y, p):
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return -np.sum(y * np.log(p) + (1 - y) * np.log(1 - p))""",
        # Uses >= at the threshold.
        "predict_class": """\
def predict_class(probabilities, threshold=0.5):
    return (probabilities >= threshold).astype(int)""",
        "comparison": "My weights are the same as scikit-learn's.",
    },
    "logistic_regression_evaluation": {
        # Passes the predictions first, which transposes the confusion matrix.
        "confusion": """\
test_predictions = best_model.predict(X_test)
confusion = confusion_matrix(test_predictions, y_test)
print(confusion)""",
        # Tunes the threshold on the test set.
        "threshold": """\
cv_probabilities = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=best_C)),
                                     X_train, y_train, cv=cv, method="predict_proba")[:, 1]
fpr, tpr, cuts = roc_curve(y_test, test_probabilities)
threshold = cuts[tpr >= RECALL_TARGET].max()
print(f"chosen threshold: {threshold:.2f}")""",
        # Scores the predicted classes instead of the probabilities.
        "brier": """\
brier = brier_score_loss(y_test, test_predictions)
brier_baseline = brier_score_loss(y_test, np.full(len(y_test), y_train.mean()))
print(f"Brier score {brier:.4f}; always predicting the base rate: {brier_baseline:.4f}")""",
        "costs": "A false positive is worse because it worries the patient. My threshold is better.",
    },
}

STAGE = Path("/mnt")  # in as_user's private mount namespace only: where reachable folders wait
STUDENTS = {"ada": "perfect", "ben": "typical", "cy": "blank"}


def copy_course(repository, root):
    """A course at `root` with the config, tooling and sources of `repository`, every assignment generated."""
    repository, root = Path(repository), Path(root)
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(repository / "nbgrader_config.py", root)
    shutil.copytree(repository / "course", root / "course", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(repository / "source", root / "source", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    api = open_api(root)
    for assignment in sorted(path.name for path in (root / "source").iterdir() if path.is_dir()):
        generate(api, assignment)
    return api


def sample_notebook(course_root, assignment, kind):
    """The notebook a sample student of this kind submits."""
    root = Path(course_root)
    release = notebooks.read(root / "release" / assignment / f"{assignment}.ipynb")
    if kind == "blank":
        return release
    answers = notebooks.solutions(notebooks.read(root / "source" / assignment / f"{assignment}.ipynb"))
    if kind == "typical":
        answers.update(TYPICAL_MISTAKES.get(assignment, {}))
    return notebooks.fill(release, answers)


def student_nbgrader(student, home, exchange, course_id, *args, user=None):
    """Run an nbgrader command as a student would: in their home, under their name.

    nbgrader takes the student's id from the operating-system user name, so the
    command runs under Debian's nss_wrapper, which gives the user id the student's
    name. `user` (uid, gid) also switches to that user id (needs root); without
    it the command keeps this process's user id.
    """
    env = dict(
        os.environ, USER=student, LOGNAME=student, HOME=str(home), JUPYTER_CONFIG_DIR=str(Path(home) / ".jupyter")
    )
    env.update(named_user(student, user or (os.getuid(), os.getgid()), home))
    command = ["-m", "nbgrader", *args, f"--Exchange.root={exchange}", f"--CourseDirectory.course_id={course_id}"]
    return run_python(command, user, cwd=home, env=env)


def run_python(args, user=None, reachable=(), **options):
    """Run this Python with `args`; as `user` (uid, gid; needs root) when given.

    Another user may not be able to reach this Python: its virtual environment or the interpreter
    it was built from may lie under a folder closed to others (a clone in a 0700 folder, pyenv's
    Python under /root). `as_user` opens them, and the folders in `reachable`, to that user alone.
    """
    options = {"capture_output": True, "text": True, "timeout": 600, **options}
    env = dict(options.pop("env", os.environ))
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    command = [sys.executable, *args]
    if user is not None:
        command = as_user(command, user, [*python_folders(), *reachable])
    return subprocess.run(command, env=env, **options)


def python_folders():
    """The folders this Python needs: its virtual environment and the installation it was made from."""
    return [sys.prefix, sys.base_prefix]


def closed_folders(path):
    """The folders above `path` that other users cannot pass (no o+x for others), top first."""
    return [folder for folder in reversed(Path(path).parents) if not folder.stat().st_mode & 0o001]


def as_user(command, user, reachable=(), groups="--clear-groups", hidden=()):
    """argv that runs `command` as `user` (uid, gid; needs root), able to reach each folder of `reachable`.

    In a private mount namespace, each folder above a reachable one that others cannot pass is
    covered by an empty tmpfs anyone may enter (which also hides the rest of it), and the reachable
    folder is bind-mounted back at its own path. Each folder of `hidden` is covered by an empty
    tmpfs too (what is reachable in it comes back). Then setpriv drops to the user. Nothing changes
    outside the namespace. Arguments added after the returned argv reach `command`. `groups` is
    setpriv's option for the supplementary groups (--init-groups needs an account in /etc/passwd).
    """
    hidden = {Path(path).resolve() for path in hidden}
    folders = sorted({Path(path).resolve() for path in reachable}, key=lambda path: len(path.parts))
    folders = [folder for folder in folders if closed_folders(folder) or hidden & set(folder.parents)]
    covered = hidden | {closed for folder in folders for closed in closed_folders(folder)}
    lines = ["set -e"]
    if folders:
        lines.append(f"mkdir -p {STAGE} && mount -t tmpfs -o mode=0700 course-stage {STAGE}")
    for number, folder in enumerate(folders):
        if STAGE == folder or STAGE in folder.parents:
            raise ValueError(f"{folder} lies in {STAGE}, which as_user needs for itself")
        lines.append(f"mkdir {STAGE}/{number} && mount --rbind {shlex.quote(str(folder))} {STAGE}/{number}")
    # Top down: a folder's tmpfs comes before what is mounted below it.
    steps = [(folder, "-t tmpfs -o mode=0755 course-open") for folder in covered]
    steps += [(folder, f"--rbind {STAGE}/{number}") for number, folder in enumerate(folders)]
    for folder, source in sorted(steps, key=lambda step: (len(step[0].parts), "tmpfs" not in step[1])):
        lines.append(f"mkdir -p {shlex.quote(str(folder))} && mount {source} {shlex.quote(str(folder))}")
    if folders:
        lines.append(f"umount -l {STAGE}")
    switch = ["setpriv", f"--reuid={user[0]}", f"--regid={user[1]}", groups, "--"]
    lines.append(f'exec {shlex.join(switch)} "$@"')
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", "\n".join(lines), "sh", *command]


def named_user(student, user, home):
    """Environment under which nss_wrapper names the user id `student`."""
    library = next(iter(sorted(Path("/usr/lib").glob("*/libnss_wrapper.so"))), None)
    if library is None:
        raise RuntimeError("libnss_wrapper.so is missing: apt-get install libnss-wrapper (make does it)")
    passwd, group = Path(home) / ".passwd", Path(home) / ".group"
    passwd.write_text(f"{student}:x:{user[0]}:{user[1]}::{home}:/bin/sh\n")
    group.write_text(f"{student}:x:{user[1]}:\n")
    return {"LD_PRELOAD": str(library), "NSS_WRAPPER_PASSWD": str(passwd), "NSS_WRAPPER_GROUP": str(group)}


def fetch_and_submit(course_root, exchange, course_id, assignment, student, kind, home, user=None):
    """A sample student fetches the assignment, answers it as their kind does, and submits it."""
    fetched = student_nbgrader(student, home, exchange, course_id, "fetch_assignment", assignment, user=user)
    path = Path(home) / assignment / f"{assignment}.ipynb"
    if not path.is_file():
        raise RuntimeError(f"{student} could not fetch {assignment}: {fetched.stderr[-500:]}")
    notebooks.write(sample_notebook(course_root, assignment, kind), path)
    submitted = student_nbgrader(student, home, exchange, course_id, "submit", assignment, user=user)
    if submitted.returncode != 0:
        raise RuntimeError(f"{student} could not submit {assignment}: {submitted.stderr[-500:]}")
