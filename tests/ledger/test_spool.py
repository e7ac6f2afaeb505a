"""Database outages: rows go to the spool, come back exactly once, and bad lines are skipped."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cachewise.errors import LedgerUnavailable
from cachewise.ledger import Ledger

from .conftest import Backend, Outage, make_record


def _wait(cond: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_outage_spools_then_replays_without_loss_or_duplicates(
    open_ledger: Callable[..., Ledger], outage: Outage, backend: Backend
) -> None:
    led = open_ledger(outage.url, busy_timeout=0.2, retry_interval=0.2)
    for i in range(50):
        led.record(make_record(i))
    assert led.flush() == 50
    outage.down()
    for i in range(40, 120):  # 40..49 again: a retry of rows already stored
        led.record(make_record(i))
    assert led.flush() == 80
    assert led.stats.spooled == 80
    assert not led.stats.database_up
    assert list(backend.spool_dir.glob("spool-*.jsonl"))
    outage.up()
    _wait(lambda: led.stats.replayed == 80)
    for i in range(120, 130):
        led.record(make_record(i))
    led.flush()
    recs = led.calls()
    assert [r.request_id for r in recs] == [f"req_{i:08d}" for i in range(130)]
    assert not list(backend.spool_dir.glob("spool-*.jsonl"))


def test_unreachable_database_spools_and_reads_raise(
    open_ledger: Callable[..., Ledger], backend: Backend
) -> None:
    if backend.name == "postgres":
        url = "postgresql://postgres@127.0.0.1:1/test"  # a closed port
    else:
        blocker = backend.tmp / "not-a-dir"
        blocker.write_text("x")
        url = str(blocker / "ledger.db")
    led = open_ledger(url, retry_interval=60)
    for i in range(5):
        led.record(make_record(i))
    assert led.flush() == 5
    assert led.stats.spooled == 5
    with pytest.raises(LedgerUnavailable, match="is unavailable"):
        led.calls()
    with pytest.raises(LedgerUnavailable):
        led.replay()
    lines = next(backend.spool_dir.glob("spool-*.jsonl")).read_text().splitlines()
    assert len(lines) == 6  # header + 5 rows


def test_spool_of_a_dead_process_is_replayed_on_open(
    open_ledger: Callable[..., Ledger], outage: Outage, backend: Backend
) -> None:
    first = open_ledger(outage.url, busy_timeout=0.2, retry_interval=60)
    outage.down()
    for i in range(20):
        first.record(make_record(i))
    first.flush()
    first._writer.spool.close()  # what a killed process leaves: an unlocked file
    outage.up()
    second = open_ledger(outage.url)
    _wait(lambda: second.stats.replayed == 20)
    assert len(second.calls()) == 20


def test_corrupt_spool_line_is_skipped_and_the_rest_replay(
    open_ledger: Callable[..., Ledger], outage: Outage, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    led = open_ledger(outage.url, busy_timeout=0.2, retry_interval=60)
    outage.down()
    for i in range(6):
        led.record(make_record(i))
    led.flush()
    led.close()
    outage.up()
    (path,) = backend.spool_dir.glob("spool-*.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    lines[3] = b'{"request_id": "req_broken", "started_\n'  # line 4 (req 2): damaged
    lines.append(b"\x00\xff not json")  # line 8: a torn last line, as a crash mid-write leaves
    path.write_bytes(b"".join(lines))
    with caplog.at_level(logging.WARNING, logger="cachewise.ledger"):
        again = open_ledger(outage.url)
        result = again.replay()
    assert f"spool {path} line 4: skipped" in caplog.text
    assert f"spool {path} line 8: skipped" in caplog.text
    rows = again.calls()
    assert [r.request_id for r in rows] == [f"req_{i:08d}" for i in (0, 1, 3, 4, 5)]
    assert result.skipped_lines == again.stats.skipped_spool_lines == 2  # on open, counted by replay()
    corrupt = path.with_suffix(".jsonl.corrupt").read_bytes()
    assert b"req_broken" in corrupt


def test_spool_of_another_database_is_left_alone(
    open_ledger: Callable[..., Ledger], backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    backend.spool_dir.mkdir(parents=True)
    foreign = backend.spool_dir / "spool-1-abc.jsonl"
    header = {"cachewise_spool": 1, "db": "0000", "db_label": "sqlite:///elsewhere.db"}
    foreign.write_text(json.dumps(header) + "\n" + json.dumps(make_record(1).to_json()) + "\n")
    with caplog.at_level(logging.WARNING, logger="cachewise.ledger"):
        led = open_ledger()
        led.replay()
    assert foreign.exists()
    assert "belongs to ledger sqlite:///elsewhere.db" in caplog.text
    assert led.calls() == []
