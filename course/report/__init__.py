"""Grade report: one offline HTML page, with figures, on how the class did on an assignment.

reports/<assignment>/index.html shows the distribution of total scores, the
mean score of each exercise, the failure messages students met most often,
the manual grading still to do, and the submissions that failed to run. The
scores come from the gradebook (read, never created); the failure messages
come from the autograded notebooks (data.py). figures.py draws the figures,
page.py writes the page from templates/report.html.j2.
"""

from pathlib import Path

from .data import report_data
from .figures import EXERCISES_FIGURE, TOTALS_FIGURE, plot_exercises, plot_totals
from .page import render_page


def write_report(api, assignment):
    """Write reports/<assignment>/index.html and its PNG figures under the course root; return the page."""
    data = report_data(api, assignment)  # raises CourseError before anything is written
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
