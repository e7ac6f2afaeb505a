"""A report bundle (:class:`Report`) and what every human format shows of it: the headline and
the table sections, as text cells.

Money is rounded here, for display only: always 4 decimal places, with the sign before the
dollar (``-$0.0158``). Prefix families are shown by a short hash and a label (their most common
model and tag). A total that leaves out unpriced calls is always marked incomplete. Each
:class:`Section` says which columns are its keys (never dropped or cut) and which make the
compact layout. The renderings are in :mod:`.render` and :mod:`.html`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from .frames import group_keys
from .misses import MissCause
from .source import Source, as_source

__all__ = ["FORMATS", "SHORT_HASH", "Report", "Section", "build_report", "headline", "money", "sections"]

FORMATS = ("table", "csv", "json", "markdown", "html")

_QUANT = Decimal("0.0001")
SHORT_HASH = 12  # hex digits of a prefix hash shown in the human formats

# (column, heading, kind) shown in the tables of every human format.
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("calls", "calls", "int"),
    ("unpriced_calls", "unpriced", "int"),
    ("prompt_tokens", "prompt tok", "int"),
    ("output_tokens", "output tok", "int"),
    ("hit_ratio", "hit ratio", "pct"),
    ("wasted_write_tokens", "wasted write tok", "int"),
    ("cost_total", "cost", "money"),
    ("cost_no_cache", "no-cache", "money"),
    ("savings", "saved", "money"),
    ("effective_input_price", "in $/MTok", "money"),
)
# The value columns the compact layout (a narrow terminal) keeps, by heading, in order of need.
_COMPACT = ("calls", "cost", "saved", "hit ratio")


@dataclass(frozen=True)
class Report:
    """Everything one report shows, as frames (money still ``Decimal``); ``source`` is where
    they were read (the charts read it too), ``labels`` each family's label."""

    by: list[str]
    totals: dict[str, Any]
    groups: pd.DataFrame
    families: pd.DataFrame
    unpriced: pd.DataFrame
    source: Source = field(repr=False)
    calls: pd.DataFrame | None = None
    since: datetime | None = None
    until: datetime | None = None
    labels: dict[str, str] = field(default_factory=dict)
    #: the miss causes in the window, costliest first (:mod:`.misses`)
    misses: tuple[MissCause, ...] = ()

    @property
    def complete(self) -> bool:
        return bool(self.totals["unpriced_calls"] == 0 and self.totals["quarantined_calls"] == 0)


def build_report(
    frame: pd.DataFrame | Source,
    by: str | Sequence[str] | None = ("model",),
    *,
    top: int = 10,
    calls: int = 0,
    since: datetime | None = None,
    until: datetime | None = None,
    quarantine: pd.DataFrame | None = None,
    misses: Sequence[MissCause] = (),
) -> Report:
    """Spend and savings by ``by``, the ``top`` costliest prefix families, the unpriced calls,
    and (``calls`` > 0) that many most recent calls.

    ``frame``: a ledger frame, or a :class:`~cachewise.reports.source.LedgerSource` (the sums
    grouped in SQL; the figures are the same).

    ``quarantine`` (:func:`cachewise.reports.source.load_quarantine`): the records the database
    refused in the same window and scope; they are in no total, so a report with any is incomplete.

    ``misses``: the window's miss causes ranked by money (:func:`.misses.ledger_miss_causes`).
    """
    source = as_source(frame)
    groups = source.spend(by)
    summary = source.totals() | {"quarantined_calls": 0 if quarantine is None else len(quarantine)}
    families = source.families(top)
    return Report(
        by=group_keys(by),
        totals=summary,
        groups=groups,
        families=families,
        unpriced=source.unpriced(),
        calls=source.calls(calls) if calls else None,
        source=source,
        since=since,
        until=until,
        labels=source.family_labels([str(p) for p in families["prefix_hash"]]) if len(families) else {},
        misses=tuple(misses),
    )


# -- cells ----------------------------------------------------------------------------------------


def money(value: Any) -> str:
    """``$1,234.5678``, ``-$0.0158``; ``unpriced`` for ``None``. For display only."""
    if value is None:
        return "unpriced"
    amount = Decimal(value).quantize(_QUANT)
    if amount == 0:
        amount = abs(amount)  # no "-$0.0000"
    return f"{'-' if amount < 0 else ''}${abs(amount):,}"


_money = money


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
        f"spend: {_money(t['cost_total'])}" + _incomplete(t),
        f"without caching: {_money(t['cost_no_cache'])}; saved: {_money(t['savings'])}",
        f"cache hit ratio: {_cell(t['hit_ratio'], 'pct')}; "
        f"wasted writes: {t['wasted_write_tokens']:,} tokens ({_money(t['wasted_write_cost'])})",
        f"effective input price: {_cell(t['effective_input_price'], 'money')} per million prompt tokens",
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
    ("cost_total", "cost", "money"),
    ("savings", "saved", "money"),
)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and np.isnan(value))


def _short(prefix: Any) -> str:
    return "-" if _missing(prefix) else str(prefix)[:SHORT_HASH]


def _call_rows(calls: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    head = ["started_at", "request_id", "model", "prefix", *(h for _, h, _ in _CALL_COLUMNS)]
    body = []
    for record in calls.to_dict("records"):
        cells = [
            pd.Timestamp(record["started_at"]).strftime("%Y-%m-%d %H:%M:%S"),
            str(record["request_id"]),
            str(record["model"]),
            _short(record.get("prefix_hash")),
        ]
        cells += [_cell(record[column], kind) for column, _, kind in _CALL_COLUMNS]
        body.append(cells)
    return head, body


def _family_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    head, body = _table_rows(report.families, ["prefix_hash"])
    labels = report.labels
    out = []
    for record, cells in zip(report.families.to_dict("records"), body, strict=True):
        out.append([_short(record["prefix_hash"]), labels.get(str(record["prefix_hash"]), ""), *cells[1:]])
    return ["prefix", "label", *head[1:]], out


@dataclass(frozen=True)
class Section:
    """One table: its rows as text cells, its ``keys`` leading columns (never dropped, never
    cut), its ``text`` leading columns (left-aligned; the rest are numbers, right-aligned), and
    the columns of the compact layout (indices, keys first, then by need)."""

    title: str
    head: list[str]
    body: list[list[str]]
    keys: int
    text: int
    compact: tuple[int, ...]


MISS_HEAD = ["cause", "level", "calls", "could read tok", "lost", "unpriced"]


def _miss_rows(report: Report) -> tuple[list[str], list[list[str]]]:
    body = [
        [m.reason, m.level or "-", f"{m.calls:,}", f"{m.tokens:,}", _money(m.cost), f"{m.unpriced:,}"]
        for m in report.misses
    ]
    return MISS_HEAD, body


def _section(title: str, head: list[str], body: list[list[str]], keys: int, text: int) -> Section:
    labels = list(range(keys, text)) if title.startswith(("Costliest", "Unpriced")) else []
    extra = [*labels, *(head.index(name) for name in _COMPACT if name in head[keys:])]
    return Section(title, head, body, keys, text, (*range(keys), *extra))


def sections(report: Report) -> list[Section]:
    by = report.by or ["all"]
    groups = report.groups if report.by else report.groups.assign(all="all")
    out = [_section(f"Spend and savings by {', '.join(by)}", *_table_rows(groups, by), len(by), len(by))]
    out.append(_section("Costliest prefix families", *_family_rows(report), 1, 2))
    if report.misses:
        out.append(_section("Miss causes, costliest first", *_miss_rows(report), 1, 2))
    if len(report.unpriced):
        out.append(_section("Unpriced calls (not in any total)", *_unpriced_rows(report), 1, 2))
    if report.calls is not None:
        out.append(_section(f"Most recent {len(report.calls)} calls", *_call_rows(report.calls), 2, 4))
    return out


# -- formats --------------------------------------------------------------------------------------
