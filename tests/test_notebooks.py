"""The notebooks run top to bottom (nbclient) on a fresh ledger, and are committed without outputs."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
ALL = ["cost_report.ipynb", "what_caching_saved.ipynb", "reconcile.ipynb", "why_we_missed.ipynb"]


@pytest.mark.parametrize("name", ALL)
def test_committed_without_outputs(name: str) -> None:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code
    assert all(not cell.outputs and cell.execution_count is None for cell in code)


@pytest.mark.parametrize("name", ALL)
def test_code_imports_only_what_it_uses(name: str) -> None:
    """No unused imports and no ``__import__`` tricks: every imported name is used in some cell."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    tree = ast.parse("\n".join(cell.source for cell in notebook.cells if cell.cell_type == "code"))
    imported = {
        (alias.asname or alias.name).split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    used = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    assert "__import__" not in used
    assert imported - used == set()


def _executed(name: str, cwd: Path) -> tuple[Any, str]:
    """The notebook run top to bottom in ``cwd``, and the text of its outputs (no traceback among them)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}
    ).execute()
    text = "\n".join(
        str(output.get("text", "")) + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "Traceback" not in text
    return notebook, text


@pytest.mark.slow
def test_notebooks_execute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = tmp_path / "demo.db"
    monkeypatch.setenv("CACHEWISE_DB", str(ledger))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silence jupyter_core's path-migration warning
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("CACHEWISE_WHY_DB", str(tmp_path / "why.db"))
    for name in ("cost_report.ipynb", "what_caching_saved.ipynb", "why_we_missed.ipynb"):
        notebook, text = _executed(name, tmp_path)
        # Formatted for reading: no NaN (a call without a prefix family shows "-"), no raw
        # quotients or 12-digit money; every amount is $ with 4 decimals.
        assert "NaN" not in text and "nan" not in text.split()
        assert not re.search(r"\d\.\d{7,}", text), re.search(r".{30}\d\.\d{7,}.{10}", text)
        assert re.search(r"\$\d[\d,]*\.\d{4}\b", text)
        images = [
            o
            for c in notebook.cells
            if c.cell_type == "code"
            for o in c.outputs
            if "image/png" in o.get("data", {})
        ]
        assert images, f"{name} showed no chart"
        if name == "cost_report.ipynb":
            assert ledger.exists()  # created from the sample generator on first use
            assert "unpriced" in text.lower()
        elif name == "why_we_missed.ipynb":
            assert "prefix_changed (system)" in text and "expired" in text and "misses cost $" in text
        else:
            assert "saved $" in text and "cache hit ratio" in text


@pytest.mark.slow
def test_the_reconcile_notebook_finds_the_planted_gaps_and_a_clean_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")  # silence jupyter_core's path-migration warning
    _, text = _executed("reconcile.ipynb", tmp_path)
    for kind in ("bypassed", "priced_differently", "missing_in_ledger"):
        assert f"{kind}: " in text
    assert "0 gaps: zero gap" in text
