"""A record the database refused is in no total: reports and budget checks count it as unaccounted.

The ledger quarantines such a record with its reason (docs/ledger.md); a report over its window is
then INCOMPLETE and says how many, and a budget check over it fails, as for an unpriced call.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from click.testing import CliRunner

from cachewise.cli import cli
from cachewise.ledger import Ledger
from cachewise.reports import build_report
from cachewise.reports.source import load_frame, load_quarantine
from cachewise.usage import Usage
from tests.ledger.conftest import make_record

BIG = 2**63  # one above BIGINT: the database refuses the row


def _ledger(tmp_path: Path, *, refused: bool) -> Path:
    path = tmp_path / "ledger.sqlite"
    now = datetime.now(UTC)
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    start = max(now - timedelta(hours=1), midnight)  # today's "day" window holds every row, even at 00:05
    step = (now - start) / 10
    with Ledger(path, spool_dir=tmp_path / "spool") as led:
        for i in range(6):
            record = make_record(i, started_at=start + i * step, tags={"feature": "chat"})
            if refused and i == 3:
                record = make_record(
                    i,
                    started_at=start + i * step,
                    tags={"feature": "chat"},
                    usage=Usage(input_tokens=BIG, output_tokens=5),
                )
            led.record(record)
        led.flush(timeout=30)
        assert led.quarantine_count() == int(refused)
    return path


def test_a_report_counts_quarantined_calls_and_is_incomplete(tmp_path: Path) -> None:
    db = _ledger(tmp_path, refused=True)
    report = build_report(load_frame(db), quarantine=load_quarantine(db))
    assert report.totals["calls"] == 5
    assert report.totals["quarantined_calls"] == 1
    assert not report.complete

    result = CliRunner().invoke(cli, ["report", "--db", str(db), "--since", "1d"])
    assert result.exit_code == 0, result.output
    assert "1 quarantined" in result.output
    assert "QUARANTINED: 1 calls the database refused" in result.output
    assert "INCOMPLETE" in result.output

    as_json = CliRunner().invoke(cli, ["report", "--db", str(db), "--since", "1d", "--format", "json"])
    assert json.loads(as_json.output)["totals"]["quarantined_calls"] == 1


def test_a_clean_ledger_reports_no_quarantine(tmp_path: Path) -> None:
    db = _ledger(tmp_path, refused=False)
    report = build_report(load_frame(db), quarantine=load_quarantine(db))
    assert report.totals["quarantined_calls"] == 0
    assert report.complete
    result = CliRunner().invoke(cli, ["report", "--db", str(db), "--since", "1d"])
    assert "QUARANTINED" not in result.output and "INCOMPLETE" not in result.output


def test_quarantine_filters_follow_the_report_scope(tmp_path: Path) -> None:
    db = _ledger(tmp_path, refused=True)
    assert len(load_quarantine(db, tags={"feature": "chat"})) == 1
    assert len(load_quarantine(db, tags={"feature": "other"})) == 0
    assert len(load_quarantine(db, since=datetime.now(UTC))) == 0


def test_a_budget_over_a_quarantined_call_fails(tmp_path: Path) -> None:
    db = _ledger(tmp_path, refused=True)
    args = ["budget", "check", "--db", str(db), "--limit", "1000", "--window", "day", "--json", "-"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    (budget,) = json.loads(result.output)["budgets"]
    assert budget["quarantined_calls"] == 1
    assert any("quarantined" in failure for failure in budget["failures"])
    clean = CliRunner().invoke(cli, [*args[:3], str(_ledger(tmp_path / "clean", refused=False)), *args[4:]])
    assert clean.exit_code == 0, clean.output
