"""nbgrader's OverwriteCells without its false alarm on test cells with hidden tests.

generate_assignment stores each test cell in the gradebook with its hidden
tests and its checksum, then releases the cell without them. So stock
`nbgrader autograde` reports "Attribute 'checksum' for cell test_... has
changed!" for every such cell of every student, although nobody touched it
(nbgrader issue #1961), and real edits drown in the noise. Here a test cell
whose source is exactly the released one gets its hidden tests back quietly;
a cell the student changed is still reported and restored, as before.

It also reads the notebook's cells from the gradebook once, instead of with
three queries per cell (CellsAtOnce), and gives a cell it restores (a test cell
the student deleted) the id that nbformat 4.5 requires: without one, nbformat
prints a MissingIDFieldWarning on the grader's console and says that it will
become an error.
"""

from nbformat import NotebookNode
from nbformat.corpus.words import generate_corpus_id
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import ClearHiddenTests, OverwriteCells
from nbgrader.preprocessors.base import NbGraderPreprocessor


class CellsAtOnce:
    """A gradebook whose source and graded cells of one notebook are looked up in memory.

    find_source_cell and find_graded_cell answer as nbgrader's own do (the same rows, MissingEntry
    when there is none); everything else goes to the gradebook.
    """

    def __init__(self, gradebook, notebook, assignment):
        self.gradebook, self.key = gradebook, (notebook, assignment)
        recorded = gradebook.find_notebook(notebook, assignment)
        self.source = {cell.name: cell for cell in recorded.source_cells}
        self.graded = {cell.name: cell for cell in recorded.task_cells}
        self.graded.update({cell.name: cell for cell in recorded.grade_cells})  # a grade cell first, as nbgrader

    def __getattr__(self, name):
        return getattr(self.gradebook, name)

    def find_source_cell(self, name, notebook, assignment):
        if (notebook, assignment) != self.key:
            return self.gradebook.find_source_cell(name, notebook, assignment)
        if name not in self.source:
            raise MissingEntry(f"No such source cell: {assignment}/{notebook}/{name}")
        return self.source[name]

    def find_graded_cell(self, name, notebook, assignment):
        if (notebook, assignment) != self.key:
            return self.gradebook.find_graded_cell(name, notebook, assignment)
        if name not in self.graded:
            raise MissingEntry(f"No such grade cell: {assignment}/{notebook}/{name}")
        return self.graded[name]


class OverwriteReleasedCells(OverwriteCells):
    """OverwriteCells that restores a test cell left as released without a warning."""

    def preprocess(self, nb, resources):
        """OverwriteCells.preprocess, with the notebook's cells read at once (CellsAtOnce)."""
        self.notebook_id = resources["nbgrader"]["notebook"]
        self.assignment_id = resources["nbgrader"]["assignment"]
        self.db_url = resources["nbgrader"]["db_url"]
        with Gradebook(self.db_url) as gradebook:
            try:
                self.gradebook = CellsAtOnce(gradebook, self.notebook_id, self.assignment_id)
            except MissingEntry:
                self.gradebook = gradebook
            nb, resources = NbGraderPreprocessor.preprocess(self, nb, resources)
            if self.add_missing_cells:
                nb, resources = self.add_missing_grade_cells(nb, resources)
                nb, resources = self.add_missing_task_cells(nb, resources)
        return nb, resources

    def missing_cell_transform(self, source_cell, max_score, is_solution=False, is_task=False):
        """OverwriteCells' restored cell, with a cell id of its own."""
        cell = super().missing_cell_transform(source_cell, max_score, is_solution, is_task)
        cell["id"] = generate_corpus_id()
        return cell

    def released_source(self, source):
        """`source` as the student received it: without its hidden tests (each source cleared once)."""
        if getattr(self, "_clear", None) is None:
            self._clear, self._released = ClearHiddenTests(parent=self), {}
        if source not in self._released:
            cell = NotebookNode(cell_type="code", source=source, metadata=NotebookNode())
            self._clear._remove_hidden_test_region(cell)
            self._released[source] = cell.source
        return self._released[source]

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
