"""Command line: python -m course COMMAND ...  (run it from the course root)."""

import argparse
import sys
import warnings

from sqlalchemy.exc import SAWarning

from .nbgrader_api import CourseError, open_api


def command_generate(api, args):
    from .release import generate
    generate(api, args.assignment)
    print(f"regenerated release/{args.assignment}")


def command_grade(api, args):
    from .grade import grade

    def report(student, result):
        print(f"{student}: {'graded' if result['success'] else 'FAILED: ' + result.get('error', '')}")

    results = grade(api, args.assignment, args.student, on_done=report)
    failed = sum(not result["success"] for result in results.values())
    print(f"graded {len(results) - failed} of {len(results)} submissions")
    return 1 if failed else 0


def command_feedback(api, args):
    from .feedback import generate_feedback
    students = generate_feedback(api, args.assignment, args.student)
    print(f"wrote feedback for {len(students)} students under {api.coursedir.feedback_directory}/")


def command_export(api, args):
    from .export import export_csv
    print(f"wrote {export_csv(api, args.to)}")


def command_scores(api, args):
    from .scores import score_table
    print(score_table(api, args.assignment))


def command_demo(api, args):
    from .demo import run_demo
    run_demo(api)


def parser():
    main = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    main.add_argument("--root", default=".", help="the course root (default: the current folder)")
    commands = main.add_subparsers(dest="command", required=True)

    def add(name, function, help_text):
        command = commands.add_parser(name, help=help_text, description=help_text)
        command.set_defaults(function=function)
        return command

    add("generate", command_generate, "Regenerate release/ASSIGNMENT from source/ASSIGNMENT.") \
        .add_argument("assignment")
    grade = add("grade", command_grade, "Autograde submitted/*/ASSIGNMENT into the gradebook.")
    grade.add_argument("assignment")
    grade.add_argument("--student", nargs="+", metavar="ID", help="grade only these students")
    feedback = add("feedback", command_feedback,
                   "Write feedback HTML for autograded students, without hidden tests.")
    feedback.add_argument("assignment")
    feedback.add_argument("--student", nargs="+", metavar="ID", help="only these students")
    add("export", command_export, "Export the gradebook to a CSV file.") \
        .add_argument("--to", default="grades.csv", help="the CSV file (default: grades.csv)")
    add("scores", command_scores, "Print each student's score on each exercise.") \
        .add_argument("assignment")
    add("demo", command_demo, "Regenerate, grade the sample students, export and print the scores.")
    return main


def main(argv=None):
    args = parser().parse_args(argv)
    warnings.simplefilter("ignore", SAWarning)  # nbgrader's own session handling; harmless
    try:
        return args.function(open_api(args.root), args) or 0
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
