"""Jupyter server configuration of the course: `make lab` starts JupyterLab with it.

It enables course/plugins/formgrader_policy.py, the Content-Security-Policy of Formgrader's routes. On
another server (JupyterHub, say), enable that extension in its own configuration the same way.
"""

c = get_config()  # noqa: F821 (injected by traitlets)

# The course package is installed into .venv by make (pip install . elsewhere).
c.ServerApp.jpserver_extensions = {"course.plugins.formgrader_policy": True}
