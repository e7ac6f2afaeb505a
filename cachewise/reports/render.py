"""The renderings of a :class:`~.bundle.Report`: terminal table, CSV, JSON, Markdown, and the
self-contained HTML page (:mod:`.html`).

JSON and CSV carry money as the exact ``Decimal`` in plain notation (``0.0000001``, never
``1E-7``); ratios are rounded to :data:`RATIO_DIGITS` places and the effective input price (a
quotient) to :data:`PRICE_QUANT`. The human formats round money for display. The terminal table
takes the terminal's width: below :data:`COMPACT_BELOW` columns it keeps the compact columns only,
and it leaves out value columns (saying which) rather than cut a key, a heading or an amount
(each column is as wide as its widest cell; only a reason or a label wraps). A total that leaves out
unpriced calls is always marked incomplete, in every format.
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

from .bundle import FORMATS, Report, Section, build_report, headline, sections
from .html import to_html

__all__ = ["COMPACT_BELOW", "FORMATS", "PRICE_QUANT", "RATIO_DIGITS", "Report", "build_report", "render"]

COMPACT_BELOW = 100  # terminal columns
RATIO_DIGITS = 4
PRICE_QUANT = Decimal("0.000001")  # USD per million tokens
_RATIOS = ("hit_ratio", "waste_ratio")
_PRICES = ("effective_input_price",)


def _plain(value: Decimal) -> str:
    """The exact decimal in plain notation: ``0.0000001`` for ``1E-7``, ``0`` for ``0E-7``."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _field(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name in _RATIOS and not (isinstance(value, float) and np.isnan(value)):
        return round(float(value), RATIO_DIGITS)
    if name in _PRICES and isinstance(value, Decimal):
        return _plain(value.quantize(PRICE_QUANT))
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _plain(value)
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


def _fields(record: dict[Any, Any]) -> dict[str, Any]:
    return {str(k): _field(str(k), v) for k, v in record.items()}


def _records(table: pd.DataFrame) -> list[dict[str, Any]]:
    return [_fields(record) for record in table.to_dict("records")]


def to_json(report: Report) -> str:
    payload = {
        "by": report.by,
        "since": _jsonable(report.since),
        "until": _jsonable(report.until),
        "complete": report.complete,
        "totals": _fields(report.totals),
        "groups": _records(report.groups),
        "prefix_families": _records(report.families),
        "unpriced": _records(report.unpriced),
        "calls": None if report.calls is None else _records(report.calls),
        "miss_causes": [_fields(m.as_dict()) for m in report.misses],
    }
    return json.dumps(payload, indent=2) + "\n"


def to_csv(report: Report) -> str:
    buffer = io.StringIO()
    columns = list(report.groups.columns)
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for record in report.groups.to_dict("records"):
        writer.writerow(["" if (v := _field(str(c), record[c])) is None else v for c in columns])
    if report.misses:  # a second table after one empty line: the miss causes, costliest first
        writer.writerow([])
        names = list(report.misses[0].as_dict())
        writer.writerow(["miss_cause" if n == "reason" else n for n in names])
        for cause in report.misses:
            writer.writerow(["" if (v := _field(k, x)) is None else v for k, x in cause.as_dict().items()])
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
    for section in sections(report):
        lines += ["", f"## {section.title}", "", *_markdown_table(section.head, section.body)]
    return "\n".join(lines) + "\n"


#: Headings of the free-text columns that may wrap (a reason, a label); every other cell, headings
#: included, is shown whole or its column is left out.
WRAPPING = ("why", "label")
#: The narrowest a wrapping column is squeezed to (characters).
WRAP_MIN = 20


def _rich_table(section: Section, columns: list[int]) -> Any:
    from rich import box
    from rich.table import Table

    table = Table(title=section.title, title_justify="left", box=box.SIMPLE_HEAD, pad_edge=False)
    for index in columns:
        head = section.head[index]
        full = max([len(head), *(len(cells[index]) for cells in section.body)])
        wraps = index >= section.keys and head in WRAPPING
        table.add_column(
            head,
            justify="left" if index < section.text else "right",
            # a key, a heading or a figure is shown whole (min_width: rich never shrinks it) or
            # not at all; a reason or a label may wrap, down to WRAP_MIN
            no_wrap=not wraps,
            min_width=min(full, WRAP_MIN) if wraps else full,
            overflow="fold",
        )
    for cells in section.body:
        table.add_row(*(cells[index] for index in columns))
    return table


def _fitted(section: Section, console: Any, width: int) -> tuple[Any, int, list[str]]:
    """The table at ``width``: the compact columns below COMPACT_BELOW; then value columns
    dropped, least needed first, until it fits. Keys are never dropped or cut: a table of keys
    wider than ``width`` is printed wider. Returns the table, its width and the left-out headings."""
    from rich.measure import Measurement

    rest = [i for i in range(len(section.head)) if i not in section.compact]
    wanted = [*section.compact, *([] if width < COMPACT_BELOW else rest)]  # by need
    left_out = [i for i in range(len(section.head)) if i not in wanted]
    while True:
        table = _rich_table(section, sorted(wanted))
        need = Measurement.get(console, console.options.update_width(10_000), table).minimum
        if need <= width or len(wanted) <= section.keys:
            return table, max(need, width), [section.head[i] for i in sorted(left_out)]
        left_out.append(wanted.pop())


def to_table(report: Report, width: int | None = None) -> str:
    """The report as rich tables at ``width`` columns (default: the terminal's, else 120)."""
    from rich.console import Console

    if width is None:
        width = shutil.get_terminal_size((120, 24)).columns
    buffer = io.StringIO()
    console = Console(file=buffer, width=10_000, color_system=None, soft_wrap=True)
    for line in headline(report):
        console.print(line, highlight=False, markup=False, soft_wrap=False, width=width)
    for section in sections(report):
        table, table_width, left_out = _fitted(section, console, width)
        console.print(table, width=table_width)
        if left_out:
            console.print(
                f"(left out to fit {width} columns: {', '.join(left_out)}; --format csv has every column)",
                highlight=False,
                markup=False,
                soft_wrap=False,
                width=width,
            )
    return "\n".join(line.rstrip() for line in buffer.getvalue().splitlines()) + "\n"


def render(report: Report, fmt: str) -> str:
    """The report as text in one of :data:`FORMATS`."""
    renderers = {"table": to_table, "csv": to_csv, "json": to_json, "markdown": to_markdown, "html": to_html}
    if fmt not in renderers:
        raise ValueError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")
    return renderers[fmt](report)
