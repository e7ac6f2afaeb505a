"""``cachewise export``: stream the ledger to parquet, CSV or JSON lines for a warehouse."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from ..errors import LedgerError
from ..progress import progress
from .errors import CliError
from .options import count_option, db_option, ledger_url, output_option, window

__all__ = ["export"]


@click.command("export")
@db_option()
@click.option(
    "--format", "fmt", type=click.Choice(["parquet", "csv", "jsonl"]), required=True, help="Output format."
)
@click.option(
    "--since", default=None, help="Start: 30m, 24h, 7d, today or an ISO date (default: everything)."
)
@click.option("--until", default=None, help="End, exclusive: same forms as --since (default: now).")
@output_option("File (default stdout).")
@count_option("--chunk-rows", default=20_000, minimum=1, help="Rows read and written per chunk.")
def export(
    db: str | None, fmt: str, since: str | None, until: str | None, output: Path | None, chunk_rows: int
) -> None:
    """Stream the ledger in chunks to parquet, CSV or JSON lines (money exact, times UTC).

    Memory stays at one chunk, so a ledger of any size goes to DuckDB, BigQuery or Spark.
    CSV and JSON lines write money as exact decimal text; parquet as decimal128(38, 12),
    and a call whose money that cannot hold exactly is an error (use --format jsonl).
    """
    from ..ledger import Ledger
    from ..ledger.export import InexactMoneyError
    from ..ledger.export import export as run_export

    now = datetime.now(UTC)
    start, end = window(since, until, now)
    if fmt != "jsonl" and output is None and sys.stdout.isatty():
        raise click.UsageError(f"{fmt} is binary or wide: pass --output FILE (or pipe stdout)")
    url = ledger_url(db, must_exist=True)
    try:
        with Ledger(url, create=False, flush_on_signal=False) as ledger:
            total = ledger.totals(start, end).calls
            with progress(f"exporting {fmt}", total) as advance:
                options: dict[str, Any] = {
                    "since": start, "until": end, "chunk_rows": chunk_rows, "advance": advance
                }  # fmt: skip
                if output is None:
                    rows = run_export(ledger, fmt, sys.stdout.buffer, **options)  # type: ignore[arg-type]
                else:
                    try:
                        with output.expanduser().open("wb") as out:
                            rows = run_export(ledger, fmt, out, **options)  # type: ignore[arg-type]
                    except OSError as exc:
                        raise CliError(
                            f"--output {str(output)!r}: cannot write: {exc.strerror or exc}"
                        ) from exc
    except InexactMoneyError as exc:
        if output is not None:
            output.expanduser().unlink(missing_ok=True)  # a partial parquet file is no export
        raise CliError(
            f"--format parquet: call {exc.request_id}: its money has no exact decimal128(38, 12) form "
            "(not a whole number of 10^-12 USD); export with --format jsonl (or csv), which writes exact "
            "decimal text"
        ) from exc
    except LedgerError as exc:
        raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    if output is not None:
        click.echo(f"exported {rows} calls to {output}", err=True)
