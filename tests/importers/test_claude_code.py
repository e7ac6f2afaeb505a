"""Claude Code logs (a fixture of our own, docs/why.md): imported, deduplicated, priced and reported."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.importers import read_claude_code
from cachewise.ledger import Ledger
from cachewise.pricing import PriceBook, price
from cachewise.usage import Usage

LOGS = Path(__file__).resolve().parents[1] / "fixtures" / "claude_code"


def test_one_record_per_message_and_request_with_the_final_usage() -> None:
    read = read_claude_code(LOGS)
    ids = [r.request_id for r in read.records]
    assert ids == ["req_01A", "req_01B", "req_01S", "req_01C", "req_01E"]  # by time, across both files
    assert read.files == 2 and read.lines == 13
    assert read.duplicates == 4  # msg_01A written 3 times, msg_01B twice plus its subagent copy
    assert read.skipped == {"not JSON": 1, "not an assistant message": 2, "synthetic": 1}
    first = read.records[0]
    assert first.usage.output_tokens == 412  # the last line of a streamed response
    assert first.usage.ephemeral_5m_input_tokens == 12000 and first.message_id == "msg_01A"
    assert first.tags == {"source": "claude-code", "session": "3f1c9a70-1111-4a6e-9d0b-5e2d8c0f7a11"}
    assert first.prompt is None
    book = PriceBook.default()
    expected = price(book, Usage(input_tokens=4, ephemeral_5m_input_tokens=12000, output_tokens=412),
                     "claude-sonnet-4-6", first.started_at).total  # fmt: skip
    assert first.cost is not None and first.cost.cost_total == expected


def test_imported_once_even_when_imported_twice_and_reported(tmp_path: Path) -> None:
    db = str(tmp_path / "cc.sqlite")
    runner = CliRunner()
    once = runner.invoke(cli, ["import", "claude-code", str(LOGS), "--db", db, "--json"])
    assert once.exit_code == 0, once.output
    summary = json.loads(once.output)
    assert (summary["calls"], summary["inserted"], summary["repeated_lines"]) == (5, 5, 4)
    again = json.loads(runner.invoke(cli, ["import", "claude-code", str(LOGS), "--db", db, "--json"]).output)
    assert (again["inserted"], again["already_in_ledger"]) == (0, 5)
    with Ledger(db) as led:
        rows = led.calls()
        assert len(rows) == 5
        total = sum((r.cost.cost_total for r in rows if r.cost is not None), Decimal(0))
    assert Decimal(summary["cost_total"]) == total
    report = runner.invoke(cli, ["calls", "--db", db, "--json", "-n", "10"])
    assert report.exit_code == 0
    assert {row["request_id"] for row in json.loads(report.output)} == {r.request_id for r in rows}


def test_a_missing_path_is_named(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["import", "claude-code", str(tmp_path / "nope"), "--db", str(tmp_path / "x")]
    )
    assert result.exit_code != 0 and "nope" in result.output
