"""Time `python -m course grade` against stock sequential `nbgrader autograde`, stage by stage.

    .venv/bin/python -m benchmarks.autograde [--assignment NAME|all] [--submissions 24] [--jobs 2]
                                             [--class-size N]          (from the repository root)

For each assignment, three courses get identical copies of the same varied submissions: the blank
release, the reference solution and answers of the catalogue (tests/catalogue.py: right answers
written other ways and realistic mistakes), in turn. Two are graded by stock `nbgrader autograde`,
one student after another, each in a fresh unsandboxed kernel: one with the course's configuration,
one with nbgrader's defaults (the course id alone). The third is graded by `course grade`:
sandboxed, N workers, warm kernels. Its scores must equal those of the first, cell by cell.

The floor is the bare cost of the notebook's cells: each autograded notebook's code cells (the
student's answers and the tests, hidden ones included) run one after another in an already-warm
kernel, its libraries imported. Worker time per submission is the time a worker spends on one
student, from the payload to the results (the mean of `course grade --timings`), the workers' own
start (the sandbox, the private course) left out: that is what the first student's latency
measures, timed from the moment `course grade` is started, twice: from a cold start, and with the
course's resident grader (`course serve`: warm workers, course/serve.py) running, when the class is
graded again. The stage table splits the worker time
up, the start spread over the class included, and adds what the coordinator spends. CPU per
submission counts every process: stock nbgrader with the kernels it waited for; course grade's
coordinator, workers, kernels and kernel servers.

`--class-size N` also grades N synthetic submissions (the varied ones, copied under new names)
with `course grade` alone, and reports time and memory by quarters of the class: the time per
student must stay the same and the memory flat.

Targets (2 cores), read on the runs with `course serve` running (the cold run's figures are printed
too): a speedup of at least 6x against both stock arms, the first student graded within 2 s;
worker time per submission within 2x of the floor; and with --class-size, time per
student in each quarter within 1.3x of the whole run's and the memory of the last half within
1.15x of the first half's. The exit status is 1 when a target is missed or scores differ.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from nbgrader.api import Gradebook

from course import notebooks
from course.samples import copy_course
from course.timing import COORDINATOR_STAGES, ONCE_PER_WORKER, WORKER_STAGES

REPO = Path(__file__).resolve().parents[1]


def load_catalogue():
    """tests/catalogue.py, the catalogue of graded answers (the tests' folder is not a package)."""
    if "catalogue" not in sys.modules:  # pytest has already imported it from tests/
        spec = importlib.util.spec_from_file_location("catalogue", REPO / "tests" / "catalogue.py")
        sys.modules["catalogue"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["catalogue"])
    return sys.modules["catalogue"]


CATALOGUES = load_catalogue().CATALOGUES

ASSIGNMENTS = sorted(CATALOGUES)
SPEEDUP_TARGET, FLOOR_TARGET, FIRST_TARGET = 6.0, 2.0, 2.0
QUARTER_TARGET, MEMORY_TARGET = 1.3, 1.15


def varied_notebooks(root, assignment, count):
    """`count` submissions: the blank release, the reference solution, then catalogue answers spread over
    the catalogue, right and wrong, in turn; [(name, notebook)]."""
    release = notebooks.read(root / "release" / assignment / f"{assignment}.ipynb")
    solution = notebooks.solutions(notebooks.read(root / "source" / assignment / f"{assignment}.ipynb"))
    variants = CATALOGUES[assignment]
    slots = [number for number in range(count) if number % 12 > 1]  # the catalogue's, spread evenly over it
    kinds = []
    for number in range(count):
        if number % 12 == 0:
            kinds.append(("blank", release))
        elif number % 12 == 1:
            kinds.append(("reference", notebooks.fill(release, solution)))
        else:
            variant = variants[slots.index(number) * len(variants) // len(slots)]
            notebook = notebooks.fill(release, {**solution, **variant.answers})
            if variant.edit:
                variant.edit(notebook)
            kinds.append((variant.name, notebook))
    return kinds


def write_class(root, assignment, kinds, count):
    """`count` students in submitted/, each handing in the next of `kinds`, in turn."""
    for number in range(count):
        notebooks.write_submission(kinds[number % len(kinds)][1], root, f"student{number:04d}", assignment)


def course_copy(template, root, defaults=False):
    shutil.copytree(template, root, symlinks=True)
    if defaults:  # nbgrader's own preprocessors and settings: the course id alone
        (root / "nbgrader_config.py").write_text(
            'c = get_config()  # noqa: F821\nc.CourseDirectory.course_id = "logistic-regression"\n'
        )


def environment():
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")


def children_cpu():
    return sum(resource.getrusage(resource.RUSAGE_CHILDREN)[:2])


def timed(command, cwd):
    """Seconds `command` ran in `cwd`, when it started (time.time()), the CPU seconds it used
    (with the processes it waited for: stock nbgrader's kernels), and what it wrote on stderr."""
    started, clock, cpu = time.time(), time.perf_counter(), children_cpu()
    run = subprocess.run(command, cwd=cwd, env=environment(), capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"{' '.join(command[:5])} failed:\n{run.stdout[-3000:]}{run.stderr[-3000:]}")
    return time.perf_counter() - clock, started, children_cpu() - cpu, run.stderr


def grading_cpu(timings):
    """CPU seconds `course grade` used: the coordinator, the workers, their kernels and kernel servers."""
    per_student = ("worker cpu", "kernel cpu", "sandbox server cpu")
    return timings["coordinator cpu"] + sum(
        stages.get(name, 0.0) for stages in timings["students"].values() for name in per_student
    )


def course_grade(root, assignment, jobs, timings, sample_memory=False):
    """`course grade`'s wall time and start, and (with sample_memory) [(time, RSS bytes of its process tree)]."""
    command = [sys.executable, "-m", "course", "grade", assignment, "--jobs", str(jobs), "--timings", str(timings)]
    if not sample_memory:
        seconds, started, _, _ = timed(command, root)
        return seconds, started, []
    import psutil

    started, clock = time.time(), time.perf_counter()
    process = subprocess.Popen(command, cwd=root, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    samples, done = [], threading.Event()

    def sample():
        top = psutil.Process(process.pid)
        while not done.wait(0.5):
            try:
                tree = [top, *top.children(recursive=True)]
                samples.append((time.time(), sum(p.memory_info().rss for p in tree if p.is_running())))
            except psutil.Error:
                pass

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = process.communicate()
    done.set()
    sampler.join()
    if process.returncode != 0:
        sys.exit(f"course grade failed:\n{out.decode()[-3000:]}{err.decode()[-3000:]}")
    return time.perf_counter() - clock, started, samples


def served_grade(root, assignment, jobs, timings):
    """`course grade` answered by the course's resident grader (`course serve`, started and warm first):
    its wall time and start."""
    server = subprocess.Popen(
        [sys.executable, "-m", "course", "serve", assignment, "--jobs", str(jobs)],
        cwd=root,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        ready = server.stdout.readline()  # once its workers are warm
        if not ready.startswith("resident grader for"):
            sys.exit(f"course serve did not start:\n{ready}{server.stderr.read()[-3000:]}")
        seconds, started, _, stderr = timed(
            [sys.executable, "-m", "course", "grade", assignment, "--timings", str(timings)], root
        )
        if "grading with the resident grader" not in stderr:
            sys.exit(f"course grade did not hand its run to course serve:\n{stderr[-3000:]}")
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(120)
    return seconds, started


def cell_scores(root, assignment):
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        return {
            (submission.student.id, grade.name): grade.auto_score
            for submission in gradebook.assignment_submissions(assignment)
            for notebook in submission.notebooks
            for grade in notebook.grades
        }


def floor_seconds(root, assignment):
    """Mean wall and kernel CPU seconds of running each autograded notebook's code cells in a warm kernel."""
    from course.sandbox.kernel import SandboxKernelManager
    from course.sandbox.warm import KERNEL_NAME, Sandbox

    cpu_probe = "import resource as _r; _u = _r.getrusage(_r.RUSAGE_SELF); print(_u.ru_utime + _u.ru_stime)"

    async def kernel_cpu(client):
        printed = []
        await client.execute_interactive(
            cpu_probe,
            timeout=30,
            output_hook=lambda m: printed.append(m["content"].get("text", "")) if m["msg_type"] == "stream" else None,
        )
        return float("".join(printed))

    async def run(sandbox, folders):
        walls, cpus = [], []
        for folder in folders:
            graded = notebooks.read(folder / f"{assignment}.ipynb")
            manager = SandboxKernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=sandbox.kernel_ip())
            await manager.start_kernel(cwd=str(folder))
            client = manager.client()
            client.start_channels()
            await client.wait_for_ready(timeout=60)
            before, clock = await kernel_cpu(client), time.perf_counter()
            for cell in graded.cells:
                if cell.cell_type == "code":
                    await client.execute_interactive(cell.source, timeout=60, output_hook=lambda message: None)
            walls.append(time.perf_counter() - clock)
            cpus.append(await kernel_cpu(client) - before)
            client.stop_channels()
            await manager.shutdown_kernel()
        return sum(walls) / len(walls), sum(cpus) / len(cpus)

    sandbox = Sandbox()
    saved = dict(os.environ)
    os.environ.update(sandbox.jupyter_environment())
    try:
        folders = sorted(path for path in (root / "autograded").glob(f"*/{assignment}") if path.is_dir())
        return asyncio.run(run(sandbox, folders))
    finally:
        sandbox.close()
        os.environ.clear()
        os.environ.update(saved)


def stage_table(timings, submissions, jobs):
    """Rows of the per-stage table: mean seconds per student in a worker, and the coordinator's totals."""
    students = timings["students"].values()

    def mean(name):
        return sum(stages.get(name, 0.0) for stages in students) / max(len(students), 1)

    total = mean("worker total")
    rows = [(f"worker, per student ({jobs} workers)", "", "")]
    for name in WORKER_STAGES:
        rows.append((f"  {name}", f"{mean(name):7.3f} s", f"{100 * mean(name) / total:5.1f} %" if total else ""))
    accounted = sum(mean(name) for name in WORKER_STAGES + ONCE_PER_WORKER)
    rows.append(("  worker's start, spread over its students", f"{sum(mean(n) for n in ONCE_PER_WORKER):7.3f} s", ""))
    rows.append(("  other (the pool, the sandbox's checks)", f"{total - accounted:7.3f} s", ""))
    rows.append(("  worker total", f"{total:7.3f} s", "100.0 %"))
    rows.append(("  worker CPU, grader process", f"{mean('worker cpu'):7.3f} s", ""))
    rows.append(("  kernel CPU (start and cells)", f"{mean('kernel cpu'):7.3f} s", ""))
    rows.append(("  kernel server CPU (its start, the wipes)", f"{mean('sandbox server cpu'):7.3f} s", ""))
    rows.append(("worker, once (mean of the workers)", "", ""))
    for name in ONCE_PER_WORKER:
        once = sum(stages.get(name, 0.0) for stages in students)
        rows.append((f"  {name}", f"{once / jobs:7.3f} s", ""))
    rows.append((f"coordinator, in all (CPU {timings['coordinator cpu']:.2f} s, its start included)", "", ""))
    coordinator = timings["coordinator"]
    for name in COORDINATOR_STAGES:
        rows.append(
            (
                f"  {name}",
                f"{coordinator.get(name, 0.0):7.3f} s",
                f"{1000 * coordinator.get(name, 0.0) / submissions:5.1f} ms per student",
            )
        )
    return rows


def print_rows(rows):
    width = max(len(row[0]) for row in rows)
    for label, value, note in rows:
        print(f"  {label.ljust(width)}  {value}  {note}".rstrip())


def benchmark(assignment, count, jobs, scratch):
    """Grade `count` varied submissions of `assignment` three ways; print the figures; return the failed targets."""
    template = scratch / "template"
    if not template.exists():
        copy_course(REPO, template)
    base = scratch / assignment
    base.mkdir()
    kinds = varied_notebooks(template, assignment, count)
    roots = {name: base / name for name in ("stock", "defaults", "course")}
    for name, root in roots.items():
        course_copy(template, root, defaults=name == "defaults")
        write_class(root, assignment, kinds, count)
    autograde = [sys.executable, "-m", "nbgrader", "autograde", assignment, "--force"]
    stock, _, stock_cpu, _ = timed(autograde, roots["stock"])
    defaults, _, defaults_cpu, _ = timed(autograde, roots["defaults"])
    timings_file = base / "timings.json"
    graded, started, _ = course_grade(roots["course"], assignment, jobs, timings_file)
    timings = json.loads(timings_file.read_text())
    identical = cell_scores(roots["stock"], assignment) == cell_scores(roots["course"], assignment)
    served_file = base / "served.json"
    served, served_started = served_grade(roots["course"], assignment, jobs, served_file)
    served_timings = json.loads(served_file.read_text())
    identical = identical and cell_scores(roots["stock"], assignment) == cell_scores(roots["course"], assignment)
    same_as_defaults = cell_scores(roots["defaults"], assignment) == cell_scores(roots["course"], assignment)
    floor_wall, floor_cpu = floor_seconds(roots["course"], assignment)
    students = timings["students"].values()
    started_up = sum(stages.get(name, 0.0) for stages in students for name in ONCE_PER_WORKER) / count
    with_start = sum(stages.get("worker total", 0.0) for stages in students) / count
    work = with_start - started_up  # each student's own: the workers' start is the first student's target
    first = min(timings["reported"]) - started
    first_served = min(served_timings["reported"]) - served_started
    speedups = stock / graded, defaults / graded
    served_speedups = stock / served, defaults / served
    cpu = grading_cpu(timings)
    print(f"\n{count} varied submissions of {assignment} ({len({k for k, _ in kinds})} kinds), {os.cpu_count()} cores")
    print_rows(
        [
            ("stock nbgrader autograde, course's config:", f"{stock:7.1f} s", f"{stock / count:.2f} s each"),
            ("stock nbgrader autograde, its defaults:", f"{defaults:7.1f} s", f"{defaults / count:.2f} s each"),
            (
                f"course grade --jobs {jobs}, sandboxed:",
                f"{graded:7.1f} s",
                f"{graded * jobs / count:.2f} s x {jobs} cores per submission",
            ),
            (
                "CPU per submission:",
                f"{cpu / count:7.2f} s",
                f"course grade; stock {stock_cpu / count:.2f} s with the course's config, "
                f"{defaults_cpu / count:.2f} s with its defaults",
            ),
            ("scores identical to stock, cell by cell:", "    yes" if identical else "     NO", ""),
            ("  (with nbgrader's defaults:", "    yes" if same_as_defaults else "     no", ")"),
            (
                "speedup:",
                f"{speedups[0]:7.2f}x",
                f"{speedups[1]:.2f}x against the defaults, a cold start (the workers start with the run)",
            ),
            ("floor, the cells in a warm kernel:", f"{floor_wall:7.3f} s", f"per submission, {floor_cpu:.3f} s of CPU"),
            (
                "worker time per submission:",
                f"{work:7.3f} s",
                f"{work / floor_wall:.2f}x the floor (target <= {FLOOR_TARGET:g}x); "
                f"{with_start:.3f} s with the workers' start spread over the class",
            ),
            ("first student graded after:", f"{first:7.2f} s", "a cold start: the workers start with the run"),
            ("  with course serve running:", f"{first_served:7.2f} s", f"(target <= {FIRST_TARGET:g} s)"),
            (
                "the class again, course serve running:",
                f"{served:7.1f} s",
                f"{served_speedups[0]:.2f}x stock, {served_speedups[1]:.2f}x against the defaults "
                f"(target >= {SPEEDUP_TARGET:g}x)",
            ),
        ]
    )
    print("  per stage:")
    print_rows(stage_table(timings, count, jobs))
    missed = []
    if not identical:
        missed.append(f"{assignment}: scores differ from stock nbgrader's")
    if min(served_speedups) < SPEEDUP_TARGET:
        missed.append(f"{assignment}: speedup {min(served_speedups):.2f}x < {SPEEDUP_TARGET:g}x with course serve")
    if work > FLOOR_TARGET * floor_wall:
        missed.append(f"{assignment}: worker time {work / floor_wall:.2f}x the floor > {FLOOR_TARGET:g}x")
    if first_served > FIRST_TARGET:
        missed.append(f"{assignment}: first student after {first_served:.2f} s > {FIRST_TARGET:g} s with course serve")
    return missed


def class_run(assignment, size, jobs, scratch):
    """Grade `size` synthetic submissions with course grade alone; print time and memory by quarters."""
    template = scratch / "template"
    if not template.exists():
        copy_course(REPO, template)
    root = scratch / f"class-{assignment}"
    course_copy(template, root)
    write_class(root, assignment, varied_notebooks(template, assignment, 24), size)
    timings_file = scratch / f"class-{assignment}.json"
    graded, started, samples = course_grade(root, assignment, jobs, timings_file, sample_memory=True)
    reported = sorted(json.loads(timings_file.read_text())["reported"])
    quarters = [reported[(size * q) // 4 : (size * (q + 1)) // 4] for q in range(4)]
    steady = (reported[-1] - reported[0]) / max(size - 1, 1)  # per student, start-up left out
    print(f"\na class of {size} synthetic submissions of {assignment}: {graded:.1f} s, {size / graded:.2f} per second")
    per_student = []
    for number, quarter in enumerate(quarters):
        begin = reported[(size * number) // 4 - 1] if number else reported[0]
        seconds = (quarter[-1] - begin) / max(len(quarter) - (0 if number else 1), 1)
        memory = [rss for when, rss in samples if begin <= when <= quarter[-1]] or [0]
        per_student.append(seconds)
        print(f"  quarter {number + 1}: {seconds:6.3f} s per student, peak memory {max(memory) / 2**20:7.0f} MiB")
    halves = [
        [rss for when, rss in samples if when < reported[size // 2]],
        [rss for when, rss in samples if when >= reported[size // 2]],
    ]
    first_half, last_half = (max(half or [0]) for half in halves)
    growth = last_half / first_half if first_half else 1.0
    worst = max(per_student) / steady if steady else 1.0
    print(f"  time per student, worst quarter / whole run: {worst:.2f} (target <= {QUARTER_TARGET:g})")
    print(f"  peak memory, last half / first half:         {growth:.2f} (target <= {MEMORY_TARGET:g})")
    missed = []
    if worst > QUARTER_TARGET:
        missed.append(f"class of {size}: a quarter took {worst:.2f}x the mean time per student")
    if growth > MEMORY_TARGET:
        missed.append(f"class of {size}: memory grew {growth:.2f}x")
    return missed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="all", choices=["all", *ASSIGNMENTS])
    parser.add_argument("--submissions", type=int, default=24)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--class-size", type=int, default=0, help="also grade a synthetic class of this many")
    args = parser.parse_args(argv)
    assignments = ASSIGNMENTS if args.assignment == "all" else [args.assignment]
    missed = []
    with tempfile.TemporaryDirectory(prefix="benchmark-") as scratch:
        for assignment in assignments:
            missed += benchmark(assignment, args.submissions, args.jobs, Path(scratch))
        if args.class_size:
            missed += class_run(assignments[0], args.class_size, args.jobs, Path(scratch))
    print("\ntargets: " + ("all met" if not missed else "MISSED: " + "; ".join(missed)))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
