"""nbgrader configuration of the course. Run nbgrader from this folder."""

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.course_id = "logistic-regression"
# The gradebook is SQLite in the course root: nbgrader's embedded default,
# sqlite:///gradebook.db, so nothing needs setting here.

# A student cell that runs longer than this is stopped; grading goes on with the next cell.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Late policy: course/plugins/late.py (its setting is below).
c.AssignLatePenalties.plugin_class = "course.plugins.late.PercentPerDayLate"

# Restore test cells that a student deleted, so their hidden tests still run.
c.OverwriteCells.add_missing_cells = True

# Keep autograded notebooks (and feedback) small when a cell prints without end.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100

# Autograding re-checks every passing test cell outside the student's kernel, on
# a plain-data record of what the test read (course/plugins/verify.py), and survives a
# kernel that dies or stops answering (course/plugins/execute.py; it takes the Execute
# settings above). The classes are named, not imported, so that a missing course
# package (make installs it into .venv) fails the autograde loudly instead of silently
# dropping this file.
# nbgrader's sanitizing steps, with an OverwriteCells that does not warn about every test cell
# with hidden tests (course/plugins/overwrite.py; nbgrader issue #1961).
c.Autograde.sanitize_preprocessors = [
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "course.plugins.overwrite.OverwriteReleasedCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.Autograde.autograde_preprocessors = [
    "course.plugins.attachments.StripCarriedIn",
    "course.plugins.verify.InjectRecorders",
    "course.plugins.execute.RobustExecute",
    "course.plugins.verify.VerifyRecords",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# Feedback shows the student's code, points and each failed test's message, but neither hidden
# tests nor tracebacks that quote them, nor (unless ShowFailuresNotTests.show_outputs, below) what
# the student's cells printed or drew, which can carry the hidden tests (course/plugins/feedback.py).
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "course.plugins.feedback.ShowFailuresNotTests",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]

# Student content stays inert wherever nbconvert renders it: Formgrader's grading pages and the
# feedback pages (course/plugins/safehtml.py). Markdown is sanitized with its math rendered as MathML, and
# outputs are sanitized or dropped (JavaScript, widgets). Feedback pages use the template in
# course/templates/course_feedback: a Content-Security-Policy, no MathJax from a CDN, a summary
# per exercise. Formgrader's routes get their policy from the server extension that
# jupyter_server_config.py enables (course/plugins/formgrader_policy.py).
from pathlib import Path  # noqa: E402

import nbgrader  # noqa: E402

FORMGRADER = Path(nbgrader.__file__).parent / "server_extensions" / "formgrader"
c.HTMLExporter.preprocessors = ["course.plugins.safehtml.InertOutputs"]
c.HTMLExporter.filters = {"markdown2html": "course.plugins.safehtml.markdown_to_html"}
# Templates: course/templates/course_formgrade is Formgrader's grading page with a MathJax stub
# instead of MathJax from a CDN (Formgrader's script waits for its start-up signal);
# course_feedback is the feedback page. Both extend nbgrader's, found on the extra path.
c.HTMLExporter.template_name = "course_formgrade"
c.HTMLExporter.extra_template_basedirs = [
    str(Path(__file__).resolve().parent / "course" / "templates"),
    str(FORMGRADER / "templates"),
]
c.HTMLExporter.extra_template_paths = [str(FORMGRADER / "templates")]
c.GenerateFeedback.HTMLExporter.template_name = "course_feedback"
c.GenerateFeedback.HTMLExporter.extra_template_paths = [  # and the Bootstrap CSS a feedback page embeds
    str(FORMGRADER / "templates"),
    str(FORMGRADER / "static" / "node_modules" / "bootstrap" / "dist" / "css"),
]

# ---- The course's own settings ----------------------------------------------------------
# Each line shows the default, which its class holds (with help text); remove the # to change it.
# tests/test_layout.py checks that every setting of the course is listed here with its default.

# When each assignment is due: `course release` and `course grade` record it in the gradebook,
# and nbgrader's autograder compares it with each submission's time (course/schedule.py).
# c.Course.due_dates = {}
#   e.g. {"logistic_regression": "2027-01-15 23:59:00 Europe/Berlin"}
# Percent of the score a late submission loses per started day late (course/plugins/late.py).
# c.PercentPerDayLate.percent_per_day = 10.0

# One student never costs the class. A submission over these caps is neither collected nor
# graded, and its student is named with the reason (course/limits.py).
# c.SubmissionLimits.max_submission_bytes = 20_000_000
# c.SubmissionLimits.max_notebook_bytes = 10_000_000
# An attachment of a submitted cell over this cap is removed with a note (course/plugins/attachments.py).
# c.StripCarriedIn.max_attachment_bytes = 1_000_000
# Output past this many bytes per cell is dropped as it arrives (records of what a test read: the second);
# a notebook may run this many seconds in all, then the running cell is interrupted and the
# cells after it are not run (course/plugins/execute.py).
# c.RobustExecute.max_output_bytes = 1_000_000
# c.RobustExecute.max_record_bytes = 4_000_000
# c.RobustExecute.notebook_timeout = 300
# Show the outputs of the student's cells on the feedback page. Off: the student's code runs next to
# the hidden tests and could print them into any output (course/plugins/feedback.py).
# c.ShowFailuresNotTests.show_outputs = False

# The grading sandbox of `course grade` (course/sandbox/limits.py): per kernel process,
# then per sandbox.
# c.SandboxLimits.cpu_seconds = 600
# c.SandboxLimits.address_space_bytes = 4_294_967_296
# c.SandboxLimits.processes = 64
# c.SandboxLimits.file_bytes = 67_108_864
# c.SandboxLimits.open_files = 256
# c.SandboxLimits.scratch_bytes = 268_435_456
# c.SandboxLimits.scratch_files = 16_384
# c.SandboxLimits.folder_bytes = 67_108_864
# c.SandboxLimits.start_seconds = 120
# Students in flight on a Dask cluster (`course grade --scheduler`; course/parallel.py).
# c.ParallelGrading.cluster_window = 64
