"""nbgrader's OverwriteCells without its false alarm on test cells with hidden tests.

generate_assignment stores each test cell in the gradebook with its hidden
tests and its checksum, then releases the cell without them. So stock
`nbgrader autograde` reports "Attribute 'checksum' for cell test_... has
changed!" for every such cell of every student, although nobody touched it
(nbgrader issue #1961), and real edits drown in the noise. Here a test cell
whose source is exactly the released one gets its hidden tests back quietly;
a cell the student changed is still reported and restored, as before.
"""

from nbformat.v4 import new_code_cell
from nbgrader.api import MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells


class OverwriteReleasedCells(OverwriteCells):
    """OverwriteCells that restores a test cell left as released without a warning."""

    def released_source(self, source):
        """`source` as the student received it: without its hidden tests."""
        cell = new_code_cell(source)
        ClearHiddenTests(parent=self)._remove_hidden_test_region(cell)
        return cell.source

    def preprocess_cell(self, cell, resources, cell_index):
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id is not None:
            try:
                source_cell = self.gradebook.find_source_cell(grade_id, self.notebook_id, self.assignment_id)
            except MissingEntry:
                source_cell = None
            if (
                source_cell is not None
                and source_cell.locked
                and source_cell.cell_type == cell.cell_type
                and cell.source == self.released_source(source_cell.source)
            ):
                cell.source = source_cell.source
        return super().preprocess_cell(cell, resources, cell_index)
