"""``cachewise report``: spend, savings, hit ratio and waste from the ledger, in six formats."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ..errors import LedgerError, UnknownModelError
from ..ledger import Ledger
from ..ledger.query import Filter
from ..pricing import PriceBook
from ..reports.charts import charts_available
from ..reports.html import CHARTS_HINT
from ..reports.misses import MissCause, ledger_miss_causes
from ..reports.render import FORMATS, build_report, render
from ..reports.source import LedgerSource
from .errors import CliError
from .options import (
    count_option,
    db_option,
    ledger_frame,
    ledger_url,
    output_option,
    price_book,
    price_table_option,
    tag_option,
    window,
    write_output,
)

__all__ = ["report"]


def _model_names(model: str | None, book: PriceBook) -> list[str] | None:
    """Every name ``--model`` is stored under (an alias matches its dated id and back)."""
    if model is None:
        return None
    try:
        return sorted(book.resolve_model(model))
    except UnknownModelError as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from exc


def _misses(db: str | None, flt: Filter, book: PriceBook) -> list[MissCause]:
    """The window's miss causes, summed in SQL and ranked by money (as ``why --causes``)."""
    try:
        with Ledger.open_existing(ledger_url(db, must_exist=True)) as led:
            return ledger_miss_causes(led, flt, book)
    except LedgerError as exc:
        raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc


@click.command()
@db_option()
@click.option("--since", default="7d", show_default=True, help="Start: 30m, 24h, 7d, today or an ISO date.")
@click.option(
    "--until", default=None, help="End (exclusive of later calls): same forms as --since; default now."
)
@click.option(
    "--by",
    default="model",
    show_default=True,
    help="Group keys, comma-separated: model, day, month, tag:NAME or a ledger column.",
)
@click.option("--model", default=None, help="Only calls to this model.")
@tag_option("Only calls with this tag (repeatable; all must match).")
@count_option("--top", default=10, minimum=0, help="Prefix families shown.")
@count_option("--calls", "calls", default=0, minimum=0, help="Also list the N most recent calls.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON (the same as --format json).")
@output_option("Write to FILE instead of stdout (its folder must exist).")
@price_table_option()
def report(
    db: str | None,
    since: str,
    until: str | None,
    by: str,
    model: str | None,
    tags: dict[str, str],
    top: int,
    calls: int,
    fmt: str,
    as_json: bool,
    output: Path | None,
    overlays: tuple[Path, ...],
) -> None:
    """Where the money went and what caching saved, grouped by model, day or tag.

    Unpriced calls are listed apart with their token counts; a total that leaves them out
    is marked INCOMPLETE. The exit code is 0 even then (use `cachewise budget check` to fail CI).
    With --price-table, every call is priced under those prices instead of as recorded.
    """
    if as_json:
        if fmt not in ("table", "json"):
            raise click.UsageError(f"--json and --format {fmt}: give one of them")
        fmt = "json"
    now = datetime.now(UTC)
    start, end = window(since, until, now)
    book = price_book(overlays)  # a PriceTableError exits 2 (cachewise.cli.errors)
    names = _model_names(model, book)
    quarantine = ledger_frame(db, since=start, until=end, model=names, tags=tags, quarantine=True)
    misses = _misses(db, Filter(since=start, until=end, model=names, tags=tags), book)
    try:
        if overlays:  # every call priced under the overlay: a repriced frame (the ledger is unchanged)
            frame = ledger_frame(db, since=start, until=end, model=names, tags=tags, book=book)
            result = build_report(
                frame, by, top=top, calls=calls, since=start, until=end, quarantine=quarantine, misses=misses
            )
            text = render(result, fmt)
        else:
            try:  # sums grouped in SQL: memory follows the groups, not the calls
                url = ledger_url(db, must_exist=True)
                with LedgerSource.open(url, since=start, until=end, model=names, tags=tags) as source:
                    result = build_report(
                        source,
                        by,
                        top=top,
                        calls=calls,
                        since=start,
                        until=end,
                        quarantine=quarantine,
                        misses=misses,
                    )
                    text = render(result, fmt)
            except LedgerError as exc:
                raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from exc
    if model is not None and not result.totals["calls"]:
        click.echo(f"note: --model {model} matched no call in the window", err=True)
    if fmt == "html" and not charts_available():
        click.echo(f"note: the page has no charts. {CHARTS_HINT}", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text, "--output")
        click.echo(f"wrote {output} ({fmt}, {result.totals['calls']} calls)", err=True)
