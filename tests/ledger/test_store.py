"""``Store.insert`` on batches larger than one pipeline chunk: rows built while the previous chunk is
written, in one transaction, with the same guarantees as a small batch."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from sqlalchemy import text

from cachewise.ledger import Ledger
from cachewise.ledger.record import CostBreakdown
from cachewise.ledger.schema import COST_COLUMNS
from cachewise.ledger.store import PIPELINE_CHUNK, SQLITE_CACHE_KIB, Store

from .conftest import Backend, make_record


def _count(store: Store, sql: str) -> int:
    with store.read() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_a_batch_of_several_chunks_skips_stored_rows_and_quarantines_a_refused_one(
    backend: Backend,
) -> None:
    size = PIPELINE_CHUNK * 2 + PIPELINE_CHUNK // 2
    records = [make_record(i, tags={"feature": f"f{i % 3}", "team": "core"}) for i in range(size)]
    bad = PIPELINE_CHUNK * 2 + 7  # in the last chunk: built after two chunks were written
    records[bad] = replace(records[bad], cost=CostBreakdown(*([0.5] * len(COST_COLUMNS))))  # type: ignore[arg-type]
    store = Store(backend.url)
    store.upgrade()
    try:
        before = records[PIPELINE_CHUNK + 10 : PIPELINE_CHUNK + 20]  # in the second chunk
        assert store.insert(before).inserted == 10
        again = [*records, records[5]]  # and a repeat inside the batch
        result = store.insert(again)
        assert result.inserted == size - 10 - 1
        assert result.quarantined == 1
        assert result.duplicates == 10 + 1
        assert _count(store, "SELECT count(*) FROM calls") == size - 1
        assert _count(store, "SELECT count(*) FROM quarantine") == 1
        assert _count(store, "SELECT count(DISTINCT request_id) FROM calls") == size - 1
        # every call has its own two tags, on its own id
        assert _count(store, "SELECT count(*) FROM call_tags") == 2 * (size - 1)
        assert (
            _count(
                store,
                "SELECT count(*) FROM call_tags t JOIN calls c ON c.id = t.call_id "
                "WHERE t.key = 'team' AND t.value = 'core'",
            )
            == size - 1
        )
        assert _count(store, "SELECT count(*) FROM calls WHERE id IS NULL") == 0
        with store.read() as conn:
            total = conn.execute(text("SELECT cost_total FROM calls WHERE request_id = 'req_00000003'")).one()
        assert Decimal(str(total[0])) == records[3].cost.cost_total  # type: ignore[union-attr]
    finally:
        store.dispose()


def test_rows_left_at_interpreter_exit_are_all_written(backend: Backend) -> None:
    """At exit no new thread may start: a batch of several chunks is then written inline."""
    rows = PIPELINE_CHUNK * 3 + 1
    child = Path(__file__).with_name("_child.py")
    done = subprocess.run(
        [sys.executable, str(child), "exit", backend.url, str(backend.spool_dir), str(rows)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "could not be written" not in done.stderr
    store = Store(backend.url)
    try:
        assert _count(store, "SELECT count(*) FROM calls") == rows
    finally:
        store.dispose()


def test_replay_points_round_trip(ledger: Ledger) -> None:
    """``calls.replay`` (step 0008) comes back as written, on SQLite and PostgreSQL."""
    points = {
        "tokens": 3090,
        "points": [["8255b3f3ecfc5218", 49, "tools", None, 0], ["4f84", 3023, "system", "1h", 1]],
    }
    ledger.record(make_record(1, replay=points))
    ledger.record(make_record(2))
    ledger.flush()
    got = {r.request_id: r.replay for r in ledger.calls()}
    assert sorted(got.values(), key=lambda v: v is None) == [points, None]


def test_sqlite_writes_with_a_large_page_cache_and_reads_with_the_default(tmp_path: Path) -> None:
    """The write path keeps a batch's index pages in memory; a read on the same pooled connection
    gives them back, so reports do not hold the writer's cache."""
    store = Store(tmp_path / "l.db")
    store.upgrade()
    try:
        for _ in range(2):  # the same pooled connection, write then read then write
            with store.write() as conn:
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -SQLITE_CACHE_KIB
            with store.read() as conn:
                assert conn.exec_driver_sql("PRAGMA cache_size").scalar() == -2000
        assert store.insert([make_record(1)]).inserted == 1
    finally:
        store.dispose()
