"""The write path's statements: many tags per batch (SQLite multi-row tag statements of a few fixed
sizes, PostgreSQL COPY) and ids drawn from a sequence named once while another writer draws too."""

from __future__ import annotations

from sqlalchemy import text

from cachewise.ledger import Ledger
from cachewise.ledger.store import _TAG_STATEMENT_SIZES, PIPELINE_CHUNK, Store

from .conftest import Backend, make_record
from .test_units import random_records


def _stored_tags(store: Store) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    with store.read() as conn:
        rows = conn.execute(
            text("SELECT c.request_id, t.key, t.value FROM call_tags t JOIN calls c ON c.id = t.call_id")
        )
        for request_id, key, value in rows:
            out.setdefault(request_id, {})[key] = value
    return out


def test_a_batch_with_every_tag_statement_size_reads_back_row_for_row(backend: Backend) -> None:
    # 2,345 tag rows in one chunk: one statement of each size on SQLite (2000 + 250 + 3 x 30 +
    # 5 x 1); calls with no tags, two tags and three tags interleaved.
    records = []
    left = 2000 + 250 + 3 * 30 + 5
    for i in range(900):
        count = 0 if i % 9 == 0 else min(3, left)
        left -= count
        records.append(make_record(i, tags={f"k{j}": f"v{i}-{j}" for j in range(count)}))
    assert left == 0 and max(_TAG_STATEMENT_SIZES) == 2000 and len(records) <= PIPELINE_CHUNK
    store = Store(backend.url)
    store.upgrade()
    try:
        assert store.insert(records).inserted == len(records)
        assert _stored_tags(store) == {r.request_id: dict(r.tags) for r in records if r.tags}
    finally:
        store.dispose()
    with Ledger(backend.url, spool_dir=backend.spool_dir) as led:
        assert led.calls() == sorted(records, key=lambda r: (r.started_at, r.request_id))


def test_records_written_through_the_ledger_read_back_row_for_row(backend: Backend) -> None:
    """Random priced and unpriced records of every model, several batches, through ``record()``."""
    records = random_records(3 * PIPELINE_CHUNK + 17, seed=12)
    with Ledger(backend.url, spool_dir=backend.spool_dir, batch_size=1500) as led:
        for record in records:
            led.record(record)
        assert led.flush() == len(records)
        assert led.stats.inserted == len(records)
        assert led.calls() == sorted(records, key=lambda r: (r.started_at, r.request_id))
        store = Store(backend.url)
        try:
            assert _stored_tags(store) == {r.request_id: dict(r.tags) for r in records if r.tags}
        finally:
            store.dispose()


def test_two_writers_taking_turns_keep_every_id_and_tag_on_its_own_call(backend: Backend) -> None:
    """Each store names the id sequence once; the other one draws ids in between."""
    first, second = Store(backend.url), Store(backend.url)
    first.upgrade()
    second.upgrade()
    records = [make_record(i, tags={"writer": "ab"[(i // 250) % 2], "n": str(i)}) for i in range(2000)]
    try:
        for turn, start in enumerate(range(0, len(records), 250)):
            store = (first, second)[turn % 2]
            assert store.insert(records[start : start + 250]).inserted == 250
        again = second.insert(records[:300])  # already stored: skipped, nothing doubled
        assert (again.inserted, again.duplicates, again.conflicts) == (0, 300, 0)
        with first.read() as conn:
            ids = [row[0] for row in conn.execute(text("SELECT id FROM calls ORDER BY request_id"))]
        assert len(ids) == len(set(ids)) == len(records)
        assert _stored_tags(first) == {r.request_id: dict(r.tags) for r in records}
    finally:
        first.dispose()
        second.dispose()
