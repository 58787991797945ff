"""The report's figures, drawn on matplotlib Figures of their own (no pyplot, no global backend)."""

import statistics

from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, MultipleLocator

from .data import number

# Okabe-Ito colours: distinguishable with every common colour-vision deficiency. No figure relies on
# colour alone: the two lines differ in style too, and every value is written out beside the figure
# or in its legend. Each mark has a contrast of at least 3:1 on white (WCAG's non-text contrast):
# Okabe-Ito's orange (2.2:1) is too light for a thin line, so the mean is drawn in black.
BLUE, VERMILLION, BLACK = "#0072B2", "#D55E00", "#000000"
TOTALS_FIGURE, EXERCISES_FIGURE = "total_scores.png", "exercise_means.png"


def _style():
    return rc_context(
        {
            "font.size": 11,
            "axes.titlesize": 13,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "svg.hashsalt": "report",
        }
    )


def _save(fig, path):
    fig.savefig(path, dpi=100, metadata={"Software": None})


def plot_totals(data, path):
    """Histogram of total scores, one bar per point (or per few points on long assignments)."""
    totals = list(data.totals.values())
    top = max([data.max_score, *totals, 1.0])
    step = max(1, int(-(-top // 30)))  # at most about 30 bars
    edges = [k * step - step / 2 for k in range(int(top // step) + 2)]
    with _style():
        fig = Figure(figsize=(8, 4.6))
        ax = fig.subplots()
        ax.hist(totals, bins=edges, color=BLUE, edgecolor="white")
        ax.axvline(
            data.max_score, color=VERMILLION, linestyle="--", linewidth=2, label=f"maximum possible: {data.max_score:g}"
        )
        mean = statistics.fmean(totals)
        ax.axvline(mean, color=BLACK, linestyle=":", linewidth=2.5, label=f"class mean: {mean:.1f}")
        ax.set_xlim(edges[0], edges[-1])
        ax.set_ylim(0, None)
        ax.xaxis.set_major_locator(MultipleLocator(step) if top / step <= 25 else MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("total score (points)")
        ax.set_ylabel("students")
        ax.set_title(f"{data.assignment}: total scores of {len(totals)} student{'s' if len(totals) != 1 else ''}")
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncols=2, frameon=False)
        fig.tight_layout()
        _save(fig, path)


def _bar_label(exercise):
    if exercise.mean is None:
        return f"{exercise.pending} waiting for manual grading"
    label = (
        f"{number(exercise.mean)} / {exercise.max_score:g} pts; {exercise.lost} of {len(exercise.scores)} lost points"
    )
    return label + (f"\n{exercise.pending} waiting for manual grading" if exercise.pending else "")


def plot_exercises(data, path):
    """Horizontal bars: mean score of each exercise as a fraction of its points."""
    exercises = data.exercises
    with _style():
        fig = Figure(figsize=(9, 1.4 + 0.42 * len(exercises)))
        ax = fig.subplots()
        positions = range(len(exercises))
        fractions = [(e.mean / e.max_score) if e.mean is not None and e.max_score else 0.0 for e in exercises]
        colours = [BLUE if e.mean is not None else "white" for e in exercises]
        ax.barh(positions, [1.0] * len(exercises), color="#EEEEEE", height=0.7)
        ax.barh(positions, fractions, color=colours, height=0.7)
        for y, exercise in zip(positions, exercises, strict=True):
            ax.text(1.02, y, _bar_label(exercise), va="center", fontsize=9, color="#333333")
        ax.set_yticks(list(positions), [e.name for e in exercises])
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xticks([0, 0.25, 0.5, 0.75, 1.0], ["0", "25%", "50%", "75%", "100%"])
        ax.set_xlabel("mean score (share of the exercise's points)")
        ax.set_ylabel("exercise")
        ax.set_title(
            f"{data.assignment}: mean score per exercise ({len(data.totals)} "
            f"student{'s' if len(data.totals) != 1 else ''})"
        )
        fig.tight_layout()
        fig.subplots_adjust(right=0.62)
        _save(fig, path)
