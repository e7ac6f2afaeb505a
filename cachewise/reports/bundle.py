"""A report bundle (:class:`Report`) and what every human format shows of it: the headline and
the table sections, as text cells.

Money is rounded here, for display only (4 decimal places in tables). A total that leaves out
unpriced calls is always marked incomplete. The renderings are in :mod:`.render` and :mod:`.html`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from .frames import annotate, call_detail, group_keys, prefix_families, spend, totals, unpriced

__all__ = ["FORMATS", "Report", "Section", "build_report", "headline", "sections"]

FORMATS = ("table", "csv", "json", "markdown", "html")

_QUANT = Decimal("0.0001")

# (column, heading, kind) shown in the tables of every human format.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("calls", "calls", "int"),
    ("unpriced_calls", "unpriced", "int"),
    ("prompt_tokens", "prompt tok", "int"),
    ("output_tokens", "output tok", "int"),
    ("hit_ratio", "hit ratio", "pct"),
    ("wasted_write_tokens", "wasted write tok", "int"),
    ("cost_total", "cost $", "money"),
    ("cost_no_cache", "no-cache $", "money"),
    ("savings", "saved $", "money"),
    ("effective_input_price", "$/MTok in", "money"),
)


@dataclass(frozen=True)
class Report:
    """Everything one report shows, as frames (money still ``Decimal``)."""

    by: list[str]
    totals: dict[str, Any]
    groups: pd.DataFrame
    families: pd.DataFrame
    unpriced: pd.DataFrame
    frame: pd.DataFrame = field(repr=False)
    calls: pd.DataFrame | None = None
    since: datetime | None = None
    until: datetime | None = None

    @property
    def complete(self) -> bool:
        return bool(self.totals["unpriced_calls"] == 0 and self.totals["quarantined_calls"] == 0)


def build_report(
    frame: pd.DataFrame,
    by: str | Sequence[str] | None = ("model",),
    *,
    top: int = 10,
    calls: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    quarantine: pd.DataFrame | None = None,
) -> Report:
    """Spend and savings by ``by``, the ``top`` costliest prefix families, the unpriced calls,
    and (``calls`` > 0) that many most recent calls.

    ``quarantine`` (:func:`cachewise.reports.source.load_quarantine`): the records the database
    refused in the same window and scope; they are in no total, so a report with any is incomplete.
    """
    rows = annotate(frame)
    summary = totals(rows) | {"quarantined_calls": 0 if quarantine is None else len(quarantine)}
    return Report(
        by=group_keys(by),
        totals=summary,
        groups=spend(rows, by),
        families=prefix_families(rows, top),
        unpriced=unpriced(rows),
        calls=call_detail(rows, limit=calls) if calls else None,
        frame=rows,
        since=since,
        until=until,
    )


# -- cells ----------------------------------------------------------------------------------------


def _money(value: Any) -> str:
    if value is None:
        return "unpriced"
    return f"{Decimal(value).quantize(_QUANT):,}"


def _cell(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "unpriced" if kind == "money" else "-"
    if kind == "money":
        return _money(value)
    if kind == "pct":
        return f"{float(value):.1%}"
    if kind == "int":
        return f"{int(value):,}"
    return _key(value)


def _key(value: Any) -> str:
    if isinstance(value, pd.Timestamp):
        return value.strftime("%Y-%m-%d") if value == value.floor("D") else value.isoformat()
    return str(value)


def _table_rows(table: pd.DataFrame, keys: Sequence[str]) -> tuple[list[str], list[list[str]]]:
    head = [*keys, *(heading for _, heading, _ in _COLUMNS)]
    body = []
    for record in table.to_dict("records"):
        cells = [_key(record[key]) for key in keys]
        cells += [_cell(record[column], kind) for column, _, kind in _COLUMNS]
        body.append(cells)
    return head, body


def _incomplete(t: dict[str, Any]) -> str:
    left_out = [kind for kind in ("unpriced", "quarantined") if t[f"{kind}_calls"]]
    return f" (INCOMPLETE: {' and '.join(left_out)} calls left out)" if left_out else ""


def headline(report: Report) -> list[str]:
    t = report.totals
    start = _key(report.since) if report.since else "start"
    window = f"{start} .. {_key(report.until) if report.until else 'now'}"
    lines = [
        f"window: {window}",
        f"calls: {t['calls']:,} ({t['unpriced_calls']:,} unpriced"
        + (f", {t['quarantined_calls']:,} quarantined)" if t["quarantined_calls"] else ")"),
        f"spend: ${_money(t['cost_total'])}" + _incomplete(t),
        f"without caching: ${_money(t['cost_no_cache'])}; saved: ${_money(t['savings'])}",
        f"cache hit ratio: {_cell(t['hit_ratio'], 'pct')}; "
        f"wasted writes: {t['wasted_write_tokens']:,} tokens (${_money(t['wasted_write_cost'])})",
        f"effective input price: ${_cell(t['effective_input_price'], 'money')} per million prompt tokens",
    ]
    if t["unpriced_calls"]:
        lines.append(
            f"UNPRICED: {t['unpriced_calls']:,} calls, {t['unpriced_prompt_tokens']:,} prompt and "
            f"{t['unpriced_output_tokens']:,} output tokens have no price and are not in any total"
        )
    if t["quarantined_calls"]:
        lines.append(
            f"QUARANTINED: {t['quarantined_calls']:,} calls the database refused are not in any total "
            "(`cachewise ledger info` lists them with their reasons)"
        )
    return lines


def _unpriced_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    head = ["model", "why", "calls", "prompt tok", "output tok"]
    body = [
        [
            str(r["model"]),
            str(r["cost_error"]),
            f"{r['calls']:,}",
            f"{r['prompt_tokens']:,}",
            f"{r['output_tokens']:,}",
        ]
        for r in report.unpriced.to_dict("records")
    ]
    return head, body


_CALL_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("input_tokens", "input tok", "int"),
    ("cache_creation_input_tokens", "write tok", "int"),
    ("cache_read_input_tokens", "read tok", "int"),
    ("output_tokens", "output tok", "int"),
    ("wasted_write_tokens", "wasted tok", "int"),
    ("cost_total", "cost $", "money"),
    ("savings", "saved $", "money"),
)


def _call_rows(calls: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    head = ["started_at", "request_id", "model", "prefix_hash", *(h for _, h, _ in _CALL_COLUMNS)]
    body = []
    for record in calls.to_dict("records"):
        prefix = record.get("prefix_hash")
        cells = [
            pd.Timestamp(record["started_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            str(record["request_id"]),
            str(record["model"]),
            "-" if prefix is None or (isinstance(prefix, float) and np.isnan(prefix)) else str(prefix),
        ]
        cells += [_cell(record[column], kind) for column, _, kind in _CALL_COLUMNS]
        body.append(cells)
    return head, body


Section = tuple[str, list[str], list[list[str]], int]  # title, head, body, leading text columns


def sections(report: Report) -> list[Section]:
    by = report.by or ["all"]
    groups = report.groups if report.by else report.groups.assign(all="all")
    sections: list[Section] = [(f"Spend and savings by {', '.join(by)}", *_table_rows(groups, by), len(by))]
    sections.append(("Costliest prefix families", *_table_rows(report.families, ["prefix_hash"]), 1))
    if len(report.unpriced):
        sections.append(("Unpriced calls (not in any total)", *_unpriced_rows(report), 2))
    if report.calls is not None:
        sections.append((f"Most recent {len(report.calls)} calls", *_call_rows(report.calls), 4))
    return sections


# -- formats --------------------------------------------------------------------------------------
