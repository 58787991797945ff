"""What nbgrader (and Jupyter server) load by dotted path from the course's configuration files.

nbgrader_config.py names the preprocessors, filters and the late policy here; jupyter_server_config.py
names the Formgrader policy extension. Nothing else in course/ imports this package.
"""
