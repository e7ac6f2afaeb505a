"""``cachewise export``: stream the ledger to parquet, CSV or JSON lines for a warehouse."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import click

from ..errors import CachewiseError
from ..ledger import Ledger
from ..progress import progress

__all__ = ["export"]


@click.command("export")
@click.option(
    "--db", "db", metavar="URL", help="Ledger: a SQLite path or database URL (default $CACHEWISE_DB)."
)
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), required=True, help="Output format."
)
@click.option(
    "--since", default=None, help="Start: 30m, 24h, 7d, today or an ISO date (default: everything)."
)
@click.option("--until", default=None, help="End, exclusive: same forms as --since (default: now).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="File (default stdout).",
)
@click.option("--chunk-rows", default=100_000, show_default=True, help="Rows read and written per chunk.")
def export(
    db: str | None, fmt: str, since: str | None, until: str | None, output: Path | None, chunk_rows: int
) -> None:
    """Stream the ledger in chunks to parquet, CSV or JSON lines (money exact, times UTC).

    Memory stays at one chunk, so a ledger of any size goes to DuckDB, BigQuery or Spark.
    """
    try:
        from ..ledger.export import export as run_export
    except ImportError as exc:  # pragma: no cover - pyarrow is a dependency
        raise click.ClickException(f"export needs pyarrow: pip install pyarrow ({exc})") from exc
    from ..reports.window import parse_when

    now = datetime.now(UTC)
    try:
        start = parse_when(since, now) if since else None
        end = parse_when(until, now) if until else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--since/--until") from exc
    if fmt != "jsonl" and output is None and sys.stdout.isatty():
        raise click.UsageError(f"{fmt} is binary or wide: pass --output FILE (or pipe stdout)")
    try:
        with Ledger.open_existing(db, flush_on_signal=False) as ledger:
            total = ledger.totals(start, end).calls
            with progress(f"exporting {fmt}", total) as advance:
                if output is None:
                    rows = run_export(
                        ledger, fmt, sys.stdout.buffer, since=start, until=end,  # type: ignore[arg-type]
                        chunk_rows=chunk_rows, advance=advance,
                    )  # fmt: skip
                else:
                    with output.open("wb") as out:
                        rows = run_export(
                            ledger, fmt, out, since=start, until=end,  # type: ignore[arg-type]
                            chunk_rows=chunk_rows, advance=advance,
                        )  # fmt: skip
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    if output is not None:
        click.echo(f"exported {rows} calls to {output}", err=True)
