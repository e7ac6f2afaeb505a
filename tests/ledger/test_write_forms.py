"""SQLite's write path stores the same rows whichever form a row takes: statements per NULL
pattern (NULL in the statement text, booleans as ints) or ``None`` values bound one by one."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger import store as store_module
from cachewise.ledger.rollups import stored as stored_rollups
from cachewise.ledger.store import _INSERT_COLUMNS, PIPELINE_CHUNK, Store
from cachewise.ledger.types import format_utc

from .conftest import make_record
from .test_units import random_records

_COLUMNS = ("id", *(c for c in _INSERT_COLUMNS if c != "recorded_at"))  # recorded_at: the time of writing


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


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=5, minutes=45)), timezone(-timedelta(hours=11))]
        )
    )
)
def test_the_time_text_is_the_fixed_width_utc_form(moment: datetime) -> None:
    """``format_utc`` cuts the offset off the aware form: the same text as the naive UTC time's,
    26 characters whether or not it has microseconds, so text order stays time order."""
    utc = moment.astimezone(UTC)
    written = format_utc(moment)
    assert written == utc.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    assert len(written) == 26
    assert datetime.fromisoformat(written).replace(tzinfo=UTC) == utc


def test_only_nullable_columns_make_a_null_pattern_and_a_none_elsewhere_is_still_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pattern is looked for in the nullable columns only; a ``None`` in a ``NOT NULL`` column
    is bound as it is, and the database refuses that row (it is quarantined, the others written)."""
    from cachewise.ledger.schema import calls

    assert all(calls.c[_INSERT_COLUMNS[i]].nullable for i in store_module._NULLABLE)
    assert {i for i, name in enumerate(_INSERT_COLUMNS) if calls.c[name].nullable} == set(
        store_module._NULLABLE
    )
    store = Store(str(tmp_path / "l.db"))
    store.upgrade()
    try:
        good = [make_record(i) for i in range(1, 4)]
        built = store_module.record_values
        model_at = _INSERT_COLUMNS.index("model")

        def without_model(record: CallRecord, *args: Any, **kwargs: Any) -> Any:
            values, tags = built(record, *args, **kwargs)
            if record.request_id == good[1].request_id:
                values = (*values[:model_at], None, *values[model_at + 1 :])
            return values, tags

        monkeypatch.setattr(store_module, "record_values", without_model)
        result = store.insert(good)
        assert (result.inserted, result.quarantined) == (2, 1)
        with store.read() as conn:
            ids = set(conn.execute(text("SELECT request_id FROM calls")).scalars())
        assert ids == {good[0].request_id, good[2].request_id}
    finally:
        store.dispose()
