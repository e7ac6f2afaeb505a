"""Schema steps: upgrading a populated step-0001 ledger, refusing a newer one, matching schema.py."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Column, MetaData, Table, insert, inspect, text

from cachewise.errors import SchemaTooNew
from cachewise.ledger import Ledger, migrations
from cachewise.ledger.schema import metadata
from cachewise.ledger.store import Store

from .conftest import T0, Backend, make_record


def _v1_store(backend: Backend) -> Store:
    store = Store(backend.url)
    assert store.upgrade(target=1) == ["0001_initial"]
    return store


def test_upgrade_a_populated_0001_ledger_in_place(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    store = _v1_store(backend)
    with store.write() as conn:
        calls_v1 = Table("calls", MetaData(), autoload_with=conn)
        tags_v1 = Table("call_tags", MetaData(), autoload_with=conn)
        assert "custom_id" not in calls_v1.c
        rows = []
        for i in range(3):
            row = make_record(i, tags={"feature": "search"}).to_row()
            row.pop("custom_id")
            row["recorded_at"] = T0
            rows.append(row)
        from cachewise.ledger.schema import calls as calls_now

        # Write through today's column types (Money, UTCDateTime) into the old table.
        typed = Table(
            "calls",
            MetaData(),
            *(Column(c.name, c.type) for c in calls_now.c if c.name not in ("id", "custom_id")),
        )
        conn.execute(insert(typed), rows)
        ids = conn.execute(text("SELECT id FROM calls ORDER BY id")).scalars().all()
        conn.execute(insert(tags_v1), [{"call_id": i, "key": "feature", "value": "search"} for i in ids])
    store.dispose()

    led = open_ledger()
    assert led.schema_version() == migrations.latest_version()
    back = led.calls(tags={"feature": "search"})
    assert back == [make_record(i, tags={"feature": "search"}) for i in range(3)]
    led.record(make_record(9, custom_id="row-9", batch_id="b1"))
    led.flush()
    assert led.calls()[-1].custom_id == "row-9"
    with led._store.read() as conn:
        names = [r[0] for r in conn.execute(text("SELECT name FROM cachewise_migrations ORDER BY id"))]
    assert names == [m.name for m in migrations.MIGRATIONS]


def test_upgraded_schema_matches_schema_py(backend: Backend, open_ledger: Callable[..., Ledger]) -> None:
    _v1_store(backend).dispose()
    led = open_ledger()
    with led._store.read() as conn:
        insp = inspect(conn)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c for c in insp.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns], table.name
            for col in table.columns:
                assert columns[col.name]["nullable"] == col.nullable, (table.name, col.name)
            indexes = {i["name"] for i in insp.get_indexes(table.name)}
            assert {str(i.name) for i in table.indexes} <= indexes, table.name


def test_newer_schema_is_refused(backend: Backend, open_ledger: Callable[..., Ledger]) -> None:
    open_ledger().close()
    store = Store(backend.url)
    with store.write() as conn:
        conn.execute(
            text("INSERT INTO cachewise_migrations (id, name, applied_at) VALUES (:i, :n, :a)"),
            {
                "i": 99,
                "n": "0099_future",
                "a": "2030-01-01 00:00:00.000000" if backend.name == "sqlite" else T0,
            },
        )
    store.dispose()
    with pytest.raises(SchemaTooNew, match="has schema version 99") as info:
        open_ledger()
    assert (info.value.found, info.value.supported) == (99, migrations.latest_version())
    with pytest.raises(SchemaTooNew):
        open_ledger(upgrade=False)


def test_reopening_applies_nothing(backend: Backend, open_ledger: Callable[..., Ledger]) -> None:
    open_ledger().close()
    assert open_ledger().upgrade() == []
