"""nbgrader settings for a student of this course, outside JupyterHub.

Save this file as ~/.jupyter/nbgrader_config.py, with the exchange folder your
instructor gives you. Then JupyterLab's Assignment List, and the commands
`nbgrader fetch_assignment logistic_regression`, `nbgrader submit
logistic_regression` and `nbgrader fetch_feedback logistic_regression`, find
the course. (On the course's JupyterHub this is already set up for you.)
"""

c = get_config()  # noqa: F821 (injected by traitlets)

c.CourseDirectory.course_id = "logistic-regression"
c.Exchange.root = "/srv/nbgrader/exchange"  # the folder your instructor shares with the class
