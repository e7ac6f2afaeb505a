"""``cachewise demo``: see what caching saves, offline, in under a minute."""

from __future__ import annotations

import os
from decimal import Decimal

import click

from .options import db_option, ledger_url

__all__ = ["demo"]


def _usd(value: Decimal) -> str:
    return f"${value:,.4f}"


@click.command()
@db_option(default="$CACHEWISE_DEMO_DB, else demo.sqlite in the user data dir")
@click.option(
    "--live",
    is_flag=True,
    help="Call the real API (needs ANTHROPIC_API_KEY) with a small workload instead of the emulator.",
)
def demo(db: str | None, live: bool) -> None:
    """Run a realistic workload with and without cachewise on the embedded emulator; print the savings."""
    from ..demo import run_demo

    if live and not os.environ.get("ANTHROPIC_API_KEY"):
        raise click.UsageError(
            "--live needs ANTHROPIC_API_KEY; without it the demo runs on the embedded emulator"
        )
    if db is not None:
        ledger_url(db, must_exist=False)  # a bad URL or an unusable path is an Error: before any work
    where = (
        "the real Claude API"
        if live
        else "the embedded Claude emulator (virtual time, nothing leaves this machine)"
    )
    click.echo(f"cachewise demo on {where}")
    click.echo(
        "workloads: support chat on a long manual, document Q&A over two contracts, a coding agent loop"
    )
    result = run_demo(db, live=live)
    click.echo("")
    header = (
        f"{'model':<26} {'calls':>5} {'as written':>12} {'with cachewise':>15} "
        f"{'saved':>12} {'saved %':>8} {'hit ratio':>9}"
    )
    click.echo(header)
    click.echo("-" * len(header))
    for row in result.summary.to_dict("records"):
        click.echo(
            f"{row['model']:<26} {row['calls']:>5} {_usd(row['baseline_cost']):>12} "
            f"{_usd(row['cachewise_cost']):>15} {_usd(row['saved']):>12} "
            f"{float(row['saved_pct']):>7.1f}% {row['hit_ratio']:>9.0%}"
        )
    base = sum(result.summary["baseline_cost"], Decimal(0))
    wise = sum(result.summary["cachewise_cost"], Decimal(0))
    click.echo("-" * len(header))
    pct = float((base - wise) / base * 100) if base else 0.0
    click.echo(
        f"{'total':<26} {'':>5} {_usd(base):>12} {_usd(wise):>15} {_usd(base - wise):>12} {pct:>7.1f}%"
    )
    if result.emulator_bills:
        agrees = result.emulator_bills == {"baseline": base, "cachewise": wise}
        click.echo(f"\nledger total equals the emulator's own bill: {'yes' if agrees else 'NO'}")
    click.echo(f"recorded in {result.ledger} (session {result.session}) in {result.seconds:.1f} s")
    click.echo(f"next: cachewise report --db {result.ledger} --by model,tag:workload")
    click.echo("      or open notebooks/what_caching_saved.ipynb (it reads the same demo ledger)")
