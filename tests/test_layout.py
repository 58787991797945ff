"""The package's wings stay apart: only nbgrader's configuration reaches course/plugins/, only
course/parallel.py reaches course/sandbox/. Read from the source with ast, nothing imported."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "course"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path):
    """Every module `path` imports, relative imports resolved; `from X import name` counts X.name too."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            base = base if node.level else node.module
            found |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return found


def importers(wing):
    """{module: the modules of `wing` it imports} for every module of course/ outside `wing`."""
    modules = {module_name(path): imported(path) for path in sorted(PACKAGE.rglob("*.py"))}
    assert wing in modules, f"no package {wing}"
    return {
        name: sorted(target for target in targets if target == wing or target.startswith(wing + "."))
        for name, targets in modules.items()
        if not (name == wing or name.startswith(wing + "."))
    }


def test_nothing_in_the_package_imports_the_plugins():
    assert {name: found for name, found in importers("course.plugins").items() if found} == {}


def test_only_parallel_uses_the_sandbox():
    users = {name for name, found in importers("course.sandbox").items() if found}
    assert users == {"course.parallel"}


def test_commands_start_without_building_a_grammar():
    """rfc3987-syntax builds a Lark grammar when jsonschema is imported: 1.5 s for each nbgrader or course command."""
    import subprocess
    import sys

    probe = "import sys, nbgrader.apps, course.__main__; print('rfc3987_syntax' in sys.modules, 'lark' in sys.modules)"
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.stdout.split() == ["False", "False"], run.stdout + run.stderr[-2000:]


def test_public_functions_of_the_gradebook_parallel_and_verify_modules_are_typed():
    untyped = []
    for name in ("gradebook.py", "parallel.py", "plugins/verify.py"):
        for node in ast.parse((PACKAGE / name).read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
                if node.returns is None or any(argument.annotation is None for argument in arguments):
                    untyped.append(f"{name}:{node.name}")
    assert not untyped


def uses_sys_path(path):
    return any(
        isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", None) == "sys"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    )


def test_nothing_patches_sys_path():
    """The package is installed and pytest's `pythonpath` finds the tests' helpers: no `sys.path` edits."""
    root = PACKAGE.parent
    sources = [path for folder in ("course", "tests", "benchmarks") for path in sorted((root / folder).rglob("*.py"))]
    assert [
        str(path.relative_to(root)) for path in sources if "node_modules" not in path.parts and uses_sys_path(path)
    ] == []
