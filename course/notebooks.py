"""Read and fill nbgrader notebooks: answer cells, solutions and submissions."""

from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearSolutions


def read(path):
    return nbformat.read(str(path), as_version=4)


def grade_id(cell):
    return cell.metadata.get("nbgrader", {}).get("grade_id")


def is_answer_cell(cell):
    return cell.metadata.get("nbgrader", {}).get("solution", False)


def solutions(source_notebook, config=None):
    """The reference answer of each answer cell, code or written, as a student would type it.

    That is the source notebook's cell without the lines that hold the solution
    delimiters of nbgrader's ClearSolutions (as `config` sets them), as nbgrader finds them.
    """
    clear = ClearSolutions(config=config)
    markers = (clear.begin_solution_delimeter, clear.end_solution_delimeter)
    answers = {}
    for cell in source_notebook.cells:
        if is_answer_cell(cell):
            lines = [line for line in cell.source.splitlines() if not any(marker in line for marker in markers)]
            answers[grade_id(cell)] = "\n".join(lines)
    return answers


def fill(release_notebook, answers):
    """A copy of the released notebook with the cells named in `answers` replaced.

    `answers` maps a grade_id to the new source of that cell; a value of None
    deletes the cell.
    """
    notebook = nbformat.from_dict(release_notebook)
    unknown = set(answers) - {grade_id(cell) for cell in notebook.cells}
    if unknown:
        raise KeyError(f"no cells with grade_id {sorted(unknown)}")
    cells = []
    for cell in notebook.cells:
        source = answers.get(grade_id(cell), cell.source)
        if source is not None:
            cell.source = source
            cells.append(cell)
    notebook.cells = cells
    return notebook


def write(notebook, path):
    nbformat.write(notebook, str(path))


def write_submission(notebook, course_root, student, assignment, name=None):
    """Write `notebook` where nbgrader expects a submission and return its path."""
    folder = Path(course_root) / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name or assignment}.ipynb"
    write(notebook, path)
    return path
