"""``cachewise.workloads`` sits beside the demo, below analysis: it never imports pandas and friends."""

from __future__ import annotations

import ast
from pathlib import Path

import cachewise.workloads

PACKAGE = Path(cachewise.workloads.__file__).parent
FORBIDDEN = {"pandas", "numpy", "matplotlib"}
ABOVE = {"reports", "budget", "cli", "demo", "ledger"}  # analysis, the commands and the demo use workloads


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, relative ones kept relative (``..ledger``, ``.script``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level
            if node.module:
                names.add(prefix + node.module)
            else:  # from .. import ledger
                names.update(prefix + alias.name for alias in node.names)
    return names


def test_no_analysis_or_upper_layer_imports() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert modules
    for path in modules:
        for name in _imports(path):
            top = name.lstrip(".").split(".")[0]
            assert top not in FORBIDDEN, (path.name, name)
            if name.startswith(".."):
                assert name[2:].split(".")[0] not in ABOVE, (path.name, name)
            if name.startswith("cachewise."):
                assert name.split(".")[1] not in ABOVE, (path.name, name)


def test_public_names_sorted_and_importable() -> None:
    names = cachewise.workloads.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))  # constants, classes, functions
    for name in names:
        assert getattr(cachewise.workloads, name) is not None, name
