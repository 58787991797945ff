"""nbgrader configuration of the course. Run nbgrader from this folder."""

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.course_id = "logistic-regression"
# The gradebook is SQLite in the course root: nbgrader's embedded default,
# sqlite:///gradebook.db, so nothing needs setting here.

# A student cell that runs longer than this is stopped; grading goes on with the next cell.
c.Execute.timeout = 30
c.Execute.interrupt_on_timeout = True

# Restore test cells that a student deleted, so their hidden tests still run.
c.OverwriteCells.add_missing_cells = True

# Keep autograded notebooks (and feedback) small when a cell prints without end.
c.LimitOutput.max_lines = 1000
c.LimitOutput.max_traceback = 100
