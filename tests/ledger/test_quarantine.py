"""A row the database refuses is quarantined with its reason; the rows around it are written."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import exc as sa_exc

from cachewise.cli import cli
from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger.quarantine import is_refusal
from cachewise.usage import Usage

from .conftest import T0, Backend, Outage, make_record

BIG = 2**63  # one above BIGINT's maximum


def _hostile(kind: str, i: int) -> CallRecord:
    if kind == "huge_int":
        return make_record(i, usage=Usage(input_tokens=BIG, output_tokens=5))
    if kind == "surrogate":
        return make_record(i, tags={"user": "ab\ud800cd"})
    if kind == "nul":
        return make_record(i, message_id="msg\x00x", tags={"k": "v\x00"})
    if kind == "unserialisable":
        return make_record(i, rates={"input": Decimal("3")})  # a Decimal where JSON text is needed
    raise AssertionError(kind)


KINDS = ["huge_int", "surrogate", "nul", "unserialisable"]


def _refused_by(kind: str, backend: Backend) -> bool:
    return not (kind == "nul" and backend.name == "sqlite")  # SQLite TEXT keeps NUL bytes


def _ids(led: Ledger) -> list[str]:
    return [r.request_id for r in led.calls()]


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_row_is_quarantined_and_the_rows_around_it_are_written(
    open_ledger: Callable[..., Ledger], backend: Backend, kind: str
) -> None:
    led = open_ledger(batch_size=50)
    for i in range(10):
        led.record(_hostile(kind, i) if i == 4 else make_record(i))
    assert led.flush(timeout=30) == 10  # does not raise
    for i in range(10, 15):  # the queue is not stuck behind the bad row
        led.record(make_record(i))
    assert led.flush(timeout=30) == 5
    refused = _refused_by(kind, backend)
    goods = [f"req_{i:08d}" for i in range(15) if i != 4 or not refused]
    assert _ids(led) == goods
    assert led.quarantine_count() == int(refused)
    assert led.stats.quarantined == int(refused)
    assert led.stats.inserted == len(goods)
    if not refused:
        assert led.calls()[4].message_id == "msg\x00x"
        return
    (entry,) = led.quarantined()
    assert entry.request_id == "req_00000004"
    assert entry.model == "claude-test-1"
    assert entry.started_at == T0 + timedelta(seconds=4)
    assert entry.reason  # names the driver's or database's complaint
    raw = entry.raw()
    assert raw["request_id"] == "req_00000004"
    assert entry.raw_record.isascii()
    if kind == "huge_int":
        assert raw["input_tokens"] == BIG
        assert "range" in entry.reason or "too large" in entry.reason
    if kind == "surrogate":
        assert raw["tags"] == {"user": "ab\ud800cd"}  # kept exactly, as an escape
        assert "surrogate" in entry.reason


@pytest.mark.parametrize("kind", ["huge_int", "surrogate", "unserialisable"])
def test_a_row_refused_while_the_database_was_down_waits_in_the_spool(
    open_ledger: Callable[..., Ledger], outage: Outage, backend: Backend, kind: str
) -> None:
    led = open_ledger(outage.url, busy_timeout=0.2, retry_interval=0.2)
    outage.down()
    for i in range(6):
        led.record(_hostile(kind, i) if i == 2 else make_record(i))
    assert led.flush(timeout=30) == 6
    assert led.stats.spooled == 6
    outage.up()
    deadline = time.monotonic() + 20
    while led.stats.replayed + led.stats.quarantined < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    led.flush(timeout=30)
    assert _ids(led) == [f"req_{i:08d}" for i in (0, 1, 3, 4, 5)]
    assert [q.request_id for q in led.quarantined()] == ["req_00000002"]
    assert not list(backend.spool_dir.glob("spool-*.jsonl"))


def test_an_unserialisable_row_is_a_quarantine_line_in_the_spool(
    open_ledger: Callable[..., Ledger], backend: Backend
) -> None:
    if backend.name == "postgres":
        url = "postgresql://postgres@127.0.0.1:1/test"  # a closed port
    else:
        blocker = backend.tmp / "not-a-dir"
        blocker.write_text("x")
        url = str(blocker / "ledger.db")
    led = open_ledger(url, retry_interval=60)
    led.record(make_record(0))
    led.record(_hostile("unserialisable", 1))
    assert led.flush(timeout=30) == 2
    (path,) = backend.spool_dir.glob("spool-*.jsonl")
    lines = [json.loads(line) for line in path.read_text("ascii").splitlines()[1:]]
    assert lines[0]["request_id"] == "req_00000000"
    assert lines[1]["quarantine"]["request_id"] == "req_00000001"
    assert "cannot be written to the spool" in lines[1]["quarantine"]["reason"]


def test_a_quarantined_record_is_kept_once(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger()
    bad = _hostile("huge_int", 1)
    led.record(bad)
    led.flush()
    led.record(bad)  # the same record again (a retried write, a replayed spool)
    led.flush()
    assert led.quarantine_count() == 1


def test_quarantine_is_counted_in_windows_totals_and_info(
    open_ledger: Callable[..., Ledger], backend: Backend
) -> None:
    led = open_ledger()
    for i in range(20):
        led.record(_hostile("huge_int", i) if i in (3, 15) else make_record(i, tags={"team": "a"}))
    led.flush()
    assert led.quarantine_count() == 2
    assert led.quarantine_count(since=T0 + timedelta(seconds=10)) == 1
    assert led.quarantine_count(until=T0 + timedelta(seconds=10)) == 1
    assert led.quarantine_count(model="claude-other") == 0
    assert led.quarantine_count(tags={"team": "a"}) == 0  # the hostile rows carry no such tag
    totals = led.totals()
    assert (totals.calls, totals.quarantined) == (18, 2)
    assert led.totals(since=T0 + timedelta(seconds=10)).quarantined == 1
    info = led.info()
    assert info["quarantined"] == 2
    assert [q["request_id"] for q in info["quarantine_latest"]] == ["req_00000015", "req_00000003"]
    assert all(q["reason"] for q in info["quarantine_latest"])
    led.close()
    result = CliRunner().invoke(
        cli, ["ledger", "--db", backend.url, "--spool-dir", str(backend.spool_dir), "info"]
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["quarantined"] == 2
    assert shown["quarantine_latest"][0]["reason"] == info["quarantine_latest"][0]["reason"]


def test_nothing_is_lost_at_close_with_a_refused_row_queued(
    open_ledger: Callable[..., Ledger], backend: Backend
) -> None:
    led = open_ledger(flush_interval=3600, batch_size=10_000)
    for i in range(30):
        led.record(_hostile("surrogate", i) if i % 10 == 0 else make_record(i))
    led.close()  # no flush: close (and exit) write the queue
    again = open_ledger()
    assert len(again.calls()) == 27
    assert again.quarantine_count() == 3


@pytest.mark.parametrize(
    ("exc", "refused"),
    [
        (OverflowError("int too large"), True),
        (UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed"), True),
        (sa_exc.DataError("INSERT", None, Exception("bigint out of range")), True),
        (sa_exc.IntegrityError("INSERT", None, Exception("null value")), True),
        (sa_exc.OperationalError("INSERT", None, Exception("connection refused")), False),
        (sa_exc.OperationalError("INSERT", None, sqlite3.OperationalError("database is locked")), False),
        (sa_exc.InterfaceError("INSERT", None, Exception("closed")), False),
        (sa_exc.ProgrammingError("INSERT", None, sqlite3.ProgrammingError("no such table: calls")), False),
        (
            sa_exc.ProgrammingError(
                "INSERT", None, sqlite3.ProgrammingError("Error binding parameter 3: type 'list'")
            ),
            True,
        ),
    ],
)
def test_refused_is_told_apart_from_unreachable(exc: Any, refused: bool) -> None:
    assert is_refusal(exc) is refused


def test_ten_thousand_rows_with_hostile_ones_count_exactly(
    open_ledger: Callable[..., Ledger], backend: Backend
) -> None:
    """The figure in docs/reliability.md ("The ledger"): rows + quarantined == submitted, no good row lost."""
    hostile = {i: KINDS[n % len(KINDS)] for n, i in enumerate(range(17, 10_000, 1000))}
    led = open_ledger()
    for i in range(10_000):
        led.record(_hostile(hostile[i], i) if i in hostile else make_record(i))
    led.flush(timeout=120)
    assert led.stats.durable == 10_000
    refused = sum(_refused_by(kind, backend) for kind in hostile.values())
    totals = led.totals()
    assert totals.calls + totals.quarantined == 10_000
    assert totals.quarantined == refused
    ids = set(_ids(led))
    assert all(f"req_{i:08d}" in ids for i in range(10_000) if i not in hostile)


def test_several_refused_rows_and_repeats_in_one_batch(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger(batch_size=1000, flush_interval=3600)
    hostile = {3: "huge_int", 21: "surrogate", 39: "unserialisable"}
    for i in range(40):
        led.record(_hostile(hostile[i], i) if i in hostile else make_record(i))
    led.record(_hostile("surrogate", 50))  # refused ...
    led.record(make_record(50))  # ... then the same request id, well-formed: written
    led.record(make_record(7))  # a plain repeat: a duplicate
    led.flush(timeout=30)
    assert _ids(led) == [f"req_{i:08d}" for i in [*range(40), 50] if i not in hostile]
    assert sorted(q.request_id or "" for q in led.quarantined()) == [f"req_{i:08d}" for i in (3, 21, 39, 50)]
    stats = led.stats
    assert (stats.inserted, stats.quarantined, stats.duplicates) == (38, 4, 1)


def test_a_refused_call_recorded_again_is_quarantined_once(open_ledger: Callable[..., Ledger]) -> None:
    """Found by tests/wrap/test_trust_e2e.py: the same reply recorded twice with a hostile tag
    (other latency, so another raw record) counted twice as unaccounted."""
    led = open_ledger(batch_size=1000, flush_interval=3600)
    led.record(make_record(1, tags={"user": "ab\ud800cd"}, latency_ms=10.0))
    led.record(make_record(1, tags={"user": "ab\ud800cd"}, latency_ms=12.0))  # same batch
    led.flush()
    led.record(make_record(1, tags={"user": "ab\ud800cd"}, latency_ms=14.0))  # a later batch
    led.record(make_record(2))
    led.flush()
    assert led.quarantine_count() == 1
    assert _ids(led) == ["req_00000002"]
