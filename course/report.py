"""Grade report: one offline HTML page, with figures, on how the class did on an assignment.

reports/<assignment>/index.html shows the distribution of total scores, the
mean score of each exercise, the failure messages students met most often,
the manual grading still to do, and the submissions that failed to run. The
scores come from the gradebook (read, never created); the failure messages
come from the autograded notebooks.
"""

import html
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, MultipleLocator  # noqa: E402

from . import notebooks  # noqa: E402
from .gradebook import cell_scores, exercise_of, open_gradebook, recorded_assignment  # noqa: E402
from .common import check_assignment  # noqa: E402
from .csp import csp_meta  # noqa: E402
from .scores import exercise_order  # noqa: E402

# Okabe-Ito colours: distinguishable with every common colour-vision deficiency.
BLUE, ORANGE, VERMILLION = "#0072B2", "#E69F00", "#D55E00"
TOTALS_FIGURE, EXERCISES_FIGURE = "total_scores.png", "exercise_means.png"
TOP_MESSAGES = 5
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
    totals: dict  # {student: total score, after any late penalty} of every autograded submission
    penalties: dict  # {student: late-submission penalty} where there is one
    pending: dict  # {student: [cells waiting for a manual grade]}
    messages: dict  # {exercise: {message: set of students}}
    failed: dict  # {student: [reasons]}: not autograded, kernel failure or timeout
    submitted: int  # submissions in submitted/ or in the gradebook

    @property
    def lost_by_exercise(self):
        return {exercise.name: exercise.lost for exercise in self.exercises}


def failure_message(output):
    """The first line of 'ename: evalue', without terminal colours."""
    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip().rstrip(":")
    text = ANSI.sub("", text).strip()
    return text.splitlines()[0] if text else "Error"


def _autograded_paths(api, student, assignment, notebook_names):
    folder = Path(api.coursedir.format_path(api.coursedir.autograded_directory, student, assignment))
    return {name: folder / f"{name}.ipynb" for name in notebook_names if (folder / f"{name}.ipynb").is_file()}


def collect(api, assignment):
    """Everything the report shows, read from the gradebook and the autograded notebooks."""
    check_assignment(api, assignment)
    with open_gradebook(api) as gradebook:
        recorded = recorded_assignment(gradebook, assignment)
        max_score = float(recorded.max_score or 0.0)
        layout = {}  # {notebook: (answer cell names, grade cell names)}
        exercise_max = {}
        for notebook in recorded.notebooks:
            answers = {cell.name for cell in notebook.solution_cells}
            layout[notebook.name] = (answers, {cell.name for cell in notebook.grade_cells})
            for cell in notebook.grade_cells:
                name = exercise_of(cell.name, answers)
                exercise_max[name] = exercise_max.get(name, 0.0) + cell.max_score
        table = cell_scores(gradebook, assignment)
        pending_cells, late = {}, {}
        for submission in gradebook.assignment_submissions(assignment):
            late[submission.student.id] = submission.late_submission_penalty or 0.0
            several = len(submission.notebooks) > 1
            pending_cells[submission.student.id] = [
                f"{notebook.name}: {grade.name}" if several else grade.name
                for notebook in sorted(submission.notebooks, key=lambda n: n.name)
                for grade in sorted(notebook.grades, key=lambda g: g.name) if grade.needs_manual_grade]

    order = [name for name in exercise_order(api, assignment) if name in exercise_max]
    order += [name for name in exercise_max if name not in order]
    exercises = {name: Exercise(name, exercise_max[name]) for name in order}
    submitted_students = set(api.get_submitted_students(assignment))
    totals, penalties, pending, failed = {}, {}, {}, {}
    messages = defaultdict(lambda: defaultdict(set))

    for student in sorted(set(table) | submitted_students):
        paths = _autograded_paths(api, student, assignment, layout)
        if student not in table:
            failed[student] = ["submitted but not autograded yet: run the grading"]
            continue
        if not paths:
            failed[student] = ["nbgrader could not autograde this submission (no autograded notebook; "
                               "see the autograde log): fix it and grade it again, or grade it by hand"]
            continue
        reasons = [f"no autograded notebook {name}.ipynb" for name in layout if name not in paths]
        # As nbgrader's CSV export: the sum of the cell scores less the late penalty, at least 0.
        totals[student] = max(0.0, sum(score for score, _, _ in table[student].values()) - late[student])
        if late[student]:
            penalties[student] = late[student]
        for name, (score, _, manual) in table[student].items():
            exercise = exercises.setdefault(name, Exercise(name, 0.0))
            if manual:
                exercise.pending += 1
            else:
                exercise.scores.append(score)
        if pending_cells.get(student):
            pending[student] = pending_cells[student]
        for notebook_name, path in paths.items():
            answers, grade_cells = layout[notebook_name]
            seen = set()
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
        if reasons:
            failed[student] = reasons

    return ReportData(assignment=assignment, max_score=max_score, exercises=list(exercises.values()),
                      totals=totals, penalties=penalties, pending=pending,
                      messages={name: dict(found) for name, found in messages.items()},
                      failed=failed, submitted=len(set(table) | submitted_students))


# ---------------------------------------------------------------- figures

def _style():
    return plt.rc_context({"font.size": 11, "axes.titlesize": 13, "axes.spines.top": False,
                           "axes.spines.right": False, "svg.hashsalt": "report"})


def _save(fig, path):
    try:
        fig.savefig(path, dpi=100, metadata={"Software": None})
    finally:
        plt.close(fig)


def plot_totals(data, path):
    """Histogram of total scores, one bar per point (or per few points on long assignments)."""
    totals = list(data.totals.values())
    top = max([data.max_score, *totals, 1.0])
    step = max(1, int(-(-top // 30)))  # at most about 30 bars
    edges = [k * step - step / 2 for k in range(int(top // step) + 2)]
    with _style():
        fig, ax = plt.subplots(figsize=(8, 4.6))
        ax.hist(totals, bins=edges, color=BLUE, edgecolor="white")
        ax.axvline(data.max_score, color=VERMILLION, linestyle="--", linewidth=2,
                   label=f"maximum possible: {data.max_score:g}")
        mean = statistics.fmean(totals)
        ax.axvline(mean, color=ORANGE, linestyle=":", linewidth=2.5, label=f"class mean: {mean:.1f}")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, None)
        ax.xaxis.set_major_locator(MultipleLocator(step) if top / step <= 25 else MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("total score (points)")
        ax.set_ylabel("students")
        ax.set_title(f"{data.assignment}: total scores of {len(totals)} "
                     f"student{'s' if len(totals) != 1 else ''}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
        fig.tight_layout()
        _save(fig, path)


def plot_exercises(data, path):
    """Horizontal bars: mean score of each exercise as a fraction of its points."""
    exercises = data.exercises
    with _style():
        fig, ax = plt.subplots(figsize=(9, 1.4 + 0.42 * len(exercises)))
        positions = range(len(exercises))
        fractions = [(e.mean / e.max_score) if e.mean is not None and e.max_score else 0.0 for e in exercises]
        colours = [BLUE if e.mean is not None else "white" for e in exercises]
        ax.barh(positions, [1.0] * len(exercises), color="#EEEEEE", height=0.7)
        ax.barh(positions, fractions, color=colours, height=0.7)
        for y, exercise in zip(positions, exercises):
            if exercise.mean is None:
                label = f"{exercise.pending} waiting for manual grading"
            else:
                label = (f"{_number(exercise.mean)} / {exercise.max_score:g} pts; "
                         f"{exercise.lost} of {len(exercise.scores)} lost points")
                if exercise.pending:
                    label += f"\n{exercise.pending} waiting for manual grading"
            ax.text(1.02, y, label, va="center", fontsize=9, color="#333333")
        ax.set_yticks(list(positions), [e.name for e in exercises])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"])
        ax.set_xlabel("mean score (share of the exercise's points)")
        ax.set_ylabel("exercise")
        ax.set_title(f"{data.assignment}: mean score per exercise ({len(data.totals)} "
                     f"student{'s' if len(data.totals) != 1 else ''})")
        fig.tight_layout()
        fig.subplots_adjust(right=0.62)
        _save(fig, path)


# ---------------------------------------------------------------- page

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem;
       color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; }
h3 { font-size: 1.05rem; margin-bottom: .3rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; } table.wide { width: 100%; }
table.messages td:nth-child(2) { width: 5rem; } table.messages td:nth-child(3) { width: 14rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
th { background: #f2f2f2; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td code { white-space: pre-wrap; word-break: break-word; }
img { max-width: 100%; height: auto; }
.lost { color: #D55E00; font-weight: bold; } .muted { color: #666; }
"""


def _e(value):
    return html.escape(str(value))


def _number(value):
    return "–" if value is None else f"{value:.2f}".rstrip("0").rstrip(".")


def _table(table_id, headers, rows, numeric=(), css=None):
    """An HTML table; `rows` hold already escaped HTML; columns in `numeric` are right-aligned."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class=\"num\">{v}</td>" if i in numeric else f"<td>{v}</td>"
                                    for i, v in enumerate(row)) + "</tr>\n" for row in rows)
    css = f' class="{css}"' if css else ""
    return f'<table id="{table_id}"{css}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}</tbody></table>'


def _names(students, limit=10):
    names = sorted(students)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def _summary(data):
    totals = list(data.totals.values())
    parts = [f"{_plural(len(totals), 'student')} autograded, out of {data.max_score:g} points: "
             f"mean {_number(statistics.fmean(totals))}, median {_number(statistics.median(totals))}, "
             f"lowest {_number(min(totals))}, highest {_number(max(totals))}."]
    if data.pending:
        parts.append(f"{_plural(len(data.pending), 'student')} still {'waits' if len(data.pending) == 1 else 'wait'}"
                     " for manual grading: their totals count those cells as 0 for now.")
    if data.penalties:
        parts.append(f"{_plural(len(data.penalties), 'late submission')} lost "
                     f"{_number(sum(data.penalties.values()))} points in all to late penalties; "
                     "the totals are after the penalties.")
    left_out = sorted(set(data.failed) - set(data.totals))
    if left_out:
        verb = "is" if len(left_out) == 1 else "are"
        parts.append(f"{_plural(len(left_out), 'submission')} without an autograded notebook {verb} "
                     "left out of the scores (see the last section).")
    return "<p>" + " ".join(_e(p) for p in parts) + "</p>"


def _totals_section(data):
    headers, numeric = ["student", "total score"], {1}
    rows = [[_e(student), _number(total)] for student, total in sorted(data.totals.items())]
    if data.penalties:
        headers, numeric = headers + ["late penalty"], {1, 2}
        rows = [row + [_number(data.penalties.get(student, 0.0))] for row, student in zip(rows, sorted(data.totals))]
    return (f'<h2 id="total-scores">Total scores</h2>\n{_summary(data)}\n'
            f'<img src="{TOTALS_FIGURE}" alt="Histogram of the total scores of {len(data.totals)} students, '
            f'out of {data.max_score:g} points">\n'
            f"<details><summary>Total score of each student</summary>\n"
            f"{_table('totals', headers, rows, numeric=numeric)}\n</details>")


def _exercises_section(data):
    rows = []
    for e in data.exercises:
        share = f"{100 * e.mean / e.max_score:.0f}%" if e.mean is not None and e.max_score else "–"
        lost = f'<span class="lost">{e.lost}</span>' if e.lost else "0"
        rows.append([f"<code>{_e(e.name)}</code>", f"{e.max_score:g}", _number(e.mean), share,
                     lost if e.scores else "–", str(e.pending) if e.pending else ""])
    table = _table("exercises", ["exercise", "points", "mean score", "mean %", "students who lost points",
                                 "manual grading pending"], rows, numeric={1, 2, 3, 4, 5})
    return (f'<h2 id="exercises">Mean score per exercise</h2>\n'
            f'<img src="{EXERCISES_FIGURE}" alt="Bar chart of the mean score of each exercise">\n'
            f"<p class=\"muted\">Means are over the students whose grade for the exercise is in; "
            f"a student lost points when they scored less than the exercise's maximum.</p>\n{table}")


def _messages_section(data):
    parts = ['<h2 id="failures">What the class got wrong</h2>',
             f"<p class=\"muted\">The {TOP_MESSAGES} most frequent failure messages of each exercise's tests, "
             "with the number of students who got each one.</p>"]
    names = [e.name for e in data.exercises] + sorted(set(data.messages) - {e.name for e in data.exercises})
    shown = 0
    for name in names:
        found = data.messages.get(name)
        if not found:
            continue
        shown += 1
        ranked = sorted(found.items(), key=lambda item: (-len(item[1]), item[0]))
        rows = [[f"<code>{_e(message)}</code>", str(len(students)), _e(_names(students))]
                for message, students in ranked[:TOP_MESSAGES]]
        lost = data.lost_by_exercise.get(name)
        note = f' <span class="muted">({lost} of {_plural(len(data.totals), "student")} lost points)</span>' \
            if lost is not None else ""
        parts.append(f'<h3 id="failures-{_e(name)}"><code>{_e(name)}</code>{note}</h3>')
        parts.append(_table(f"messages-{_e(name)}", ["message", "students", "who"], rows, numeric={1},
                            css="wide messages"))
        if len(ranked) > TOP_MESSAGES:
            parts.append(f"<p class=\"muted\">and {_plural(len(ranked) - TOP_MESSAGES, 'other message')}.</p>")
    if not shown:
        parts.append("<p>No test failed.</p>")
    return "\n".join(parts)


def _pending_section(data):
    head = '<h2 id="manual-grading">Manual grading to do</h2>'
    if not data.pending:
        return f"{head}\n<p>None: every manual grade is in.</p>"
    rows = [[_e(student), ", ".join(f"<code>{_e(cell)}</code>" for cell in cells)]
            for student, cells in sorted(data.pending.items())]
    return (f"{head}\n<p>{_plural(len(data.pending), 'student')} with cells to grade by hand "
            f"(in nbgrader's formgrader):</p>\n{_table('pending', ['student', 'cells'], rows)}")


def _failed_section(data):
    head = '<h2 id="failed-runs">Submissions that failed to run or timed out</h2>'
    if not data.failed:
        return f"{head}\n<p>None: every submission ran to the end.</p>"
    rows = [[_e(student), "<br>".join(_e(reason) for reason in reasons)]
            for student, reasons in sorted(data.failed.items())]
    return (f"{head}\n<p>{_plural(len(data.failed), 'submission')} to look at:</p>\n"
            f"{_table('failed', ['student', 'reason'], rows, css='wide')}")


def render_page(data):
    """The page: figures only when some submission was autograded (write_report draws them then)."""
    title = f"Grade report: {data.assignment}"
    if not data.submitted:
        body = f"<p>No submissions of {_e(data.assignment)} yet: there is nothing to report.</p>"
    elif not data.totals:
        body = (f"<p>No autograded submissions of {_e(data.assignment)} yet: no scores to report.</p>\n"
                + _failed_section(data))
    else:
        body = "\n".join([_totals_section(data), _exercises_section(data), _messages_section(data),
                          _pending_section(data), _failed_section(data)])
    # Everything from a submission is escaped; the CSP (first in <head>) forbids script all the same.
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n{csp_meta()}\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>{_e(title)}</h1>\n{body}\n</body>\n</html>\n")


def write_report(api, assignment):
    """Write reports/<assignment>/index.html and its PNG figures under the course root; return the page."""
    data = collect(api, assignment)  # raises CourseError before anything is written
    folder = Path(api.coursedir.root) / "reports" / assignment
    folder.mkdir(parents=True, exist_ok=True)
    if data.totals:
        plot_totals(data, folder / TOTALS_FIGURE)
        plot_exercises(data, folder / EXERCISES_FIGURE)
    else:  # no scores, no figures: remove those of an earlier report
        for stale in (TOTALS_FIGURE, EXERCISES_FIGURE):
            (folder / stale).unlink(missing_ok=True)
    page = folder / "index.html"
    page.write_text(render_page(data), encoding="utf-8")
    return page
