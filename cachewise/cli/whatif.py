"""``cachewise whatif``: what each caching strategy would cost on your requests, or on the ledger's calls.

``--requests FILE`` replays request bodies on the emulator; without it, the ledger's recorded calls
(``--since``, default 30 days) are replayed from their prefix hashes and counted sizes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .options import db_option, ledger_url, price_book, price_table_option, window

if TYPE_CHECKING:
    from ..pricing import PriceBook
    from ..whatif import Outcome

__all__ = ["whatif"]


@click.command()
@click.option(
    "--requests",
    "requests_file",
    default=None,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL of {"time": ISO 8601, "body": {Messages request}}, one request a line '
    "(without it: the ledger's recorded calls).",
)
@click.option(
    "--since",
    default="30d",
    show_default=True,
    help="Without --requests: replay the ledger's calls since then (30m, 24h, 7d, today, an ISO date).",
)
@db_option()
@click.option(
    "--strategy",
    default=None,
    help="Comma-separated: none, recorded (as sent), auto, static, planner. "
    "Default: none,auto,static,planner with --requests, recorded,none,auto,static,planner on the ledger.",
)
@price_table_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def whatif(
    requests_file: Path | None,
    since: str,
    db: str | None,
    strategy: str | None,
    overlays: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Replay timed requests (``--requests``) or the ledger's recorded calls under each strategy in
    virtual time and compare the prompt's cost side by side (docs/why.md, "What if"). Nothing is sent
    to the API."""
    from ..whatif import LEDGER_STRATEGIES, STRATEGIES

    known = STRATEGIES if requests_file is not None else LEDGER_STRATEGIES
    default = "none,auto,static,planner" if requests_file is not None else ",".join(LEDGER_STRATEGIES)
    names = [s.strip() for s in (strategy or default).split(",") if s.strip()]
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        raise click.BadParameter(
            f"{', '.join(unknown) or strategy!r}: expected {', '.join(known)}", param_hint="--strategy"
        )
    book = price_book(overlays)
    if requests_file is not None:
        outcomes = _from_requests(requests_file, names, book)
    else:
        outcomes = _from_ledger(db, since, names, book)
    _show(outcomes, as_json)


def _from_requests(path: Path, names: list[str], book: PriceBook) -> list[Outcome]:
    from ..whatif import read_requests, replay

    try:
        requests = read_requests(path)
    except ValueError as exc:
        raise click.ClickException(f"--requests: {exc}") from exc
    return [replay(requests, name, book) for name in names]


def _from_ledger(db: str | None, since: str, names: list[str], book: PriceBook) -> list[Outcome]:
    from ..errors import LedgerError
    from ..ledger import Ledger
    from ..whatif import recorded_calls, replay_recorded

    start, end = window(since, None, datetime.now(UTC))
    url = ledger_url(db, must_exist=True)
    try:
        with Ledger.open_existing(url) as led:
            records = led.calls(since=start, until=end)
    except LedgerError as exc:
        raise click.ClickException(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    found = recorded_calls(records)
    if found.without:
        click.echo(
            f"{found.without} of {len(records)} calls have no replay points (recorded before ledger step "
            "0008, imported, or batch results) and are left out",
            err=True,
        )
    try:
        return [replay_recorded(found.calls, name, book) for name in names]
    except ValueError as exc:  # a row whose replay points cannot be read: name it
        raise click.ClickException(f"--db {db or url!r}: {exc}") from exc


def _show(outcomes: list[Outcome], as_json: bool) -> None:
    base = next((o.cost for o in outcomes if o.strategy == "none"), None)
    if as_json:
        rows = [
            {
                "strategy": o.strategy,
                "calls": o.calls,
                "cost": format(o.cost, "f"),
                "savings": None if base is None else format(base - o.cost, "f"),
                "input_tokens": o.input_tokens,
                "cache_write_tokens": o.cache_write_tokens,
                "cache_read_tokens": o.cache_read_tokens,
                "hit_ratio": round(o.hit_ratio, 4),
            }
            for o in outcomes
        ]
        click.echo(json.dumps(rows, indent=2))
        return
    header = f"{'strategy':<10} {'calls':>6} {'prompt cost':>14} {'saved vs none':>14} {'hit ratio':>10}"
    click.echo(header)
    click.echo("-" * len(header))
    for o in outcomes:
        saved = "" if base is None else f"${base - o.cost:,.6f}"
        click.echo(f"{o.strategy:<10} {o.calls:>6} {f'${o.cost:,.6f}':>14} {saved:>14} {o.hit_ratio:>10.1%}")
