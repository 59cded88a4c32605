"""The package's layers, read from its source: no import cycles, no domain in the backends, and no job
file named outside `harness/store`."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "harness"
JOB_FILES = re.compile(
    r"""["'](job\.json|conversations\.jsonl|summary\.json|results\.json|tau2_results\.json|error\.txt|manifest\.json|job_state\.json)["']"""
)


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


MODULES = _modules()


def _imported_at_load(name: str, path: Path) -> set[str]:
    """The harness modules `name` imports when it is loaded (not those imported inside functions or
    under `TYPE_CHECKING`); `from package import submodule` counts as the submodule."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for statement in node.body if isinstance(node, ast.Try) else [node]:
            if isinstance(statement, ast.Import):
                found.update(alias.name for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom):
                base = statement.module or ""
                if statement.level:
                    anchor = package.split(".")[: len(package.split(".")) - statement.level + 1]
                    base = ".".join([*anchor, *([statement.module] if statement.module else [])])
                for alias in statement.names:
                    found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return (found & MODULES.keys()) - {name}


GRAPH = {name: _imported_at_load(name, path) for name, path in MODULES.items()}


def _cycle_from(start: str) -> list[str] | None:
    path: list[str] = []
    done: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        for imported in sorted(GRAPH[module]):
            if cycle := visit(imported):
                return cycle
        path.pop()
        done.add(module)
        return None

    return visit(start)


def test_the_graph_is_read_from_the_source() -> None:
    assert len(MODULES) > 100
    assert "harness.store.layout" in GRAPH["harness.store.progress"]
    assert "harness.store.lock" in GRAPH["harness.store.layout"]  # `from harness.store import lock`


def test_no_module_imports_itself_back_when_loaded() -> None:
    cycles = {tuple(c) for name in GRAPH if (c := _cycle_from(name))}
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in sorted(cycles))


@pytest.mark.parametrize("layer", ["harness.backends", "harness.episode"])
def test_a_generic_layer_imports_no_domain(layer: str) -> None:
    offending = {
        (module, imported)
        for module, imports in GRAPH.items()
        if module.startswith(layer)
        for imported in imports
        if imported.startswith("harness.domains.")
        and imported not in ("harness.domains.base", "harness.domains.roles")
    }
    assert not offending


def test_only_the_store_names_the_files_of_a_job() -> None:
    named = {
        str(path.relative_to(PACKAGE.parent)): match.group(1)
        for path in PACKAGE.rglob("*.py")
        if "store" not in path.relative_to(PACKAGE).parts
        for match in [JOB_FILES.search(path.read_text())]
        if match
    }
    assert not named
