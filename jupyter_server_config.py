"""Jupyter server configuration of the course: `make lab` starts JupyterLab with it.

It enables course/plugins/formgrader_policy.py, the Content-Security-Policy of Formgrader's routes, and
course/plugins/sandboxed_autograde.py, which makes Formgrader's autograde button grade in the sandbox
as `course grade` does. On another server, enable both in its own configuration the same way
(course/hub.py does, for the instructor's server on the course's JupyterHub).
"""

c = get_config()  # noqa: F821 (injected by traitlets)

# The course package is installed into .venv by make (pip install . elsewhere).
c.ServerApp.jpserver_extensions = {
    "course.plugins.formgrader_policy": True,
    "course.plugins.sandboxed_autograde": True,
}
