"""``cachewise budget``: check budgets in CI (exit 0 within, 1 over or unpriced, 2 usage error)
and write the baseline a branch is compared against."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import NoReturn

import click
from pydantic import ValidationError

from ..budget.base import RUN_TAG, window_start
from ..budget.check import build_baseline, check_budgets
from ..budget.config import BudgetSpec, find_config, load_budgets
from ..budget.output import github_annotations, junit_xml, results_json, step_summary, text
from ..errors import BudgetConfigError, LedgerError
from ..reports.source import LedgerSource
from .errors import CliError, finding
from .options import (
    OutputPath,
    db_option,
    ledger_frame,
    ledger_url,
    output_option,
    output_problem,
    price_book,
    price_table_option,
    tag_option,
    when,
    write_output,
)
from .options import window as since_until

__all__ = ["budget"]

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"


def _usage_error(message: str) -> NoReturn:
    raise CliError(message)


def _budgets(
    config: Path | None, limit: str | None, window: str, model: str | None, tags: dict[str, str]
) -> list[BudgetSpec]:
    if limit is not None:
        try:
            amount = Decimal(limit)
        except InvalidOperation:
            _usage_error(f"--limit: {limit!r} is not an amount in USD")
        try:
            return [BudgetSpec(name="cli", window=window, limit=amount, model=model, tags=tags)]
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "limit"
            _usage_error(f"--{where} {limit!r}: {first['msg'].removeprefix('Value error, ')}")
    path = config or find_config()
    if path is None:
        _usage_error(
            "no budget configured: add [tool.cachewise.budget] to pyproject.toml or a cachewise.toml, "
            "pass --config FILE, or give --limit USD"
        )
    budgets = load_budgets(path)
    if not budgets:
        raise BudgetConfigError(path, "tool.cachewise.budget" if path.name == "pyproject.toml" else "budget",
                                "no budget defined in this file")  # fmt: skip
    return budgets


@click.group()
def budget() -> None:
    """Cost budgets for CI: check them, or write the baseline they are compared against."""


@budget.command()
@db_option()
@click.option("--config", "config", type=click.Path(dir_okay=False, path_type=Path),
              help="pyproject.toml or cachewise.toml (default: found from here up).")  # fmt: skip
@click.option(
    "--since", default=None, help="Start of the run (window 'run'): 30m, 24h, 7d, today or an ISO date."
)
@click.option("--run-id", default=None, help=f"The run (window 'run'): calls tagged {RUN_TAG}=ID.")
@click.option("--at", "at", default=None, help="Check as of this time instead of now (ISO).")
@click.option("--limit", default=None, metavar="USD", help="An ad-hoc budget instead of the configured ones.")
@click.option("--window", type=click.Choice(["run", "day", "month"]), default="run", show_default=True,
              help="Window of the --limit budget.")  # fmt: skip
@click.option("--model", default=None, help="Scope of the --limit budget: one model.")
@tag_option("Scope of the --limit budget (repeatable).")
@click.option("--junit", "junit", type=OutputPath(), help="Write JUnit XML here (its folder must exist).")
@click.option("--json", "json_out", is_flag=False, flag_value="-", default=None, metavar="[FILE]",
              type=OutputPath(allow_dash=True),
              help="Results as JSON: to FILE, or on stdout instead of text.")  # fmt: skip
@price_table_option()
def check(
    db: str | None,
    config: Path | None,
    since: str | None,
    run_id: str | None,
    at: str | None,
    limit: str | None,
    window: str,
    model: str | None,
    tags: dict[str, str],
    junit: Path | None,
    json_out: Path | None,
    overlays: tuple[Path, ...],
) -> None:
    """Check the budgets: exit 0 within, 1 over (or any call that cannot be priced), 2 usage error.

    Under GitHub Actions (GITHUB_ACTIONS set) each failure is printed as an ::error annotation,
    and a Markdown table is appended to $GITHUB_STEP_SUMMARY when it is set. With --price-table,
    every call is priced under those prices instead of as recorded.
    """
    now = when(at, "--at", datetime.now(UTC)) or datetime.now(UTC)
    run_since = when(since, "--since", now)
    summary_path = os.environ.get(STEP_SUMMARY)
    if summary_path:
        problem = output_problem(Path(summary_path))
        if problem:
            _usage_error(f"${STEP_SUMMARY} {summary_path!r}: {problem}")
    budgets = _budgets(config, limit, window, model, tags)  # a BudgetConfigError exits 2 (CliGroup)
    book = price_book(overlays)  # a PriceTableError exits 2 (cachewise.cli.errors)
    starts = [window_start(spec.window, now, run_since) for spec in budgets]
    earliest = None if any(start is None for start in starts) else min(s for s in starts if s is not None)
    quarantine = ledger_frame(db, since=earliest, until=now, quarantine=True)
    if overlays:  # every call priced under the overlay: a repriced frame (the ledger is unchanged)
        frame = ledger_frame(db, since=earliest, until=now, book=book)
        results = check_budgets(
            frame, budgets, now=now, run_since=run_since, run_id=run_id, quarantine=quarantine, book=book
        )
    else:
        from ..ledger import Ledger

        try:  # each budget summed in SQL over its window and scope
            with Ledger(ledger_url(db, must_exist=True), create=False) as ledger:
                results = check_budgets(
                    ledger,
                    budgets,
                    now=now,
                    run_since=run_since,
                    run_id=run_id,
                    quarantine=quarantine,
                    book=book,
                )
        except LedgerError as exc:
            raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    if json_out == Path("-"):
        click.echo(results_json(results), nl=False)
    else:
        click.echo(text(results), nl=False)
        if json_out is not None:
            write_output(json_out, results_json(results), "--json")
    if os.environ.get("GITHUB_ACTIONS"):
        for line in github_annotations(results):
            click.echo(line)
    if summary_path:
        try:
            with open(summary_path, "a", encoding="utf-8") as handle:
                handle.write(step_summary(results))
        except OSError as exc:
            _usage_error(f"${STEP_SUMMARY} {summary_path!r}: cannot write: {exc.strerror or exc}")
    if junit is not None:
        write_output(junit, junit_xml(results), "--junit")
    if not all(r.ok for r in results):
        finding()


@budget.command()
@db_option()
@click.option("--since", default=None, help="Start of the reference run: 30m, 24h, 7d, today or an ISO date.")
@click.option("--until", default=None, help="End of the reference run: same forms as --since (default now).")
@click.option("--run-id", default=None, help=f"The reference run: calls tagged {RUN_TAG}=ID.")
@click.option("--test-tag", default="test", show_default=True, help="Tag naming the test of each call.")
@output_option("Where to write the baseline JSON (its folder must exist).", required=True)
@price_table_option()
def baseline(
    db: str | None,
    since: str | None,
    until: str | None,
    run_id: str | None,
    test_tag: str,
    output: Path,
    overlays: tuple[Path, ...],
) -> None:
    """Write a baseline (cost per test and model, hit ratio, write waste) from a reference run, e.g. main.

    With --price-table, every call is priced under those prices instead of as recorded."""
    now = datetime.now(UTC)
    start, end = since_until(since, until, now)
    end = end or now
    if start is None and run_id is None:
        _usage_error("baseline: give --since or --run-id to mark the reference run")
    book = price_book(overlays) if overlays else None
    scope = {RUN_TAG: run_id} if run_id else None
    try:
        if book is not None:  # every call repriced under the overlay: a frame (the ledger is unchanged)
            data = build_baseline(
                ledger_frame(db, since=start, until=end, tags=scope, book=book), test_tag=test_tag, now=now
            )
        else:  # summed in SQL: memory follows the tests and models, not the calls
            try:
                url = ledger_url(db, must_exist=True)
                with LedgerSource.open(url, since=start, until=end, tags=scope) as rows:
                    data = build_baseline(rows, test_tag=test_tag, now=now)
            except LedgerError as exc:
                raise CliError(f"--db {db!r}: {exc}" if db is not None else str(exc)) from exc
    except BudgetConfigError as exc:  # a finding: the reference run has calls that cannot be priced
        click.echo(f"Error: {exc}", err=True)
        finding()
    write_output(output, json.dumps(data, indent=2) + "\n", "--output")
    click.echo(f"wrote {output}: {data['calls']} calls, ${data['total']}, {len(data['by_test'])} tests")
