"""The renderings of a :class:`~.bundle.Report`: terminal table, CSV, JSON, Markdown, and the
self-contained HTML page (:mod:`.html`).

JSON and CSV carry the exact ``Decimal`` as a string; the human formats round for display. A total
that leaves out unpriced calls is always marked incomplete, in every format.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from .bundle import FORMATS, Report, build_report, headline, sections
from .html import to_html

__all__ = ["FORMATS", "Report", "build_report", "render"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, pd.Timestamp | datetime):
        return value.isoformat()
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return None if np.isnan(value) else float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and np.isnan(value):
        return None
    return value


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(record) for record in table.to_dict("records")]


def to_json(report: Report) -> str:
    payload = {
        "by": report.by,
        "since": _jsonable(report.since),
        "until": _jsonable(report.until),
        "complete": report.complete,
        "totals": _jsonable(report.totals),
        "groups": _records(report.groups),
        "prefix_families": _records(report.families),
        "unpriced": _records(report.unpriced),
        "calls": None if report.calls is None else _records(report.calls),
    }
    return json.dumps(payload, indent=2) + "\n"


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    columns = list(report.groups.columns)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in report.groups.to_dict("records"):
        writer.writerow(["" if (v := _jsonable(record[c])) is None else v for c in columns])
    return buffer.getvalue()


def _markdown_table(head: list[str], body: list[list[str]]) -> list[str]:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    lines = ["| " + " | ".join(esc(h) for h in head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(esc(c) for c in cells) + " |" for cells in body]
    return lines


def to_markdown(report: Report) -> str:
    lines = ["# cachewise cost report", ""]
    lines += [f"- {line}" for line in headline(report)]
    for title, head, body, _ in sections(report):
        lines += ["", f"## {title}", "", *_markdown_table(head, body)]
    return "\n".join(lines) + "\n"


def to_table(report: Report, width: int | None = None) -> str:
    from rich.console import Console
    from rich.table import Table

    if width is None:  # the terminal's width, never narrower than 120 columns
        width = max(120, shutil.get_terminal_size((160, 24)).columns)
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, soft_wrap=False)
    for line in headline(report):
        console.print(line, highlight=False, markup=False)
    for title, head, body, text_columns in sections(report):
        table = Table(title=title, title_justify="left")
        for index, name in enumerate(head):
            table.add_column(name, justify="left" if index < text_columns else "right")
        for cells in body:
            table.add_row(*cells)
        console.print(table)
    return buffer.getvalue()


def render(report: Report, fmt: str) -> str:
    """The report as text in one of :data:`FORMATS`."""
    renderers = {"table": to_table, "csv": to_csv, "json": to_json, "markdown": to_markdown, "html": to_html}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt](report)
