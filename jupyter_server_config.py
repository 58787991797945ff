"""Jupyter server configuration of the course: `make lab` starts JupyterLab with it.

It enables course/plugins/formgrader_policy.py, the Content-Security-Policy of Formgrader's routes. On
another server (JupyterHub, say), enable that extension in its own configuration the same way.
"""

import sys
from pathlib import Path

c = get_config()  # noqa: F821 (injected by traitlets)

sys.path.insert(0, str(Path(__file__).resolve().parent))
c.ServerApp.jpserver_extensions = {"course.plugins.formgrader_policy": True}
