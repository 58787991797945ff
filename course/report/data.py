"""What the grade report shows, read from the gradebook (never created) and the autograded notebooks."""

import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from .. import notebooks
from ..common import check_assignment
from ..gradebook import cell_scores, exercise_of, open_gradebook, recorded_assignment, student_totals
from ..scores import exercise_order

RUN_FAILURES = {
    "KernelFailure": "the kernel died or stopped answering; the cells after it were not run",
    "CellTimeoutError": "a cell hit the time limit and was interrupted",
}
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EPSILON = 1e-9


@dataclass
class Exercise:
    name: str
    max_score: float
    scores: list = field(default_factory=list)  # of the students whose grade is in
    pending: int = 0  # students still waiting for a manual grade

    @property
    def mean(self):
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def lost(self):
        return sum(score < self.max_score - EPSILON for score in self.scores)


@dataclass
class ReportData:
    assignment: str
    max_score: float
    exercises: list  # of Exercise, in notebook order
    totals: (
        dict  # {student: final score (gradebook.Total.final), after any late penalty} of every autograded submission
    )
    penalties: dict  # {student: late-submission penalty} where there is one
    pending: dict  # {student: [cells waiting for a manual grade]}
    messages: dict  # {exercise: {message: set of students}}
    failed: dict  # {student: [reasons]}: not autograded, kernel failure or timeout
    submitted: int  # submissions in submitted/ or in the gradebook

    @property
    def lost_by_exercise(self):
        return {exercise.name: exercise.lost for exercise in self.exercises}


@dataclass
class Recorded:
    """What the gradebook holds on an assignment."""

    max_score: float
    layout: dict  # {notebook: (answer cell names, grade cell names)}
    exercise_max: dict  # {exercise: points}
    table: dict  # cell_scores: {student: {exercise: (score, max_score, needs_manual_grade)}}
    pending_cells: dict  # {student: [cells waiting for a manual grade]}
    totals: dict  # {student: gradebook.Total}


def number(value):
    """A score as the report shows it: at most two decimals, '–' for none."""
    return "–" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def failure_message(output):
    """The first line of 'ename: evalue', without terminal colours."""
    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
    text = ANSI.sub("", text).strip()
    return text.splitlines()[0] if text else "Error"


def autograded_paths(api, student, assignment, notebook_names):
    """{notebook name: path} of the student's autograded notebooks that exist."""
    folder = Path(api.coursedir.format_path(api.coursedir.autograded_directory, student, assignment))
    return {name: folder / f"{name}.ipynb" for name in notebook_names if (folder / f"{name}.ipynb").is_file()}


def read_gradebook(api, assignment):
    """The assignment's notebooks, points, cell scores, manual grades to do and late penalties."""
    with open_gradebook(api) as gradebook:
        recorded = recorded_assignment(gradebook, assignment)
        layout, exercise_max = {}, {}
        for notebook in recorded.notebooks:
            answers = {cell.name for cell in notebook.solution_cells}
            layout[notebook.name] = (answers, {cell.name for cell in notebook.grade_cells})
            for cell in notebook.grade_cells:
                name = exercise_of(cell.name, answers)
                exercise_max[name] = exercise_max.get(name, 0.0) + cell.max_score
        table = cell_scores(gradebook, assignment)
        pending_cells = {
            submission.student.id: manual_cells(submission)
            for submission in gradebook.assignment_submissions(assignment)
        }
        totals = student_totals(gradebook, assignment)
        return Recorded(float(recorded.max_score or 0.0), layout, exercise_max, table, pending_cells, totals)


def manual_cells(submission):
    """The cells of `submission` waiting for a manual grade, named by notebook when there are several."""
    several = len(submission.notebooks) > 1
    return [
        f"{notebook.name}: {grade.name}" if several else grade.name
        for notebook in sorted(submission.notebooks, key=lambda n: n.name)
        for grade in sorted(notebook.grades, key=lambda g: g.name)
        if grade.needs_manual_grade
    ]


def note_failures(path, student, answers, grade_cells, messages):
    """Add the student's failure messages in the notebook at `path` to `messages`; return the run failures."""
    reasons, seen = [], set()
    for cell in notebooks.read(path).cells:
        cell_name = notebooks.grade_id(cell)
        for output in cell.get("outputs", []):
            if output.get("output_type") != "error":
                continue
            message = failure_message(output)
            if cell_name in grade_cells:
                messages[exercise_of(cell_name, answers)][message].add(student)
            ename = output.get("ename")
            if ename in RUN_FAILURES and ename not in seen:
                seen.add(ename)
                where = f"cell {cell_name}" if cell_name else "an unnamed cell"
                reasons.append(f"{RUN_FAILURES[ename]} (first in {where}: {message})")
    return reasons


def add_scores(exercises, scores):
    """Count one student's {exercise: (score, max_score, needs_manual_grade)} in `exercises`."""
    for name, (score, _, manual) in scores.items():
        exercise = exercises.setdefault(name, Exercise(name, 0.0))
        if manual:
            exercise.pending += 1
        else:
            exercise.scores.append(score)


def report_data(api, assignment):
    """Everything the report shows, read from the gradebook and the autograded notebooks."""
    check_assignment(api, assignment)
    recorded = read_gradebook(api, assignment)
    order = [name for name in exercise_order(api, assignment) if name in recorded.exercise_max]
    order += [name for name in recorded.exercise_max if name not in order]
    exercises = {name: Exercise(name, recorded.exercise_max[name]) for name in order}
    students = set(recorded.table) | set(api.get_submitted_students(assignment))
    totals, penalties, pending, failed = {}, {}, {}, {}
    messages = defaultdict(lambda: defaultdict(set))

    for student in sorted(students):
        paths = autograded_paths(api, student, assignment, recorded.layout)
        if student not in recorded.table:
            failed[student] = [
                "submitted but not in the gradebook: not graded yet, or its grading failed "
                "(course grade names the reason): grade it again, or grade it by hand"
            ]
            continue
        if not paths:
            failed[student] = [
                "nbgrader could not autograde this submission (no autograded notebook; "
                "see the autograde log): fix it and grade it again, or grade it by hand"
            ]
            continue
        reasons = [f"no autograded notebook {name}.ipynb" for name in recorded.layout if name not in paths]
        total = recorded.totals[student]
        totals[student] = total.final
        if total.penalty:
            penalties[student] = total.penalty
        add_scores(exercises, recorded.table[student])
        if recorded.pending_cells.get(student):
            pending[student] = recorded.pending_cells[student]
        for notebook_name, path in paths.items():
            reasons += note_failures(path, student, *recorded.layout[notebook_name], messages)
        if reasons:
            failed[student] = reasons

    return ReportData(
        assignment=assignment,
        max_score=recorded.max_score,
        exercises=list(exercises.values()),
        totals=totals,
        penalties=penalties,
        pending=pending,
        messages={name: dict(found) for name, found in messages.items()},
        failed=failed,
        submitted=len(students),
    )
