"""``cachewise whatif --requests FILE``: what each caching strategy would cost on your requests."""

from __future__ import annotations

import json
from pathlib import Path

import click

from .options import price_book, price_table_option

__all__ = ["whatif"]


@click.command()
@click.option(
    "--requests",
    "requests_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help='JSONL of {"time": ISO 8601, "body": {Messages request}}, one request a line.',
)
@click.option(
    "--strategy",
    default="none,auto,static,planner",
    show_default=True,
    help="Comma-separated: none, recorded (as written), auto, static, planner.",
)
@price_table_option()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def whatif(requests_file: Path, strategy: str, overlays: tuple[Path, ...], as_json: bool) -> None:
    """Replay timed requests under each strategy on the emulator (virtual time) and compare the
    prompt's cost side by side (docs/why.md, "What if"). Nothing is sent to the API."""
    from ..whatif import STRATEGIES, read_requests, replay

    names = [s.strip() for s in strategy.split(",") if s.strip()]
    unknown = [s for s in names if s not in STRATEGIES]
    if unknown or not names:
        raise click.BadParameter(
            f"{', '.join(unknown) or strategy!r}: expected {', '.join(STRATEGIES)}", param_hint="--strategy"
        )
    try:
        requests = read_requests(requests_file)
    except ValueError as exc:
        raise click.ClickException(f"--requests: {exc}") from exc
    book = price_book(overlays)
    outcomes = [replay(requests, name, book) for name in names]
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
