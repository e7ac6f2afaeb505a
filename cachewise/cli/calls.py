"""``cachewise calls``: the most recent calls in the ledger, newest first (like ``llm logs``)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import click

from ..errors import LedgerError, UnknownModelError
from ..ledger import Ledger
from ..ledger.record import STATUSES, CallRecord
from .options import count_option, db_option, ledger_url, tag_option, window

__all__ = ["calls"]


def _row(record: CallRecord) -> dict[str, Any]:
    usage = record.usage
    return {
        "started_at": record.started_at.astimezone(UTC).isoformat(),
        "request_id": record.request_id,
        "model": record.model,
        "status": record.status,
        "input_tokens": usage.input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "output_tokens": usage.output_tokens,
        "cost_total": None if record.cost is None else f"{record.cost.cost_total:f}",
        "cost_error": record.cost_error,
        "tags": dict(record.tags),
    }


def _model_names(model: str | None) -> str | list[str] | None:
    """Every name ``--model`` is stored under when the price table knows it, else ``model`` as written."""
    from ..pricing import PriceBook

    if model is None:
        return None
    try:
        return sorted(PriceBook.default().resolve_model(model))
    except UnknownModelError:
        return model


def _usd(value: str | None) -> str:
    return "unpriced" if value is None else f"${Decimal(value):,.4f}"


def _table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'started (UTC)':<19} {'model':<26} {'status':<10} {'input':>8} {'read':>8} "
        f"{'write':>8} {'output':>7} {'cost':>10}  tags"
    )
    lines = [header, "-" * len(header)]
    for row in rows:
        tags = ",".join(f"{k}={v}" for k, v in sorted(row["tags"].items()))
        lines.append(
            f"{row['started_at'][:19].replace('T', ' '):<19} {row['model']:<26} {row['status']:<10} "
            f"{row['input_tokens']:>8} {row['cache_read_input_tokens']:>8} "
            f"{row['cache_creation_input_tokens']:>8} {row['output_tokens']:>7} "
            f"{_usd(row['cost_total']):>10}  {tags}"
        )
    return "\n".join(lines) + "\n"


@click.command()
@db_option()
@count_option("-n", "--count", "count", default=10, minimum=1, help="How many calls.")
@click.option("--model", default=None, help="Only calls to this model (an alias matches its dated id).")
@tag_option("Only calls with this tag (repeatable; all must match).")
@click.option("--status", type=click.Choice(STATUSES), default=None, help="Only calls with this status.")
@click.option("--since", default=None, help="Start: 30m, 24h, 7d, today or an ISO date; default all.")
@click.option("--until", default=None, help="End (exclusive): same forms as --since; default now.")
@click.option("--json", "as_json", is_flag=True, help="Print the calls as a JSON list instead of a table.")
def calls(
    db: str | None,
    count: int,
    model: str | None,
    tags: dict[str, str],
    status: str | None,
    since: str | None,
    until: str | None,
    as_json: bool,
) -> None:
    """The most recent calls in the ledger, newest first: time, model, status, tokens, cost and tags.

    Token counts use the API's names: input (uncached), read (cache reads), write (cache writes).
    """
    start, end = window(since, until, datetime.now(UTC))
    url = ledger_url(db, must_exist=True)
    try:
        with Ledger.open_existing(url) as led:
            records = led.calls(since=start, until=end, model=_model_names(model), tags=tags or None)
    except LedgerError as exc:
        raise click.ClickException(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    if status is not None:
        records = [r for r in records if r.status == status]
    records.sort(key=lambda r: r.started_at, reverse=True)
    rows = [_row(r) for r in records[:count]]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif rows:
        click.echo(_table(rows), nl=False)
    else:
        click.echo("no calls match", err=True)
