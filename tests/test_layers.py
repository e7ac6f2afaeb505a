"""The send path imports neither budgets nor pytest (issue 11, item 1): an import graph from the source."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cachewise

ROOT = Path(cachewise.__file__).parent


def _module_file(name: str) -> Path | None:
    parts = name.split(".")[1:]
    base = ROOT.joinpath(*parts)
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(name: str) -> set[str]:
    """What module ``name`` imports (absolute names), at run time or for type checking alike."""
    path = _module_file(name)
    assert path is not None, name
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            found.add(base)
            found.update(
                f"{base}.{alias.name}" for alias in node.names if _module_file(f"{base}.{alias.name}")
            )
    return found


def _closure(start: str) -> set[str]:
    """Every module reachable from ``start`` through imports (the facade ``cachewise`` excluded)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in _imports(name):
            top = imported.split(".")[0]
            if imported == "cachewise" or top != "cachewise":
                seen.add(imported)
                continue
            if _module_file(imported) is not None:
                todo.append(imported)
    return seen


@pytest.mark.parametrize(
    "module",
    [
        "cachewise.integrations.tracker",
        "cachewise.integrations.middleware",
        "cachewise.integrations.transport",
        "cachewise.integrations.proxy",
        "cachewise.sinks",
        "cachewise.failopen",
    ],
)
def test_the_send_path_imports_no_budget_and_no_pytest(module: str) -> None:
    reached = _closure(module)
    assert not {m for m in reached if m.startswith(("cachewise.budget", "cachewise.reports", "pytest"))}


def test_the_leaves_import_nothing_from_cachewise_at_run_time() -> None:
    assert not {
        m for m in _closure("cachewise.failopen") if m.startswith("cachewise") and m != "cachewise.failopen"
    }


def _loaded_at_import(name: str) -> set[str]:
    """The modules ``name`` imports when it is imported (module level, type-checking blocks left out)."""
    path = _module_file(name)
    assert path is not None, name
    found: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
        elif isinstance(node, ast.ImportFrom):
            found.add("." * node.level + (node.module or ""))
    return found


@pytest.mark.parametrize("module", ["cachewise.budget.runtime", "cachewise.budget.collector"])
def test_the_runtime_budget_and_the_collector_load_no_pandas(module: str) -> None:
    loaded = _loaded_at_import(module)
    assert not {m for m in loaded if m.split(".")[0] in ("pandas", "numpy") or "reports" in m}
