"""``cachewise report``: spend, savings, hit ratio and waste from the ledger, in six formats."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ..errors import LedgerError
from ..reports.charts import charts_available
from ..reports.html import CHARTS_HINT
from ..reports.render import FORMATS, build_report, render
from ..reports.source import load_frame
from ..reports.window import parse_when
from .errors import CliError
from .options import OutputPath, ledger_url, write_output

__all__ = ["report"]


def _when(value: str | None, option: str, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


@click.command()
@click.option(
    "--db", "db", metavar="URL", help="Ledger: a SQLite path or database URL (default $CACHEWISE_DB)."
)
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
@click.option("--tag", "tag_filters", multiple=True, metavar="KEY=VALUE", help="Only calls with this tag.")
@click.option(
    "--top", default=10, show_default=True, type=click.IntRange(min=0), help="Prefix families shown."
)
@click.option(
    "--calls",
    "calls",
    default=0,
    show_default=True,
    type=click.IntRange(min=0),
    help="Also list the N most recent calls.",
)
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@click.option(
    "--output",
    "output",
    type=OutputPath(),
    help="Write to FILE instead of stdout (its folder must exist).",
)
def report(
    db: str | None,
    since: str,
    until: str | None,
    by: str,
    model: str | None,
    tag_filters: tuple[str, ...],
    top: int,
    calls: int,
    fmt: str,
    output: Path | None,
) -> None:
    """Where the money went and what caching saved, grouped by model, day or tag.

    Unpriced calls are listed apart with their token counts; a total that leaves them out
    is marked INCOMPLETE. The exit code is 0 even then (use `cachewise budget check` to fail CI).
    """
    now = datetime.now(UTC)
    start, end = _when(since, "--since", now), _when(until, "--until", now)
    if start is not None and end is not None and start > end:
        raise click.BadParameter(
            f"{since!r} ({start.isoformat()}) is after --until {until!r} ({end.isoformat()})",
            param_hint="'--since'",
        )
    tags: dict[str, str] = {}
    for item in tag_filters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--tag")
        tags[key] = value
    url = ledger_url(db, must_exist=True)
    try:
        frame = load_frame(url, since=start, until=end, model=model, tags=tags or None)
    except LedgerError as exc:
        raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    try:
        result = build_report(frame, by, top=top, calls=calls, since=start, until=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from exc
    text = render(result, fmt)
    if fmt == "html" and not charts_available():
        click.echo(f"note: the page has no charts. {CHARTS_HINT}", err=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        write_output(output, text, "--output")
        click.echo(f"wrote {output} ({fmt}, {result.totals['calls']} calls)", err=True)
