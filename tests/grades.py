"""Read what the autograder recorded: scores from the gradebook, error messages from the notebooks."""

from pathlib import Path

from nbgrader.api import Gradebook

from course import notebooks


def cell_scores(root, assignment, student, notebook=None):
    """{grade_id: (score, max_score)} of one student's autograded notebook."""
    with Gradebook(f"sqlite:///{Path(root) / 'gradebook.db'}") as gradebook:
        submission = gradebook.find_submission_notebook(notebook or assignment, assignment, student)
        return {grade.name: (grade.score, grade.max_score) for grade in submission.grades}


def cell_errors(root, assignment, student, notebook=None):
    """{grade_id: 'Name: message'} for every cell of the autograded notebook that raised."""
    path = Path(root) / "autograded" / student / assignment / f"{notebook or assignment}.ipynb"
    errors = {}
    for cell in notebooks.read(path).cells:
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                errors[notebooks.grade_id(cell)] = f"{output.ename}: {output.evalue}"
    return errors


def autograded_cells(root, assignment, student, notebook=None):
    """The scores of the autograded (not manually graded) test cells."""
    path = Path(root) / "release" / assignment / f"{notebook or assignment}.ipynb"
    tests = {
        notebooks.grade_id(cell)
        for cell in notebooks.read(path).cells
        if cell.metadata.get("nbgrader", {}).get("grade") and cell.cell_type == "code"
    }
    return {name: value for name, value in cell_scores(root, assignment, student, notebook).items() if name in tests}


def cell_results(where, assignment, *course_id):
    """{(student, cell): (auto_score, needs_manual_grade)} and {student: late penalty} of the gradebook at
    `where`: a course root (its gradebook.db) or a database URL (with the `course_id` it needs)."""
    url = where if "://" in str(where) else f"sqlite:///{Path(where) / 'gradebook.db'}"
    cells, penalties = {}, {}
    with Gradebook(url, *course_id) as gradebook:
        for submission in gradebook.assignment_submissions(assignment):
            penalties[submission.student.id] = submission.late_submission_penalty
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    cells[submission.student.id, grade.name] = (grade.auto_score, grade.needs_manual_grade)
    return cells, penalties
