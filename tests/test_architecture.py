"""Rules of the design that are checked, not hoped for: layers, no import cycles, one reader of the
environment, one writer of a generation's status."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp
import networkx

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jobs", "webapp", "models")


def python_files(*packages: str) -> list[Path]:
    """Every module of the given top-level packages (migrations are generated, training scripts are CLIs)."""
    return [path for package in packages for path in sorted((ROOT / package).rglob("*.py"))
            if "migrations" not in path.parts and "training" not in path.parts]


def test_import_contracts_hold() -> None:
    """import-linter's contracts in pyproject.toml: jobs -> webapp -> models, and no sibling cycles."""
    # In a process of its own: import-linter configures logging with dictConfig, which would disable the
    # loggers of modules already imported by other tests.
    lint = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--config", "pyproject.toml",
                           "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert lint.returncode == 0, lint.stdout[-3000:]


def test_no_import_cycle_between_modules() -> None:
    """No two modules of the project import each other, directly or through others (lazy imports count)."""
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True)
    edges = networkx.DiGraph()
    for module in graph.modules:
        edges.add_node(module)
        edges.add_edges_from((module, imported) for imported in graph.find_modules_directly_imported_by(module))
    cycles = [sorted(group) for group in networkx.strongly_connected_components(edges) if len(group) > 1]
    assert cycles == []


def test_only_config_reads_the_environment() -> None:
    """Settings have one home: ``webapp/config.py`` (the launcher only passes the environment on)."""
    readers = []
    for path in python_files(*PACKAGES):
        if path.relative_to(ROOT).as_posix() in {"webapp/config.py", "webapp/launch.py"}:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in {"environ", "getenv"} \
                    and isinstance(node.value, ast.Name) and node.value.id == "os":
                readers.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert readers == []


def test_only_the_lifecycle_writes_a_generation_status_or_sends_its_email() -> None:
    """Every status change goes through a verb of ``webapp.lifecycle`` (one conditional UPDATE each), which also
    sends the result or failure email: nothing else writes the column or queues that email."""
    writers = []
    for path in python_files("jobs", "webapp"):
        if path.relative_to(ROOT).as_posix() == "webapp/lifecycle.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "update" \
                    and node.args and isinstance(node.args[0], ast.Name) and node.args[0].id == "Generation":
                writers.append(f"{path.relative_to(ROOT)}:{node.lineno} update(Generation)")
            if isinstance(node, ast.Assign | ast.AugAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Attribute) and target.attr == "status" \
                            and "generation" in ast.unparse(target.value).lower():
                        writers.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(target)} =")
            if isinstance(node, ast.Call) and ast.unparse(node.func).split(".")[-1] in {
                    "notify_generation_finished", "move_generation", "_move"} \
                    and path.relative_to(ROOT).as_posix() != "webapp/mail/outbox.py":
                writers.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(node.func)}()")
    assert writers == []
