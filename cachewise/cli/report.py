"""``cachewise report``: spend, savings, hit ratio and waste from the ledger, in six formats."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from ..errors import LedgerError, UnknownModelError
from ..pricing import PriceBook
from ..reports.render import FORMATS, build_report, render
from ..reports.source import load_frame
from ..reports.window import parse_when

__all__ = ["report"]


def _when(value: str | None, option: str, now: datetime) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_when(value, now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from exc


def _model_names(model: str | None) -> list[str] | None:
    """Every name ``--model`` is stored under (an alias matches its dated id and back)."""
    if model is None:
        return None
    try:
        return sorted(PriceBook.default().resolve_model(model))
    except UnknownModelError as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from exc


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
@click.option("--top", default=10, show_default=True, help="Prefix families shown.")
@click.option("--calls", "calls", default=0, show_default=True, help="Also list the N most recent calls.")
@click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True, help="Output format."
)
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to FILE instead of stdout.",
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
    tags: dict[str, str] = {}
    for item in tag_filters:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--tag")
        tags[key] = value
    names = _model_names(model)
    try:
        frame = load_frame(db, since=start, until=end, model=names, tags=tags or None)
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc
    if model is not None and not len(frame):
        click.echo(f"note: --model {model} matched no call in the window", err=True)
    try:
        result = build_report(frame, by, top=top, calls=calls, since=start, until=end)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--by") from exc
    text = render(result, fmt)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output} ({fmt}, {result.totals['calls']} calls)", err=True)
