"""Must show: reconciliation against the emulator finds each planted gap and explains it; a clean run
reports zero gap. The official SDK is the client, wrapped by cachewise, the emulator the server."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cachewise.ledger import Ledger
from cachewise.reconcile import EXPLANATIONS, Reconciliation, reconcile
from tests.fixtures.reconcile_org import GAPS, Org, admin_client, build


def _run(org: Org, **options: Any) -> Reconciliation:
    with (
        Ledger.open_existing(org.ledger_path, flush_on_signal=False) as ledger,
        admin_client(org.emu) as admin,
    ):
        return reconcile(ledger, admin, since=org.since, until=org.until, limit=2, **options)


def test_a_clean_run_reports_zero_gap(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=())
    result = _run(org)
    assert result.gaps == []
    assert result.gap == 0 and result.gap_ratio == 0
    billed = sum(Decimal(row["cost_total"]) for row in org.emu.bill())
    assert result.report_cost == result.ledger_cost == billed > 0
    assert result.report_tokens == result.ledger_tokens > 0


def test_each_planted_gap_is_found_with_its_kind_and_explanation(tmp_path: Path) -> None:
    org = build(tmp_path)
    result = _run(org)
    by_day = {gap.starting_at.day: gap for gap in result.gaps}
    assert {day: gap.kind for day, gap in by_day.items()} == {
        20: "bypassed",
        21: "priced_differently",
        22: "missing_in_ledger",
        23: "missing_in_report",
    }
    bill = org.emu.bill()
    around = next(
        row
        for row in bill
        if row["time"].startswith("2026-11-20") and row["request_id"] not in _ledger_ids(org)
    )
    bypass = by_day[20]
    assert bypass.token_gap["input_tokens"] == around["usage"]["input_tokens"]
    assert bypass.token_gap["output_tokens"] == around["usage"]["output_tokens"]
    assert bypass.cost_gap == Decimal(around["cost_total"])  # the one call's exact price
    repriced = by_day[21]
    assert all(v == 0 for v in repriced.token_gap.values())
    public = sum(Decimal(r["cost_total"]) for r in bill if r["time"].startswith("2026-11-21"))
    assert repriced.report_cost == public and repriced.ledger_cost == public * Decimal("0.8")
    missing = by_day[22]
    assert missing.ledger_calls == 0 and missing.ledger_cost is None
    assert missing.report_cost == sum(
        Decimal(r["cost_total"]) for r in bill if r["time"].startswith("2026-11-22")
    )
    foreign = by_day[23]
    assert foreign.report == dict.fromkeys(foreign.report, 0) and foreign.ledger["input_tokens"] == 500
    assert foreign.explanation == EXPLANATIONS["missing_in_report"]
    total = sum((abs(g.cost_gap) for g in result.gaps), Decimal(0))
    assert result.gap == total and result.gap_ratio == total / result.report_cost


@pytest.mark.parametrize("gap", GAPS)
def test_each_gap_alone_is_the_only_one_found(tmp_path: Path, gap: str) -> None:
    result = _run(build(tmp_path, gaps=(gap,)))
    kinds = {
        "bypass": "bypassed", "repriced": "priced_differently",
        "missing_day": "missing_in_ledger", "foreign": "missing_in_report",
    }  # fmt: skip
    assert [g.kind for g in result.gaps] == [kinds[gap]]


def test_per_workspace_and_hourly_the_same_gaps_show(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=("bypass",))
    by_workspace = _run(org, group_by="workspace_id")
    (gap,) = by_workspace.gaps
    assert (gap.kind, gap.group) == ("bypassed", "wrkspc_a")
    hourly = _run(org, width="1h")
    (gap,) = hourly.gaps
    assert gap.kind == "bypassed" and gap.starting_at.hour == 12 and gap.cost_gap is None
    assert hourly.measure == "tokens" and hourly.gap == sum(gap.token_gap.values())


def _ledger_ids(org: Org) -> set[str]:
    with Ledger.open_existing(org.ledger_path, flush_on_signal=False) as ledger:
        return {r.request_id for r in ledger.calls()}
