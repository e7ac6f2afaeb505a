"""``cachewise ledger``: look after the call ledger (schema, spool, repricing).

Every subcommand takes the database from the group's ``--db`` option (else
``$CACHEWISE_DB``, else the default file) and opens it with :func:`open_ledger`.

Adding a subcommand from another module (e.g. ``ingest-batch``): write it in its own
module under ``cachewise/cli/``, take the ledger with ``open_ledger(ctx)``, and add one
``(module, attribute)`` tuple to :data:`SUBCOMMANDS` below.
"""

from __future__ import annotations

import importlib
import json
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ..errors import CachewiseError, UnknownModelError
from ..ledger import Ledger, migrations
from ..ledger.ledger import default_spool_dir
from ..ledger.reprice import load_book
from ..ledger.reprice import progress_callback as reprice_progress
from ..ledger.spool import replay_progress, spooled_bytes
from ..ledger.store import resolve_url, spool_key
from ..pricing import PriceBook
from ..progress import progress, show_progress
from .options import (
    DB_HELP,
    LEDGER_DEFAULT,
    db_option,
    ledger_url,
    output_option,
    price_table_option,
    tag_option,
    window,
)

__all__ = ["SUBCOMMANDS", "ledger", "open_ledger"]

#: Extra subcommands living in other modules: (module under cachewise.cli, attribute).
SUBCOMMANDS: list[tuple[str, str]] = [("ingest", "ingest_batch")]


def open_ledger(ctx: click.Context, *, must_exist: bool = False) -> Ledger:
    """The ledger named by ``cachewise ledger --db``, opened once per command and closed after it.

    ``must_exist`` (read-only subcommands): a SQLite file that is not there is an error, not a
    new empty ledger (:func:`cachewise.cli.options.ledger_url`), and a database without ledger
    tables is opened with ``create=False`` (:meth:`Ledger.open_existing`): nothing is created.
    """
    obj: dict[str, Any] = ctx.ensure_object(dict)
    opened = obj.get("ledger")
    if isinstance(opened, Ledger):
        return opened
    url = ledger_url(obj.get("db"), must_exist=must_exist)
    try:
        opened = Ledger(
            url, spool_dir=obj.get("spool_dir"), upgrade=obj.get("upgrade", True), create=not must_exist
        )
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    obj["ledger"] = opened
    ctx.call_on_close(opened.close)
    return opened


def _spool_dir(ctx: click.Context) -> Path:
    """The spool directory the ledger of ``ctx`` will use (before it is opened)."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if obj.get("spool_dir") is not None:
        return Path(obj["spool_dir"])
    return default_spool_dir(spool_key(resolve_url(ledger_url(obj.get("db"), must_exist=False))))


def _set_db(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(dict)["db"] = value


def _sub_db_option() -> click.Option:
    """``--db`` on a subcommand too: ``cachewise ledger info --db X`` is ``cachewise ledger --db X info``."""
    return click.Option(
        ["--db"],
        metavar="URL",
        default=None,
        expose_value=False,
        is_eager=True,
        callback=_set_db,
        help=DB_HELP.format(default="the group's --db, else " + LEDGER_DEFAULT),
    )


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=lambda v: str(v) if isinstance(v, Decimal) else repr(v)))


@click.group()
@db_option()
@click.option(
    "--spool-dir",
    "spool_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Spool directory (default: one per database under the user data dir).",
)
@click.pass_context
def ledger(ctx: click.Context, db: str | None, spool_dir: Path | None) -> None:
    """The call ledger: schema upgrades, spool replay, repricing and a summary."""
    obj: dict[str, Any] = ctx.ensure_object(dict)
    obj["db"] = db
    obj["spool_dir"] = spool_dir


@ledger.command()
@click.pass_context
def upgrade(ctx: click.Context) -> None:
    """Bring the ledger's schema up to this cachewise's version (done on open too)."""
    ctx.ensure_object(dict)["upgrade"] = False
    led = open_ledger(ctx)
    try:
        with progress("upgrading the ledger", None) as advance:
            done: dict[str, int] = {}

            def report(step: str, rows: int, _total: int) -> None:
                advance(rows - done.get(step, 0))
                done[step] = rows

            token = migrations.progress_callback.set(report)
            try:
                applied = led.upgrade()
            finally:
                migrations.progress_callback.reset(token)
        version = led.schema_version()
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"{led.label}: schema version {version}; applied: {', '.join(applied) or 'nothing'}")


@ledger.command()
@click.pass_context
def replay(ctx: click.Context) -> None:
    """Write spooled rows (kept while the database was down) into the database.

    Rows already restored when the ledger opened are counted too.
    """
    total = spooled_bytes(_spool_dir(ctx)) if show_progress() else None
    try:
        # Opening the ledger replays what it can already: the bar counts that too.
        with progress("replaying the spool (bytes)", total) as advance, replay_progress(advance):
            led = open_ledger(ctx)
            result = led.replay()
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        f"replayed {result.rows} rows from {result.files} spool files"
        f"; skipped {result.skipped_lines} unreadable lines"
        + (f"; quarantined {result.quarantined} rows the database refused" if result.quarantined else "")
        + (f"; {len(result.left)} files in use by a running process left for later" if result.left else "")
    )


@ledger.command()
@price_table_option()
@click.option(
    "--table",
    "table",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A whole price table (for an overlay, use --price-table).",
)
@click.option(
    "--base",
    "base",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Table an overlay is laid over (default: the shipped table).",
)
@click.option("--since", help="Only calls at or after: 30m, 24h, 7d, today or an ISO date (UTC if no zone).")
@click.option("--until", help="Only calls before: same forms as --since.")
@click.option("--model", "models", multiple=True, help="Only these models (repeatable).")
@tag_option("Only calls with this tag (repeatable).")
@click.option("--store/--no-store", default=False, help="Keep the result in the reprices table.")
@output_option("Write per-call rows as CSV to this file.", "--out", dest="out")
@click.pass_context
def reprice(
    ctx: click.Context,
    overlays: tuple[Path, ...],
    table: Path | None,
    base: Path | None,
    since: str | None,
    until: str | None,
    models: tuple[str, ...],
    tags: dict[str, str],
    store: bool,
    out: Path | None,
) -> None:
    """What the recorded calls would cost under another price table (recorded costs are kept)."""
    if table is None and not overlays:
        raise click.UsageError("give the prices to reprice with: --price-table OVERLAY or --table FILE")
    if table is not None and overlays:
        raise click.UsageError("--table and --price-table: give one of them")
    start, end = window(since, until, datetime.now(UTC))
    led = open_ledger(ctx, must_exist=True)
    # a PriceTableError exits 2 (cachewise.cli.errors)
    book = load_book(table, base) if table is not None else PriceBook.load(*overlays, base=base)
    try:
        names = sorted(book.resolve_models(models)) if models else None
    except UnknownModelError as exc:
        raise click.BadParameter(str(exc), param_hint="--model") from exc
    try:
        total = led.totals(start, end, names, tags or None).calls if show_progress() else None
        with progress("repricing", total) as advance:
            token = reprice_progress.set(advance)
            try:
                frame = led.reprice(
                    book,
                    since=start,
                    until=end,
                    model=names,
                    tags=tags or None,
                    store=store,
                )
            finally:
                reprice_progress.reset(token)
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    billed = sum((v for v in frame["cost_total"] if v is not None), Decimal(0))
    repriced = sum((v for v in frame["repriced_cost_total"] if v is not None), Decimal(0))
    summary = {
        "calls": len(frame),
        "table_version": frame["repriced_table_version"].iloc[0] if len(frame) else None,
        "billed_total": billed,
        "repriced_total": repriced,
        "delta": repriced - billed,
        "unpriced_as_billed": int(frame["cost_total"].isna().sum()),
        "unpriced_repriced": int(frame["repriced_cost_total"].isna().sum()),
    }
    _echo_json(summary)
    if models and not len(frame):
        click.echo(f"note: --model {', '.join(models)} matched no call", err=True)
    if out is not None:
        frame.to_csv(out, index=False)
        click.echo(f"wrote {len(frame)} rows to {out}", err=True)


@ledger.command()
@click.pass_context
def info(ctx: click.Context) -> None:
    """Where the ledger is, its schema version, how many calls, quarantine and pending spool files.

    Never creates a ledger: a --db that names no ledger is an error.
    """
    led = open_ledger(ctx, must_exist=True)
    try:
        data = led.info()
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    _echo_json(data)


@ledger.group()
def rollups() -> None:
    """The sums kept on write that reports read for full hours: check them, rebuild them."""


@rollups.command("check")
@click.pass_context
def rollups_check(ctx: click.Context) -> None:
    """Compare the rollups with the rows they sum; exit 1 when any differs, is missing or extra."""
    led = open_ledger(ctx, must_exist=True)
    try:
        found = led.check_rollups()
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    if found.ok:
        click.echo(f"rollups match the rows ({found.rows} rollup rows)")
        return
    click.echo(
        f"rollups differ from the rows: {len(found.differ)} differ, {len(found.missing)} missing, "
        f"{len(found.extra)} extra; run `cachewise ledger rollups rebuild`",
        err=True,
    )
    for key in (*found.differ, *found.missing, *found.extra)[:10]:
        bucket, model, tags, error, _priced, waste = key
        click.echo(f"  {bucket.isoformat()} {model} {tags} error={error[1:] or '-'} waste={waste}", err=True)
    ctx.exit(1)


@rollups.command("rebuild")
@click.pass_context
def rollups_rebuild(ctx: click.Context) -> None:
    """Recompute the rollups from the rows (one transaction; writers wait until it commits)."""
    led = open_ledger(ctx, must_exist=True)
    try:
        count = led.rebuild_rollups()
    except CachewiseError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(f"rebuilt {count} rollup rows from the calls")


@ledger.command()
@click.pass_context
def path(ctx: click.Context) -> None:
    """Print where the ledger is: the SQLite file, or the database URL (password hidden).

    The same ledger every command reads and the wrapper records into: --db, else $CACHEWISE_DB,
    else the default file. Prints it even when no ledger is there yet (a note on stderr says so).
    """
    obj: dict[str, Any] = ctx.ensure_object(dict)
    db = obj.get("db")
    url = ledger_url(db, must_exist=False)
    if url.get_backend_name() != "sqlite":
        click.echo(url.render_as_string(hide_password=True))
        return
    where = Path(str(url.database))
    click.echo(str(where))
    if not where.exists():
        click.echo("note: no ledger there yet; the wrapper or `cachewise demo --db` records one", err=True)


for _module, _attr in SUBCOMMANDS:
    ledger.add_command(getattr(importlib.import_module(f"{__package__}.{_module}"), _attr))
for _command in ledger.commands.values():  # --db after the subcommand as well as before it
    _command.params.append(_sub_db_option())

if __name__ == "__main__":  # pragma: no cover
    sys.exit(ledger())
