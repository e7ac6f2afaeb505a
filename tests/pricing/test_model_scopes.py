"""Model scopes resolve aliases both ways through the price table; an unknown one is an error.

The ledger stores the model id the API returns (``claude-sonnet-4-5-20250929``); budgets,
``report --model`` and ``ledger reprice --model`` are often written with the alias
(``claude-sonnet-4-5``). Either spelling must match calls stored under either.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cachewise import PriceBook, Usage
from cachewise.budget.runtime import RuntimeBudget
from cachewise.cli import cli
from cachewise.errors import UnknownModelError
from cachewise.ledger import CallRecord, Ledger

DATED, ALIAS = "claude-sonnet-4-5-20250929", "claude-sonnet-4-5"
AT = datetime(2026, 11, 2, 10, tzinfo=UTC)
WHEN = ["--since", "2026-11-01T00:00:00", "--at", "2026-11-02T23:00:00"]


def test_resolve_model_goes_both_ways() -> None:
    book = PriceBook.default()
    assert book.resolve_model(ALIAS) == book.resolve_model(DATED)
    assert {ALIAS, DATED} <= book.resolve_model(ALIAS)
    assert book.resolve_models([ALIAS, "claude-opus-4-6"]) == book.resolve_model(DATED) | {"claude-opus-4-6"}
    with pytest.raises(UnknownModelError, match="claude-sonet-4-5"):
        book.resolve_models([ALIAS, "claude-sonet-4-5"])


def _db(tmp_path: Path, model: str) -> str:
    path = tmp_path / "ledger.sqlite"
    with Ledger(path) as ledger:
        ledger.record(
            CallRecord.priced(
                usage=Usage(input_tokens=1_000_000), model=model, started_at=AT, request_id="req_1"
            )
        )
    return str(path)


def _budget(db: str, model: str, limit: str = "1") -> Result:
    args = ["budget", "check", "--db", db, "--limit", limit, "--window", "day", "--model", model]
    return CliRunner().invoke(cli, [*args, "--at", "2026-11-02T23:00:00"], env={"GITHUB_ACTIONS": ""})


@pytest.mark.parametrize(
    ("stored", "scope"), [(DATED, ALIAS), (ALIAS, DATED)], ids=["alias scope", "dated scope"]
)
def test_budget_scope_matches_either_spelling(tmp_path: Path, stored: str, scope: str) -> None:
    db = _db(tmp_path, stored)
    over = _budget(db, scope, limit="2")  # the call cost $3
    assert over.exit_code == 1, over.output
    assert "spent $3" in over.output
    within = _budget(db, scope, limit="5")
    assert within.exit_code == 0, within.output


def test_budget_scope_naming_no_known_model_is_a_usage_error(tmp_path: Path) -> None:
    result = _budget(_db(tmp_path, DATED), "claude-sonet-4-5")
    assert result.exit_code == 2
    assert "claude-sonet-4-5" in result.output


def test_budget_scope_that_matches_no_call_says_so(tmp_path: Path) -> None:
    result = _budget(_db(tmp_path, DATED), "claude-opus-4-6")
    assert result.exit_code == 0, result.output
    assert "model=claude-opus-4-6 matched no call in the window" in result.output


def test_configured_budget_scope_resolves_too(tmp_path: Path) -> None:
    config = tmp_path / "cachewise.toml"
    config.write_text('[budget]\nname = "sonnet"\nwindow = "day"\nmodel = "claude-sonnet-4-5"\nlimit = "2"\n')
    db = _db(tmp_path, DATED)
    result = CliRunner().invoke(
        cli,
        ["budget", "check", "--db", db, "--config", str(config), "--at", "2026-11-02T23:00:00"],
        env={"GITHUB_ACTIONS": ""},
    )
    assert result.exit_code == 1, result.output


def _report(db: str, model: str) -> Result:
    return CliRunner().invoke(
        cli, ["report", "--db", db, "--since", "2026-11-01", "--until", "2026-11-03", "--model", model,
              "--format", "json"],
    )  # fmt: skip


def test_report_model_filter_matches_either_spelling(tmp_path: Path) -> None:
    db = _db(tmp_path, DATED)
    result = _report(db, ALIAS)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["totals"]["calls"] == 1


def test_report_model_filter_errors_and_notes(tmp_path: Path) -> None:
    db = _db(tmp_path, DATED)
    unknown = _report(db, "claude-sonet-4-5")
    assert unknown.exit_code == 2
    assert "claude-sonet-4-5" in unknown.output
    empty = _report(db, "claude-opus-4-6")
    assert empty.exit_code == 0
    assert "--model claude-opus-4-6 matched no call" in empty.stderr


def test_reprice_model_filter_matches_either_spelling(tmp_path: Path) -> None:
    db = _db(tmp_path, DATED)
    table = Path(PriceBook.default().source)
    result = CliRunner().invoke(
        cli, ["ledger", "--db", db, "reprice", "--table", str(table), "--model", ALIAS]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["calls"] == 1
    unknown = CliRunner().invoke(
        cli, ["ledger", "--db", db, "reprice", "--table", str(table), "--model", "claude-sonet-4-5"]
    )
    assert unknown.exit_code == 2
    assert "claude-sonet-4-5" in unknown.output


def test_runtime_budget_scope_counts_calls_under_the_dated_id(tmp_path: Path) -> None:
    guard = RuntimeBudget(D("10"), model=ALIAS)
    guard.record(
        CallRecord.priced(usage=Usage(input_tokens=1_000_000), model=DATED, started_at=AT, request_id="r1")
    )
    assert guard.spent() == D(3)
    with pytest.raises(UnknownModelError):
        RuntimeBudget(D("10"), model="claude-sonet-4-5")
