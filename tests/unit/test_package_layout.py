"""The library's shape: stage packages, one-way imports, no loop, thin scripts.

Read from the source with `ast`, so an import inside a function counts as
much as one at the top of a module.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "spectragrid"
# A stage may import from itself and from the stages before it, never after.
STAGES = ("core", "data", "train", "issues", "report", "serve")
# The stage each workflow script serves.
SCRIPT_STAGES = {
    "demo_data": "data",
    "ingest": "data",
    "split": "data",
    "train": "train",
    "label_issues": "issues",
    "sheet": "report",
    "summary": "report",
    "serve_model": "serve",
    "predict": "serve",
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The spectragrid modules `path` imports, resolved to modules (not names in them)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        elif (
            # a job script's `run_job(snakemake, "<module>")` imports and runs that module
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "run_job"
            and len(node.args) == 2
            and isinstance(node.args[1], ast.Constant)
        ):
            names = [str(node.args[1].value)]
        else:
            continue
        for name in names:
            # `from spectragrid.core import layout` imports a module; `from
            # spectragrid.core.config import validate` imports from one
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name.startswith("spectragrid"):
                found.add(name)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    return {name: imported_modules(path, modules) - {name} for name, path in files.items()}


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of `graph` as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_every_module_belongs_to_a_stage_package() -> None:
    loose = [m for m in import_graph() if m != "spectragrid" and stage(m) is None]
    assert loose == []


def test_no_import_loop() -> None:
    assert find_cycle(import_graph()) is None


def test_no_stage_imports_a_later_one() -> None:
    backwards = [
        f"{module} imports {target}"
        for module, targets in import_graph().items()
        for target in targets
        if stage(module)
        and stage(target)
        and STAGES.index(stage(target)) > STAGES.index(stage(module))
    ]
    assert backwards == []


@pytest.mark.parametrize("script", sorted(SCRIPT_STAGES))
def test_a_workflow_script_imports_from_the_stage_it_serves(script: str) -> None:
    path = ROOT / "workflow" / "scripts" / f"{script}.py"
    modules = set(import_graph())
    stages = {stage(m) for m in imported_modules(path, modules)} - {"core"}
    assert stages == {SCRIPT_STAGES[script]}


def test_the_loop_finder_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
