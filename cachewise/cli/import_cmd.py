"""``cachewise import``: traffic that was never wrapped, into the ledger (``import claude-code``)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import click

from ..errors import LedgerError
from ..ledger import Ledger
from .options import db_option, ledger_url, price_book, price_table_option

__all__ = ["import_group"]


@click.group("import")
def import_group() -> None:
    """Import calls made without cachewise into the ledger, so reports cover them (docs/why.md)."""


@import_group.command("claude-code")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@db_option()
@price_table_option()
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def claude_code(path: Path | None, db: str | None, overlays: tuple[Path, ...], as_json: bool) -> None:
    """Claude Code session logs (PATH: a .jsonl file or a folder; default ~/.claude/projects).

    One row per billed request: lines repeating a message id and request id (streamed responses,
    subagent copies) count once. Only usage, model, time and ids are kept, never the prompt text.
    A second import of the same logs adds nothing.
    """
    from ..importers import default_root, read_claude_code

    source = path or default_root()
    if not source.exists():
        raise click.ClickException(f"PATH {str(source)!r}: no Claude Code logs there")
    try:
        read = read_claude_code(source, book=price_book(overlays))
    except OSError as exc:
        raise click.ClickException(f"PATH {str(source)!r}: {exc}") from exc
    url = ledger_url(db, must_exist=False)
    try:
        with Ledger(url) as led:
            before = led.stats.inserted
            for record in read.records:
                led.record(record)
            led.flush()
            stats = led.stats
            inserted, known = stats.inserted - before, stats.duplicates
    except LedgerError as exc:
        raise click.ClickException(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    cost = sum((r.cost.cost_total for r in read.records if r.cost is not None), Decimal(0))
    summary = {
        "files": read.files,
        "lines": read.lines,
        "calls": len(read.records),
        "repeated_lines": read.duplicates,
        "inserted": inserted,
        "already_in_ledger": known,
        "unpriced": sum(1 for r in read.records if r.cost is None),
        "cost_total": format(cost, "f"),
        "skipped": read.skipped,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(
        f"{read.files} files, {read.lines} lines: {len(read.records)} calls "
        f"({read.duplicates} repeated lines counted once); {inserted} new in the ledger, "
        f"{known} already there; ${cost:,.4f}"
        + (f", {summary['unpriced']} unpriced" if summary["unpriced"] else "")
    )
    for problem in read.problems[:10]:
        click.echo(f"skipped {problem}", err=True)
