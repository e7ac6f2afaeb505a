"""`cachewise demo`: the README's main command, end to end on the embedded emulator."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.ledger import Ledger


def test_demo_prints_savings_per_model_from_the_ledger(tmp_path: Path) -> None:
    db = tmp_path / "demo.sqlite"
    result = CliRunner().invoke(cli, ["demo", "--db", str(db)], env={"ANTHROPIC_API_KEY": ""})
    assert result.exit_code == 0, result.output
    assert "ledger total equals the emulator's own bill: yes" in result.output
    for model in ("claude-sonnet-4-6", "claude-opus-4-6", "claude-haiku-4-5"):
        assert model in result.output
    with Ledger(db) as ledger:
        rows = ledger.calls()
        baseline = ledger.totals(tags={"demo_run": "baseline"})
        wise = ledger.totals(tags={"demo_run": "cachewise"})
    assert len(rows) == 2 * 33
    assert {r.tags["workload"] for r in rows} == {"support_chat", "document_qa", "agent_loop"}
    assert wise.cost_total < baseline.cost_total * Decimal("0.6")


def test_live_needs_a_key(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["demo", "--live", "--db", str(tmp_path / "d.sqlite")], env={"ANTHROPIC_API_KEY": ""}
    )
    assert result.exit_code == 2
    assert "ANTHROPIC_API_KEY" in result.output


def test_a_second_demo_on_the_same_ledger_bills_what_the_first_did(tmp_path: Path) -> None:
    """Each run starts cold: the ledger's earlier runs (the same afternoon, on a reset emulator) must
    not seed the planner, or the figures would depend on what the ledger already held."""
    from cachewise.demo import run_demo

    db = tmp_path / "demo.db"
    first, second = run_demo(db), run_demo(db)
    assert second.emulator_bills == first.emulator_bills
    assert list(second.summary["saved"]) == list(first.summary["saved"])
