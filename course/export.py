"""Export the gradebook to CSV with nbgrader's own exporter."""

from pathlib import Path

from nbgrader.plugins import CsvExportPlugin

from .gradebook import open_gradebook


def export_csv(api, destination="grades.csv"):
    """Write one row per student and assignment (nbgrader's CSV format); return the path.

    A relative destination is taken from the course root.
    """
    destination = Path(api.coursedir.root) / destination
    with open_gradebook(api) as gradebook:
        CsvExportPlugin(to=str(destination), parent=api).export(gradebook)
    return destination
