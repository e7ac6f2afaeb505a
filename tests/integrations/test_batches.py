"""Batch results read through the wrapped client: one row per result, batch-priced, equal to the bill."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import anthropic
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger

from .conftest import API_KEY

SYSTEM = [
    {
        "type": "text",
        "text": "Classify the ticket. " * 700,
        "cache_control": {"type": "ephemeral", "ttl": "1h"},
    }
]


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as opened:
        yield opened


def test_batch_results_are_recorded_once_each(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False)
    requests = [
        {
            "custom_id": f"t{i}",
            "params": {
                "model": "claude-sonnet-4-6",
                "max_tokens": 16,
                "system": SYSTEM,
                "messages": [{"role": "user", "content": f"ticket {i}"}],
            },
        }
        for i in range(4)
    ]
    batch = wrapped.messages.batches.create(requests=requests)  # type: ignore[arg-type]
    emulator.emulator.advance(60)
    done = wrapped.messages.batches.retrieve(batch.id)
    assert done.processing_status == "ended"
    results = list(wrapped.messages.batches.results(batch.id))
    assert {r.custom_id for r in results} == {"t0", "t1", "t2", "t3"}
    # reading the results twice never doubles a row
    list(wrapped.messages.batches.results(batch.id))
    ledger.flush()
    rows = ledger.calls()
    assert len(rows) == 4
    assert {r.endpoint for r in rows} == {"batch"}
    assert all(r.batch_id == batch.id for r in rows)
    bill = {(b["batch_id"], b["custom_id"]): Decimal(b["cost_total"]) for b in emulator.emulator.bill()}
    assert {(r.batch_id, r.custom_id): r.cost.cost_total for r in rows if r.cost} == bill
    assert all(r.rates and r.rates.get("batch") for r in rows)


def test_ingest_batch_created_elsewhere(
    emulator: EmulatorServer, client: anthropic.Anthropic, tmp_path: object
) -> None:
    from pathlib import Path

    from click.testing import CliRunner

    from cachewise.cli import cli

    requests = [
        {
            "custom_id": f"e{i}",
            "params": {
                "model": "claude-haiku-4-5",
                "max_tokens": 8,
                "messages": [{"role": "user", "content": f"hello {i}"}],
            },
        }
        for i in range(3)
    ]
    batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]  # not wrapped
    db = Path(str(tmp_path)) / "ingest.sqlite"
    env = {"ANTHROPIC_BASE_URL": emulator.base_url, "ANTHROPIC_API_KEY": API_KEY}
    first = CliRunner().invoke(cli, ["ledger", "--db", str(db), "ingest-batch", batch.id], env=env)
    assert first.exit_code == 0, first.output
    assert "3 results read (3 succeeded), 3 new rows" in first.output
    again = CliRunner().invoke(cli, ["ledger", "--db", str(db), "ingest-batch", batch.id], env=env)
    assert "0 new rows" in again.output
    with Ledger(db) as ledger:
        rows = ledger.calls()
    assert sorted(r.custom_id or "" for r in rows) == ["e0", "e1", "e2"]
    bill = {b["custom_id"]: Decimal(b["cost_total"]) for b in emulator.emulator.bill()}
    assert {r.custom_id: r.cost.cost_total for r in rows if r.cost} == bill
    missing = CliRunner().invoke(cli, ["ledger", "--db", str(db), "ingest-batch", "msgbatch_nope"], env=env)
    assert missing.exit_code == 2
    assert "could not read batch msgbatch_nope" in missing.output
