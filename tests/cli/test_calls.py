"""``cachewise calls``: the most recent calls, newest first, filtered, as a table or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.ledger import Ledger
from cachewise.ledger.record import CallRecord
from cachewise.usage import Usage

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = tmp_path / "calls.sqlite"
    with Ledger(path, spool_dir=tmp_path / "spool") as ledger:
        for i in range(6):
            ledger.record(
                CallRecord(
                    request_id=f"req_{i}",
                    model="claude-sonnet-4-5-20250929" if i % 2 else "claude-haiku-4-5-20251001",
                    started_at=NOW - timedelta(hours=6 - i),
                    usage=Usage(input_tokens=10 + i, cache_read_input_tokens=100 * i, output_tokens=5),
                    status="error" if i == 4 else "ok",
                    tags={"feature": "chat" if i < 3 else "search"},
                )
            )
        ledger.flush()
    return str(path)


def _json(argv: list[str]) -> list[dict[str, object]]:
    result = CliRunner().invoke(cli, ["calls", *argv, "--json"])
    assert result.exit_code == 0, result.output
    rows: list[dict[str, object]] = json.loads(result.output)
    return rows


def test_most_recent_first_and_limited(db: str) -> None:
    assert [r["request_id"] for r in _json(["--db", db, "-n", "3"])] == ["req_5", "req_4", "req_3"]


def test_filters_by_model_tag_status_and_since(db: str) -> None:
    assert [r["request_id"] for r in _json(["--db", db, "--model", "claude-sonnet-4-5"])] == [
        "req_5",
        "req_3",
        "req_1",
    ]
    assert [r["request_id"] for r in _json(["--db", db, "--tag", "feature=chat"])] == [
        "req_2",
        "req_1",
        "req_0",
    ]
    assert [r["request_id"] for r in _json(["--db", db, "--status", "error"])] == ["req_4"]
    assert [r["request_id"] for r in _json(["--db", db, "--since", "150m"])] == ["req_5", "req_4"]


def test_json_rows_carry_tokens_and_tags(db: str) -> None:
    row = _json(["--db", db, "-n", "1"])[0]
    assert row["model"] == "claude-sonnet-4-5-20250929"
    assert row["cache_read_input_tokens"] == 500
    assert row["cost_total"] is None  # unpriced: never shown as $0
    assert row["tags"] == {"feature": "search"}
    assert row["started_at"] == (NOW - timedelta(hours=1)).isoformat()


def test_table_has_one_line_per_call(db: str) -> None:
    result = CliRunner().invoke(cli, ["calls", "--db", db, "-n", "2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["started", "(UTC)", "model"]
    assert len(lines) == 4
    assert (
        "claude-sonnet-4-5-20250929" in lines[2] and "unpriced" in lines[2] and "feature=search" in lines[2]
    )


def test_no_match_says_so(db: str) -> None:
    result = CliRunner().invoke(cli, ["calls", "--db", db, "--tag", "feature=none"])
    assert result.exit_code == 0
    assert "no calls match" in result.output


def test_completion_offers_calls() -> None:
    env = {"_CACHEWISE_COMPLETE": "bash_complete", "COMP_WORDS": "cachewise ca", "COMP_CWORD": "1"}
    result = CliRunner().invoke(cli, [], prog_name="cachewise", env=env)
    assert "plain,calls" in result.output.splitlines()
