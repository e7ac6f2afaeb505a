"""``cachewise prices``: the price table in force, one model or all."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ..errors import PricingError, UnknownModelError
from ..pricing import PriceBook
from .options import price_book, price_table_option

__all__ = ["prices"]


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not an ISO date or datetime", param_hint="--at") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _row(book: PriceBook, model: str, at: datetime) -> dict[str, Any]:
    entry = book.resolve(model)
    rates = book.rates(model, at)
    minimum = book.min_cache_tokens(model, at)
    return {
        "model": entry.id,
        "name": entry.name,
        "at": at.isoformat(),
        "input": rates.input,
        "cache_write_5m": rates.cache_write_5m,
        "cache_write_1h": rates.cache_write_1h,
        "cache_read": rates.cache_read,
        "output": rates.output,
        "min_cache_tokens": minimum.tokens,
        "min_cache_uncertain": minimum.uncertain,
        "price_from": rates.period_from.isoformat(),
        "uncertain": list(rates.uncertain),
        "table_version": rates.table_version,
        "source": entry.source,
        "file": book.source,
        "checked": entry.checked.isoformat(),
    }


def _money(value: Decimal) -> str:
    return f"{value.normalize():f}"


@click.command()
@click.option("--model", "model", help="One model (API id, alias, Bedrock or Vertex name).")
@click.option("--at", "at", help="Date or datetime (ISO 8601, UTC if no zone); default now.")
@price_table_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "include_all", is_flag=True, help="Include models with no price in force.")
def prices(
    model: str | None, at: str | None, overlays: tuple[Path, ...], as_json: bool, include_all: bool
) -> None:
    """Show prices in USD per million tokens in force at a time (default: now)."""
    when = _parse_at(at)
    try:
        book = price_book(overlays)
    except PricingError as exc:
        raise click.ClickException(str(exc)) from exc
    rows: list[dict[str, Any]] = []
    if model:
        try:
            rows.append(_row(book, model, when))
        except UnknownModelError as exc:
            raise click.BadParameter(str(exc), param_hint="--model") from exc
        except PricingError as exc:
            raise click.ClickException(str(exc)) from exc
    else:
        for entry in book.models():
            try:
                rows.append(_row(book, entry.id, when))
            except PricingError:
                if include_all:
                    rows.append({"model": entry.id, "name": entry.name, "input": None})
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    header = (
        f"{'model':<30} {'input':>8} {'5m write':>9} {'1h write':>9} {'read':>8} {'output':>8} {'min':>6}"
    )
    click.echo(f"prices in USD per million tokens at {when.date().isoformat()} (table {book.version})")
    click.echo(header)
    for row in rows:
        if row.get("input") is None:
            click.echo(f"{row['model']:<30} {'no price in force':>44}")
            continue
        flag = " *" if row["uncertain"] or row["min_cache_uncertain"] else ""
        click.echo(
            f"{row['model']:<30} {_money(row['input']):>8} {_money(row['cache_write_5m']):>9} "
            f"{_money(row['cache_write_1h']):>9} {_money(row['cache_read']):>8} "
            f"{_money(row['output']):>8} {row['min_cache_tokens']:>6}{flag}"
        )
    if model and rows:
        row = rows[0]
        click.echo(
            f"\nprice in force since {row['price_from']}; source: {row['source']}; checked {row['checked']}"
        )
        click.echo(f"file: {row['file']}")
        for note in [*row["uncertain"], row["min_cache_uncertain"]]:
            if note:
                click.echo(f"uncertain: {note}")
    elif any(r.get("uncertain") or r.get("min_cache_uncertain") for r in rows):
        click.echo("* a figure in this row is not confirmed by a primary source (see --model X)")
