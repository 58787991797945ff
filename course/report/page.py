"""The report's page, from templates/report.html.j2: autoescaped, under the course's Content-Security-Policy."""

import statistics
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from markupsafe import Markup

from ..csp import csp_meta
from .data import number
from .figures import EXERCISES_FIGURE, TOTALS_FIGURE

TOP_MESSAGES = 5


def names(students, limit=10):
    """Up to `limit` names, sorted, and how many more there are."""
    listed = sorted(students)
    return ", ".join(listed[:limit]) + (f" and {len(listed) - limit} more" if len(listed) > limit else "")


def plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def share(exercise):
    """The exercise's mean score as a percentage of its points, or '–'."""
    if exercise.mean is None or not exercise.max_score:
        return "–"
    return f"{100 * exercise.mean / exercise.max_score:.0f}%"


def summary(data):
    """The sentences above the totals: spread of the scores, pending grades, penalties, left out."""
    totals = list(data.totals.values())
    parts = [
        f"{plural(len(totals), 'student')} autograded, out of {data.max_score:g} points: "
        f"mean {number(statistics.fmean(totals))}, median {number(statistics.median(totals))}, "
        f"lowest {number(min(totals))}, highest {number(max(totals))}."
    ]
    if data.pending:
        parts.append(
            f"{plural(len(data.pending), 'student')} still {'waits' if len(data.pending) == 1 else 'wait'}"
            " for manual grading: their totals count those cells as 0 for now."
        )
    if data.penalties:
        parts.append(
            f"{plural(len(data.penalties), 'late submission')} lost "
            f"{number(sum(data.penalties.values()))} points in all to late penalties; "
            "the totals are after the penalties."
        )
    left_out = sorted(set(data.failed) - set(data.totals))
    if left_out:
        verb = "is" if len(left_out) == 1 else "are"
        parts.append(
            f"{plural(len(left_out), 'submission')} without an autograded notebook {verb} "
            "left out of the scores (see the last section)."
        )
    return " ".join(parts)


def message_groups(data):
    """Per exercise with failures, in exercise order: name, lost (or None), top messages, how many others.

    A message is (text, number of students, their names).
    """
    order = [e.name for e in data.exercises] + sorted(set(data.messages) - {e.name for e in data.exercises})
    groups = []
    for name in order:
        ranked = sorted(data.messages.get(name, {}).items(), key=lambda item: (-len(item[1]), item[0]))
        if ranked:
            groups.append(
                {
                    "name": name,
                    "lost": data.lost_by_exercise.get(name),
                    "messages": [(text, len(who), names(who)) for text, who in ranked[:TOP_MESSAGES]],
                    "others": len(ranked) - TOP_MESSAGES,
                }
            )
    return groups


ENVIRONMENT = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENVIRONMENT.filters.update(number=number, plural=plural, share=share)


def render_page(data):
    """The page: figures only when some submission was autograded (write_report draws them then)."""
    return ENVIRONMENT.get_template("report.html.j2").render(
        data=data,
        title=f"Grade report: {data.assignment}",
        csp_meta=Markup(csp_meta()),
        summary=summary(data) if data.totals else "",
        groups=message_groups(data),
        top=TOP_MESSAGES,
        totals=sorted(data.totals.items()),
        pending=sorted(data.pending.items()),
        failed=sorted(data.failed.items()),
        totals_figure=TOTALS_FIGURE,
        exercises_figure=EXERCISES_FIGURE,
    )
