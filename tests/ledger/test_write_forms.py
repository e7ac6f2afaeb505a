"""The write path's forms store the same rows: SQLite's statements per NULL pattern (NULL in the
statement text) against bound ``None`` values, and PostgreSQL's staging table against ``COPY``
straight into ``calls`` (the path of a role that may not create temporary tables)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import text

from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger import store as store_module
from cachewise.ledger.rollups import stored as stored_rollups
from cachewise.ledger.store import _INSERT_COLUMNS, PIPELINE_CHUNK, Store, record_values

from .conftest import make_record, pg_schema
from .test_units import random_records

_COLUMNS = ("id", *(c for c in _INSERT_COLUMNS if c != "recorded_at"))  # recorded_at: the time of writing
_REFUSE = "DO $$ BEGIN RAISE EXCEPTION 'no temp' USING ERRCODE = '42501'; END $$"


def _records() -> list[CallRecord]:
    """Several chunks of random records (priced and not, every model and modifier: many NULL
    patterns), with true booleans and the edge rows of the conftest among them."""
    records = random_records(2 * PIPELINE_CHUNK + 300, seed=41)
    for i in range(0, len(records), 7):
        records[i] = replace(records[i], planned=True, incomplete=i % 2 == 0)
    edge = [
        make_record(900_001, priced=False, cost_error="no price"),
        make_record(900_002, tags={"feature": "x", "user": "u"}, error_type="E"),
        make_record(900_003, raw_usage='{"input_tokens": 1}', message_id="msg_1", latency_ms=12.5),
    ]
    return [*records, *edge]


def _stored(store: Store) -> tuple[list[tuple[Any, ...]], dict[str, dict[str, str]], Any]:
    """Every column of every row as stored (SQLite: with its storage class), the tags, the rollups."""
    sqlite = store.dialect == "sqlite"
    columns = tuple(c for c in _COLUMNS if sqlite or c != "id")  # PostgreSQL ids: the sequence's order
    shown = ", ".join(f"{c}, typeof({c})" if sqlite else c for c in columns)
    with store.read() as conn:
        rows = [tuple(row) for row in conn.exec_driver_sql(f"SELECT {shown} FROM calls ORDER BY request_id")]
        tags: dict[str, dict[str, str]] = {}
        for request_id, key, value in conn.execute(
            text("SELECT c.request_id, t.key, t.value FROM call_tags t JOIN calls c ON c.id = t.call_id")
        ):
            tags.setdefault(request_id, {})[key] = value
        return rows, tags, stored_rollups(conn)


def _written(url: str, records: list[CallRecord], prepare: Any = None) -> Any:
    store = Store(url)
    store.upgrade()
    if prepare is not None:
        prepare(store)
    try:
        for start in range(0, len(records), 1500):  # batches of several chunks
            assert store.insert(records[start : start + 1500]).inserted == len(records[start : start + 1500])
        return _stored(store)
    finally:
        store.dispose()


@pytest.mark.parametrize("known", [0, 2])
def test_sqlite_rows_per_null_pattern_equal_the_rows_bound_value_by_value(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch, known: int
) -> None:
    """``known``: how many NULL patterns get statements of their own in the reference run (0: every
    ``None`` bound; 2: the two first patterns in the SQL text, the other rows bound)."""
    records = _records()
    fast = _written(str(tmp_path / "fast.db"), records)
    seen: set[tuple[int, ...]] = set()

    def count_patterns(store: Store) -> None:
        store._null_patterns = seen  # the reference store's patterns, looked at afterwards

    monkeypatch.setattr(store_module, "MAX_NULL_PATTERNS", known)
    reference = _written(str(tmp_path / "bound.db"), records, count_patterns)
    assert len(seen) == known
    rows, tags, rollups = fast
    assert len(rows) == len(records)
    assert (rows, tags, rollups) == reference
    classes = {row[i] for row in rows for i in range(1, len(row), 2)}
    assert classes == {"integer", "real", "text", "null"}
    booleans = {_COLUMNS.index(c) for c in ("ttl_split_missing", "incomplete", "planned")}
    assert {row[2 * i + 1] for row in rows for i in booleans} == {"integer"}
    assert {row[2 * i] for row in rows for i in booleans} == {0, 1}


def test_the_store_keeps_a_bounded_number_of_null_patterns(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "MAX_NULL_PATTERNS", 3)
    store = Store(str(tmp_path / "l.db"))
    store.upgrade()
    try:
        records = _records()
        assert store.insert(records).inserted == len(records)
        assert len(store._null_patterns) == 3
    finally:
        store.dispose()
    with Ledger(str(tmp_path / "l.db"), spool_dir=tmp_path / "spool") as led:
        assert led.calls() == sorted(records, key=lambda r: (r.started_at, r.request_id))
        assert led.check_rollups().ok


@pytest.mark.postgres
def test_postgresql_staged_rows_equal_rows_copied_into_calls() -> None:
    records = _records()
    with pg_schema("cw_stage") as (staged_url, _s1), pg_schema("cw_copy") as (copied_url, _s2):

        def without_staging(store: Store) -> None:
            store._staging = False

        staged = _written(staged_url, records)
        copied = _written(copied_url, records, without_staging)
    assert len(staged[0]) == len(records)
    assert staged == copied


@pytest.mark.postgres
def test_without_the_temporary_privilege_rows_are_copied_into_calls(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role refused temporary tables: the first chunk finds out under a savepoint, the store
    stops asking, and every row is written once, by ``COPY`` into ``calls``."""
    monkeypatch.setattr(store_module, "_PG_CREATE_STAGING", _REFUSE)
    records = _records()
    with pg_schema("cw_notemp") as (url, _schema), Ledger(url, spool_dir=tmp_path, batch_size=1500) as led:
        for record in records:
            led.record(record)
        assert led.flush() == len(records)
        assert led.stats.inserted == len(records) and led.stats.spooled == 0
        assert led._store._staging is False
        assert led.calls() == sorted(records, key=lambda r: (r.started_at, r.request_id))
        assert led.check_rollups().ok


@pytest.mark.postgres
def test_postgresql_staged_rows_skip_what_another_writer_stored_without_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Rows another writer stored in between are skipped by ``ON CONFLICT``: the batch is not
    refused and written again by halves."""
    records = [make_record(i, tags={"n": str(i)}) for i in range(1200)]
    with pg_schema("cw_race") as (url, _schema):
        first, second = Store(url), Store(url)
        first.upgrade()
        second.upgrade()
        try:
            assert first.insert(records[300:700]).inserted == 400

            def no_retry(_records: Any) -> Any:
                raise AssertionError("the batch was written again by halves")

            monkeypatch.setattr(second, "_insert_isolated", no_retry)
            with second.write() as conn:  # the stored ids are not read first: the insert skips them
                rows = [record_values(r, r.started_at, False) for r in records[:1000]]
                inserted = second._write_rows(conn, rows, bulk=True)
            assert sorted(inserted) == sorted(r.request_id for r in records[:300] + records[700:1000])
            result = second.insert(records)
            assert (result.inserted, result.duplicates, result.conflicts) == (200, 1000, 0)
            rows_, tags, _rollups = _stored(first)
            assert len(rows_) == len(records)
            assert tags == {r.request_id: dict(r.tags) for r in records}
        finally:
            first.dispose()
            second.dispose()
