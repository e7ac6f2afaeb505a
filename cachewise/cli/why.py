"""``cachewise why``: why one call missed the cache, and which miss causes cost the most."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..errors import LedgerError
from ..ledger import Ledger
from ..ledger.record import CallRecord
from .options import db_option, ledger_url, price_book, price_table_option, window

if TYPE_CHECKING:
    from ..pricing import PriceBook
    from ..reports.misses import MissCause

__all__ = ["why"]

_EXPLAIN = {
    "no_previous": "no earlier request to compare with (a cold start)",
    "model_changed": "the earlier request ran on another model",
    "not_written": "the earlier request carried no marker, so nothing was cached",
    "prefix_changed": "the prefix changed before the earlier request's last marker",
    "concurrent": "the earlier request had not answered yet: its cache writes were not readable",
    "expired": "the cache entry had expired (the gap was longer than its TTL)",
    "below_minimum": "the marked prefix was below the model's minimum cacheable length",
    "no_marker": "this request carried no cache_control marker",
    "beyond_lookback": "every marker lay 20 or more positions past the cached entry (the lookback)",
    "unexplained": "the prefix, TTL and markers allowed a read; the entry was gone (evicted?)",
}


def _load(db: str | None, since: str | None) -> list[CallRecord]:
    start, end = window(since, None, datetime.now(UTC))
    url = ledger_url(db, must_exist=True)
    try:
        with Ledger.open_existing(url) as led:
            return led.calls(since=start, until=end)
    except LedgerError as exc:
        raise click.ClickException(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc


def _causes(db: str | None, since: str | None, book: PriceBook) -> list[MissCause]:
    """The miss causes in the window, summed in SQL over the ledger and ranked by money."""
    from ..ledger.query import Filter
    from ..reports.misses import ledger_miss_causes

    start, end = window(since, None, datetime.now(UTC))
    url = ledger_url(db, must_exist=True)
    try:
        with Ledger.open_existing(url) as led:
            return ledger_miss_causes(led, Filter(since=start, until=end), book)
    except LedgerError as exc:
        raise click.ClickException(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc


def _usd(value: Decimal | None) -> str:
    return "unpriced" if value is None else f"${value:,.6f}"


def explain(record: CallRecord, tokens: int, cost: Decimal | None) -> dict[str, Any]:
    """What ``cachewise why`` shows for one call, as JSON-safe values."""
    detail = dict(record.miss_detail or {})
    return {
        "request_id": record.request_id,
        "started_at": record.started_at.isoformat(),
        "model": record.model,
        "miss_reason": record.miss_reason,
        "explanation": _EXPLAIN.get(record.miss_reason or ""),
        "level": detail.get("level"),
        "position": detail.get("position"),
        "hash_before": detail.get("hash_before"),
        "hash_now": detail.get("hash_now"),
        "gap_seconds": detail.get("gap_seconds"),
        "api_miss_reason": record.api_miss_reason,
        "api_missed_tokens": record.api_missed_tokens,
        "tokens": tokens,
        "cost": None if cost is None else format(cost, "f"),
    }


def _text(shown: dict[str, Any]) -> str:
    lines = [f"{shown['request_id']}  {shown['model']}  {shown['started_at']}"]
    if shown["miss_reason"] is None and shown["api_miss_reason"] is None:
        return lines[0] + "\nno miss recorded: the call read what the earlier request cached\n"
    lines.append(
        f"reason:        {shown['miss_reason'] or '-'}  ({shown['explanation'] or 'no local reason'})"
    )
    if shown["level"] is not None:
        lines.append(f"first differs: {shown['level']} position {shown['position']}")
        lines.append(f"  before:      {shown['hash_before']}")
        lines.append(f"  now:         {shown['hash_now']}")
    if shown["gap_seconds"] is not None:
        lines.append(f"gap:           {shown['gap_seconds']:g} s since the earlier request")
    if shown["api_miss_reason"] is not None:
        extra = "" if shown["api_missed_tokens"] is None else f" ({shown['api_missed_tokens']} tokens)"
        lines.append(f"API says:      {shown['api_miss_reason']}{extra}")
    cost = None if shown["cost"] is None else Decimal(shown["cost"])
    lines.append(f"could read:    {shown['tokens']} tokens")
    lines.append(f"cost of miss:  {_usd(cost)}")
    return "\n".join(lines) + "\n"


def _causes_text(rows: list[dict[str, Any]]) -> str:
    header = f"{'cause':<28} {'level':<9} {'calls':>6} {'tokens':>10} {'cost':>14}"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row['reason']:<28} {row['level'] or '':<9} {row['calls']:>6} {row['tokens']:>10} "
            f"{_usd(row['cost']):>14}" + (f"  ({row['unpriced']} unpriced)" if row["unpriced"] else "")
        )
    return "\n".join(lines) + "\n"


@click.command()
@click.argument("request_id", required=False)
@db_option()
@click.option("--causes", is_flag=True, help="Rank every miss cause in the window by the money it cost.")
@click.option("--since", default=None, help="With --causes: start, as 30m, 24h, 7d, today or an ISO date.")
@price_table_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def why(
    request_id: str | None,
    db: str | None,
    causes: bool,
    since: str | None,
    overlays: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Why the call REQUEST_ID missed the cache: the reason, where the prefix first differed (both
    hashes), the tokens it could have read and what that cost; or, with --causes, every miss cause
    ranked by money (docs/why.md).
    """
    from ..reports.misses import miss_cause_rows, miss_of

    if (request_id is None) == (not causes):
        raise click.UsageError("give a REQUEST_ID, or --causes (not both)")
    book = price_book(overlays)
    if causes:
        rows = miss_cause_rows(_causes(db, since, book))
        if as_json:
            click.echo(json.dumps([{**r, "cost": format(r["cost"], "f")} for r in rows], indent=2))
        elif rows:
            click.echo(_causes_text(rows), nl=False)
        else:
            click.echo("no misses recorded", err=True)
        return
    records = _load(db, None)
    found = [r for r in records if r.request_id == request_id]
    if not found:
        raise click.ClickException(f"REQUEST_ID {request_id!r}: no such call in the ledger")
    record = found[0]
    tokens, cost = miss_of(record, book)
    shown = explain(record, tokens, cost)
    click.echo(json.dumps(shown, indent=2) if as_json else _text(shown), nl=not as_json)
