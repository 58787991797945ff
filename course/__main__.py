"""Command line: python -m course COMMAND ...  (run it from the course root, or give --root)."""

import argparse
import os
import sys
import warnings
from pathlib import Path

from .errors import CourseError


def command_generate(api, args):
    from .release import generate

    generate(api, args.assignment)
    print(f"regenerated release/{args.assignment}")


def command_release(api, args):
    from .release import release

    root, due = release(api, args.assignment)
    print(f"released {args.assignment} to {root}" + (f", due {due}" if due else ", no due date set"))


def command_collect(api, args):
    from .collect import collect

    students, notes = collect(api, args.assignment)
    if not students and not notes:
        raise CourseError(
            f"nothing submitted for {args.assignment} yet: students submit from JupyterLab's "
            f"Assignment List (or nbgrader submit {args.assignment}); then collect again"
        )
    print(
        f"{len(students)} submissions of {args.assignment} in {api.coursedir.submitted_directory}/"
        + (": " + ", ".join(students) if students else "")
    )
    for note in notes:
        print(note)
    return 1 if any(note.startswith("refused") for note in notes) else 0


def left_out(what, students):
    """Print one line per student left out, with the reason; return the exit status."""
    for student, reason in sorted(students.items()):
        print(f"no {what} for {student}: {reason}")
    return 1 if students else 0


def command_grade(api, args):
    from .common import students_to_grade
    from .grade import grade
    from .progress import Progress
    from .scores import totals

    progress = Progress(len(students_to_grade(api, args.assignment, args.student)))
    if args.no_sandbox:
        print(
            "warning: --no-sandbox: student code runs as you, with access to the hidden tests, the "
            "gradebook and your files",
            file=sys.stderr,
        )
    results = grade(
        api,
        args.assignment,
        args.student,
        jobs=args.jobs,
        sandboxed=not args.no_sandbox,
        scheduler=args.scheduler,
        timings=args.timings,
        on_done=lambda student, result: progress.step(student if result["success"] else f"{student}: FAILED"),
        on_wait=lambda students: print(
            f"waiting for another course grade run, which is grading {', '.join(students)}",
            file=sys.stderr,
            flush=True,
        ),
    )
    failed = sorted(student for student, result in results.items() if not result["success"])
    scores = [total.final for total in totals(api, args.assignment, results).values()]
    print(
        f"graded {len(results) - len(failed)} of {len(results)} submissions of {args.assignment}"
        + (f"; mean score {sum(scores) / len(scores):.1f}" if scores else "")
    )
    for student in sorted(student for student, result in results.items() if result.get("note")):
        print(f"note: {student}: {results[student]['note']}")
    if failed:
        print(f"failed: {', '.join(failed)} (regrade one with --student ID)")
        for student in failed:
            print(f"  {student}: {results[student]['error']}")
    return 1 if failed else 0


def command_feedback(api, args):
    from .feedback import generate_feedback
    from .gradebook import check_nothing_pending

    if not args.allow_pending:
        check_nothing_pending(api, args.assignment, args.student)
    written, missing = generate_feedback(api, args.assignment, args.student)
    print(
        f"wrote feedback for {len(written)} of {len(written) + len(missing)} students "
        f"under {api.coursedir.feedback_directory}/"
    )
    return left_out("feedback", missing)


def command_return(api, args):
    from .feedback import return_feedback
    from .gradebook import check_nothing_pending

    if not args.allow_pending:
        check_nothing_pending(api, args.assignment)
    returned, missing = return_feedback(api, args.assignment)
    print(
        f"returned feedback on {args.assignment} to {len(returned)} of {len(returned) + len(missing)} "
        "students through the exchange"
    )
    return left_out("feedback returned", missing)


def command_export(api, args):
    from .export import export_csv

    if args.format == "canvas":
        return export_for_canvas(api, args)
    if args.roster or args.allow_missing:
        raise CourseError("--roster and --allow-missing go with --format canvas")
    path, ungraded, skipped = export_csv(api, args.to or "grades.csv")
    print(f"wrote {path}" + (f" (skipped, not released: {', '.join(skipped)})" if skipped else ""))
    return left_out(
        "score in the export",
        {
            f"{student} on {assignment}": "not autograded"
            for assignment, students in ungraded.items()
            for student in students
        },
    )


def export_for_canvas(api, args):
    from .canvas import export_canvas
    from .export import exported, ungraded
    from .gradebook import open_gradebook

    if not args.roster:
        raise CourseError("--format canvas needs --roster FILE: a CSV file linking student_id to Canvas's ids")
    path, unmatched = export_canvas(api, args.roster, args.to or "canvas_grades.csv", args.allow_missing)
    print(f"wrote {path} for Canvas's gradebook import")
    for what, students in unmatched.items():
        if students:
            print(f"left out, {what}: {', '.join(students)}")
    with open_gradebook(api) as gradebook:
        assignments = exported(api, gradebook)
    return left_out(
        "score in the export",
        {f"{student} on {a}": "not autograded" for a in assignments for student in ungraded(api, a)},
    )


def command_copy_gradebook(api, args):
    from .gradebook import copy_gradebook, gradebook_path, shown_url
    from .graders import grading_claims

    source = api.coursedir.db_url
    with grading_claims(source, api.coursedir.course_id, "course copy-gradebook"):  # no course grade writes meanwhile
        counts = copy_gradebook(source, args.to)
    print(
        f"copied the gradebook {gradebook_path(api) or shown_url(source)} to {shown_url(args.to)}: "
        f"{counts.get('assignment', 0)} assignments, {counts.get('student', 0)} students, "
        f"{counts.get('submitted_assignment', 0)} graded submissions, {counts.get('grade', 0)} grades"
    )
    print(f'now set c.CourseDirectory.db_url = "{shown_url(args.to)}" in nbgrader_config.py (with its password)')


def command_report(api, args):
    from .export import ungraded
    from .report import write_report

    print(f"wrote {write_report(api, args.assignment)}")
    return left_out("score in the report", dict.fromkeys(ungraded(api, args.assignment), "not autograded"))


def command_status(api, args):
    from .status import format_rows, status_rows

    print(format_rows(status_rows(api, args.assignment)))


def command_scores(api, args):
    from .scores import score_table

    print(score_table(api, args.assignment))


def command_released(api, args):
    """Print the released assignments, one per line, for make's loops; name the others on stderr."""
    released = sorted(api.get_released_assignments())
    skipped = sorted(set(api.get_source_assignments()) - set(released))
    if skipped:
        print(f"skipped, not released: {', '.join(skipped)}", file=sys.stderr)
    print("\n".join(released))


def command_serve(api, args):
    from .serve import serve

    try:
        serve(api, args.jobs, main, args.assignments)
    except KeyboardInterrupt:
        print("resident grader stopped", file=sys.stderr)


def command_demo(api, args):
    from .demo import run_demo

    run_demo(api.coursedir.root, args.to)


def command_hub(api, args):
    from .hub import run

    return run(Path(api.coursedir.root) / args.state, args.port, args.students, args.prefix)


COMMANDS = [
    # name, function, help, takes an assignment, takes --student
    ("release", command_release, "Regenerate ASSIGNMENT from source and release it to the exchange.", True, False),
    ("collect", command_collect, "Collect submissions of ASSIGNMENT from the exchange into submitted/.", True, False),
    (
        "grade",
        command_grade,
        "Autograde submitted/*/ASSIGNMENT into the gradebook, each notebook in a sandbox.",
        True,
        True,
    ),
    ("feedback", command_feedback, "Write feedback HTML for autograded students, without hidden tests.", True, True),
    ("return", command_return, "Return generated feedback to the students through the exchange.", True, False),
    ("export", command_export, "Export the gradebook to a CSV file, nbgrader's or Canvas's.", False, False),
    ("report", command_report, "Write reports/ASSIGNMENT/index.html: how the class did.", True, False),
    ("status", command_status, "Who submitted, who is graded, who needs manual grading, who is late.", True, False),
    ("scores", command_scores, "Print each student's score on each exercise.", True, False),
    ("generate", command_generate, "Regenerate release/ASSIGNMENT from source/ASSIGNMENT only.", True, False),
    (
        "released",
        command_released,
        "List the assignments released to the exchange (the others on stderr).",
        False,
        False,
    ),
    (
        "copy-gradebook",
        command_copy_gradebook,
        "Copy the gradebook (c.CourseDirectory.db_url) into an empty database, e.g. on a PostgreSQL server.",
        False,
        False,
    ),
    (
        "serve",
        command_serve,
        "Keep warm grading workers for this course: `course grade` grades with them while this runs.",
        False,
        False,
    ),
    (
        "demo",
        command_demo,
        "The whole path on sample students, in a demo course of its own (your course is not touched).",
        False,
        False,
    ),
    (
        "hub",
        command_hub,
        "Start a JupyterHub for this course on 127.0.0.1, with an instructor and student accounts (needs root).",
        False,
        False,
    ),
]


def add_course_options(parser, default_root):
    parser.add_argument("--root", default=default_root, help="the course root (default: the current folder)")
    parser.add_argument(
        "--exchange",
        metavar="DIR",
        default=None if default_root == "." else argparse.SUPPRESS,
        help="the exchange root (default: c.Exchange.root)",
    )


def parser():
    main = argparse.ArgumentParser(prog="python -m course", description=__doc__)
    add_course_options(main, default_root=".")
    commands = main.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, function, help_text, takes_assignment, takes_students in COMMANDS:
        command = commands.add_parser(name, help=help_text, description=help_text)
        add_course_options(command, default_root=argparse.SUPPRESS)  # before or after the command name
        command.set_defaults(function=function)
        if takes_assignment:
            command.add_argument("assignment")
        if takes_students:
            command.add_argument("--student", nargs="+", metavar="ID", help="only these students")
    for name in ("grade", "serve"):
        commands.choices[name].add_argument(
            "--jobs",
            type=int,
            default=os.cpu_count() or 1,
            metavar="N",
            help="grade N students at once in worker processes (default: the number of cores; 1: one by one)",
        )
    commands.choices["grade"].add_argument(
        "--scheduler",
        metavar="tcp://HOST:PORT",
        help="grade on the workers of this Dask distributed scheduler instead of local processes",
    )
    commands.choices["grade"].add_argument(
        "--timings",
        metavar="FILE",
        help="write each student's seconds per grading stage to FILE as JSON (benchmarks/autograde.py reads it)",
    )
    commands.choices["grade"].add_argument(
        "--no-sandbox",
        action="store_true",
        help="run student code unsandboxed, as you (unsafe: it can read the hidden tests and the gradebook)",
    )
    commands.choices["serve"].add_argument(
        "assignments",
        nargs="*",
        metavar="ASSIGNMENT",
        help="warm the workers up by grading these assignments' reference solutions, results thrown away "
        "(default: every assignment in the gradebook)",
    )
    for name in ("feedback", "return"):
        commands.choices[name].add_argument(
            "--allow-pending",
            action="store_true",
            help="go ahead although written answers still wait for a hand grade (they count 0 in the feedback)",
        )
    commands.choices["demo"].add_argument(
        "--to", metavar="DIR", help="a new folder for the demo course (default: a new temporary folder)"
    )
    hub = commands.choices["hub"]
    hub.add_argument("--port", type=int, default=8000, help="the hub's port; it takes the next two too (default: 8000)")
    hub.add_argument("--students", type=int, default=3, metavar="N", help="demo student accounts (default: 3)")
    hub.add_argument("--prefix", default="", help="prefix of the account names (default: none)")
    hub.add_argument(
        "--state", default=".hub", metavar="DIR", help="the hub's state folder, from the course root (default: .hub)"
    )
    commands.choices["export"].add_argument(
        "--to", help="the CSV file, from the course root (default: grades.csv, or canvas_grades.csv for Canvas)"
    )
    commands.choices["export"].add_argument(
        "--format",
        choices=["csv", "canvas"],
        default="csv",
        help="csv: nbgrader's columns, a row per student and assignment (default); canvas: Canvas's gradebook "
        "import, a row per student and a column per assignment (needs --roster)",
    )
    commands.choices["export"].add_argument(
        "--roster",
        metavar="FILE",
        help="for --format canvas: a CSV file, from the course root, with a student_id column (nbgrader's id) "
        "and Canvas's ID, SIS User ID or SIS Login ID (and Student, Section)",
    )
    commands.choices["export"].add_argument(
        "--allow-missing",
        action="store_true",
        help="--format canvas: write the file although some students are only in the gradebook or only in the roster",
    )
    commands.choices["copy-gradebook"].add_argument(
        "--to",
        required=True,
        metavar="URL",
        help="the empty database, as an SQLAlchemy URL: postgresql://USER:PASSWORD@HOST/DATABASE",
    )
    return main


def resident_options(args):
    """What a resident grader needs of `course grade`'s options (its own workers stand for --jobs)."""
    timings = str(Path(args.timings).resolve()) if args.timings else None
    return {"assignment": args.assignment, "student": args.student, "timings": timings}


def main(argv=None):
    args = parser().parse_args(argv)
    local = args.function is command_grade and not args.no_sandbox and not args.scheduler
    if local:  # the course's resident grader (`course serve`), if one runs as this user, grades instead
        from .serve import grade_with_server, serving

        status = grade_with_server(args.root, resident_options(args))
        if status is not None:
            return status
    early = local and not serving
    if early:  # its kernel server imports its libraries while this process imports nbgrader's
        from .parallel import start_early_sandbox

        start_early_sandbox()
    try:
        from sqlalchemy.exc import SAWarning

        from .common import open_api

        warnings.simplefilter("ignore", SAWarning)  # nbgrader's own session handling; harmless
        overrides = {"Exchange": {"root": args.exchange}} if args.exchange else {}
        return args.function(open_api(args.root, **overrides), args) or 0
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    finally:
        if early:
            from .parallel import discard_early_sandbox

            discard_early_sandbox()


if __name__ == "__main__":
    sys.exit(main())
