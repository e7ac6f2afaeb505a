"""The emulator is an independent oracle: it imports only leaves and the price/usage layers.

``cachewise.api_rules`` holds the API's constants both the planner and the emulator use; it
imports nothing from cachewise, so sharing it shares no reading of the request.
"""

from __future__ import annotations

import ast
from pathlib import Path

import cachewise

PACKAGE = Path(cachewise.__file__).parent
ALLOWED = {"errors", "usage", "pricing", "api_rules", "httpstreams"}


def _cachewise_imports(path: Path, package: str) -> set[str]:
    """Top-level cachewise modules imported by ``path`` (``package`` is its dotted package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                dotted = ".".join([*base, node.module] if node.module else base)
            else:
                dotted = node.module or ""
            names = [dotted] if node.module else [f"{dotted}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "cachewise" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_the_emulator_imports_only_leaves_usage_and_pricing() -> None:
    for path in sorted((PACKAGE / "emulator").glob("*.py")):
        imported = _cachewise_imports(path, "cachewise.emulator") - {"emulator"}
        assert imported <= ALLOWED, (path.name, imported - ALLOWED)


def test_api_rules_is_a_leaf() -> None:
    assert _cachewise_imports(PACKAGE / "api_rules.py", "cachewise") == set()


def test_the_planner_and_the_emulator_share_the_constants() -> None:
    from cachewise import api_rules
    from cachewise.emulator import engine, positions
    from cachewise.planner import candidates, core, reuse

    assert engine.LOOKBACK is api_rules.LOOKBACK and candidates.LOOKBACK is api_rules.LOOKBACK
    assert engine.TTL_SECONDS is api_rules.TTL_SECONDS is reuse.TTL_SECONDS
    assert positions.MAX_MARKERS == core.MAX_BREAKPOINTS == api_rules.MAX_MARKERS == 4
