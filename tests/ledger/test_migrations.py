"""Schema steps: upgrade a populated ledger from every earlier step; refuse a newer one; match schema.py."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Connection, MetaData, Table, event, insert, inspect, select, text

from cachewise.errors import SchemaTooNew
from cachewise.ledger import CostBreakdown, Filter, Ledger, migrations, rollups
from cachewise.ledger.aggregate import group_sums
from cachewise.ledger.schema import calls, metadata
from cachewise.ledger.store import Store
from cachewise.usage import Usage

from .conftest import T0, Backend, make_record, pg_schema


def _store_at(backend: Backend, step: int) -> Store:
    store = Store(backend.url)
    assert store.upgrade(target=step) == [m.name for m in migrations.MIGRATIONS[:step]]
    return store


def _v1_store(backend: Backend) -> Store:
    return _store_at(backend, 1)


EARLIER_STEPS = [m.id for m in migrations.MIGRATIONS[:-1]]


@pytest.mark.parametrize("step", EARLIER_STEPS)
def test_upgrade_a_populated_ledger_from_every_earlier_step(
    backend: Backend, open_ledger: Callable[..., Ledger], step: int
) -> None:
    store = _store_at(backend, step)
    from cachewise.ledger.schema import calls as calls_now

    with store.write() as conn:
        calls_old = Table("calls", MetaData(), autoload_with=conn)
        tags_old = Table("call_tags", MetaData(), autoload_with=conn)
        present = {c.name for c in calls_old.c}
        assert ("custom_id" in present) == (step >= 2)
        assert ("raw_usage" in present) == (step >= 4)
        assert ("cost_total_units" in present) == (step >= 5)
        assert ("provider" in present) == (step >= 6)
        rows = []
        for i in range(3):
            full = make_record(i, tags={"feature": "search"}).to_row()
            row = {k: v for k, v in full.items() if k in present}
            row["recorded_at"] = T0
            rows.append(row)
        # Write through today's column types (Money, UTCDateTime) into the old table.
        typed = Table(
            "calls",
            MetaData(),
            *(Column(c.name, c.type) for c in calls_now.c if c.name in present and c.name != "id"),
        )
        conn.execute(insert(typed), rows)
        ids = conn.execute(text("SELECT id FROM calls ORDER BY id")).scalars().all()
        conn.execute(insert(tags_old), [{"call_id": i, "key": "feature", "value": "search"} for i in ids])
        if step >= migrations.ROLLUPS_STEP:  # the writer keeps them from step 0011 on
            rollups.rebuild(conn)
    store.dispose()

    led = open_ledger()
    assert led.schema_version() == migrations.latest_version()
    back = led.calls(tags={"feature": "search"})
    # step 0006 leaves the provider of older rows unknown (NULL), never a guess
    provider = "anthropic" if step >= 6 else None
    assert back == [replace(make_record(i, tags={"feature": "search"}), provider=provider) for i in range(3)]
    assert all(r.raw_usage is None for r in back)
    # step 0011 built the rollups of the rows already there (or the writer kept them)
    built = led.check_rollups()
    assert built.ok and built.rows > 0
    assert led.totals() == led.totals(since=T0 - timedelta(days=1))
    led.record(make_record(9, custom_id="row-9", batch_id="b1", raw_usage='{"input_tokens": null}'))
    led.record(make_record(10, usage=Usage(input_tokens=2**64)))  # refused: above BIGINT
    led.flush()
    assert led.calls()[-1].custom_id == "row-9"
    assert led.calls()[-1].raw_usage == '{"input_tokens": null}'
    assert led.quarantine_count() == 1
    assert led.quarantined()[0].request_id == "req_00000010"
    assert led.check_rollups().ok
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


def _index_sql(conn: Connection, backend: Backend, name: str) -> str:
    if backend.name == "sqlite":
        found = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name})
        return str(found.scalar_one())
    found = conn.execute(
        text("SELECT indexdef FROM pg_indexes WHERE indexname = :n AND schemaname = current_schema()"),
        {"n": name},
    )
    return str(found.scalar_one())


def test_step_12_makes_the_prefix_and_batch_indexes_partial_on_a_populated_ledger(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    store = _store_at(backend, 10)
    store.dispose()
    before = open_ledger(upgrade=False)
    before.record(make_record(0, prefix_hash="p1"))
    before.record(make_record(1, batch_id="b1", custom_id="c1"))
    before.record(make_record(2))
    before.close()
    led = open_ledger()
    assert led.schema_version() == migrations.latest_version()
    with led._store.read() as conn:
        prefix = _index_sql(conn, backend, "ix_calls_prefix_hash_started_at")
        batch = _index_sql(conn, backend, "ix_calls_batch_id_custom_id")
        assert "prefix_hash IS NOT NULL" in prefix and "started_at" in prefix, prefix
        assert "batch_id IS NOT NULL" in batch and "custom_id" in batch, batch
    assert [r.request_id for r in led.calls()] == [make_record(i).request_id for i in range(3)]
    # written at step 10 without rollups (the writer keeps none there); step 0011 built them from the rows
    assert led.check_rollups().ok


def test_the_report_seek_still_reads_the_partial_prefix_index(tmp_path: Path) -> None:
    """``prefix_hash = <outer prefix_hash>`` implies the index's ``IS NOT NULL``: SQLite's planner uses it."""
    led = Ledger(tmp_path / "l.db", spool_dir=tmp_path / "spool", flush_on_signal=False)
    for i in range(40):
        led.record(make_record(i, prefix_hash=f"p{i % 4}" if i % 3 else None))
    led.flush()
    n = calls.alias("n")
    seek = (
        select(n.c.id)
        .where(n.c.prefix_hash == calls.c.prefix_hash, n.c.started_at > calls.c.started_at)
        .order_by(n.c.started_at, n.c.id)
        .limit(1)
        .correlate(calls)
        .scalar_subquery()
    )
    stmt = select(calls.c.id, seek).where(calls.c.prefix_hash.is_not(None))
    with led._store.read() as conn:
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(str(row[-1]) for row in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    led.close()
    assert "ix_calls_prefix_hash_started_at" in plan, plan


def test_step_13_covers_the_family_ranking_on_postgresql_on_a_populated_ledger(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    store = _store_at(backend, 12)
    store.dispose()
    before = open_ledger(upgrade=False)
    for i in range(12):
        cost = _exact_cost(i * 7 % 5) if i != 5 else None
        before.record(make_record(i, prefix_hash=f"p{i % 3}" if i % 4 else None, priced=i != 5, cost=cost))
    before.close()
    led = open_ledger()
    assert led.schema_version() == migrations.latest_version()
    with led._store.read() as conn:
        prefix = _index_sql(conn, backend, "ix_calls_prefix_hash_started_at")
        ranked = group_sums(conn, Filter(), ["prefix_hash"], prefixed=True, top=2)
        every = group_sums(conn, Filter(), ["prefix_hash"], prefixed=True)
    assert "prefix_hash IS NOT NULL" in prefix and "started_at" in prefix, prefix
    if backend.name == "postgres":  # SQLite has no INCLUDE: its index is the step 12 one
        assert "INCLUDE (model, cost_error, cost_total_units)" in prefix, prefix
    else:
        assert "INCLUDE" not in prefix.upper(), prefix
    by_cost = sorted(every, key=lambda g: (-g.money["cost_total"], g.key))
    assert [g.key for g in ranked] == [g.key for g in by_cost[:2]]
    assert ranked == by_cost[:2]
    assert [r.request_id for r in led.calls()] == [make_record(i).request_id for i in range(12)]
    assert led.check_rollups().ok


def _exact_cost(i: int) -> CostBreakdown:
    parts = [Decimal("0.000125") * (i + k + 1) for k in range(7)]
    total = sum(parts, Decimal(0))
    return CostBreakdown(*parts, cost_total=total, cost_no_cache=total * 2, savings=total)


@pytest.mark.postgres
def test_the_family_ranking_reads_only_the_covering_index_on_postgresql(tmp_path: Path) -> None:
    """The ranking of :func:`group_sums` (``top`` with ``prefixed``) needs no column outside
    ``ix_calls_prefix_hash_started_at``: with sequential scans off PostgreSQL plans it as an
    index-only scan, also under a window and a model scope. (Under a tag scope the planner may
    as well start from ``call_tags``; which way is cheaper depends on the tag.)"""
    with pg_schema("cw_rank") as (url, _schema):
        led = Ledger(url, spool_dir=tmp_path / "spool", flush_on_signal=False)
        try:
            for i in range(30):  # whole 10^-12 units: the ranking reads the units (no inexact row)
                cost = _exact_cost(i)
                led.record(make_record(i, prefix_hash=f"p{i % 5}", tags={"feature": "chat"}, cost=cost))
            led.flush()
            seen: list[tuple[str, Any]] = []

            def capture(conn: Any, cursor: Any, statement: str, params: Any, *_rest: Any) -> None:
                if "GROUP BY calls.prefix_hash ORDER BY" in statement:
                    seen.append((statement, params))

            scopes = [
                Filter(),
                Filter(since=T0 - timedelta(hours=1), until=T0 + timedelta(days=1)),
                Filter(model="claude-test-1"),
            ]
            with led._store.read() as conn:
                event.listen(conn, "before_cursor_execute", capture)
                for flt in scopes:
                    assert group_sums(conn, flt, ["prefix_hash"], prefixed=True, top=3)
                event.remove(conn, "before_cursor_execute", capture)
                assert len(seen) == len(scopes)
                # a scratch ledger: leave the planner the covering index or nothing (on a few rows
                # it would as soon read ix_calls_started_at and sort)
                conn.exec_driver_sql("DROP INDEX ix_calls_started_at")
                conn.exec_driver_sql("DROP INDEX ix_calls_model_started_at")
                conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
                conn.exec_driver_sql("SET LOCAL enable_bitmapscan = off")
                for statement, params in seen:
                    plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + statement, params))
                    assert "Index Only Scan using ix_calls_prefix_hash_started_at on calls" in plan, plan
        finally:
            led.close()


def test_step_14_names_the_price_tables_of_stored_rates_by_file_name(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    store = _store_at(backend, 13)
    store.dispose()
    shipped = "/opt/app/venv/lib/python3.11/site-packages/cachewise/_data/pricing/anthropic.yaml"
    sources = {
        0: shipped,
        1: r"C:\Users\someone\repo\pricing\anthropic.yaml, C:\Users\someone\acme.yaml",
        2: "cachewise:anthropic.yaml",  # already portable: left alone
        3: "/srv/tables/anthropic.yaml",  # a file of the user's that happens to share the name
    }
    before = open_ledger(upgrade=False)
    for i, source in sources.items():
        before.record(make_record(i, rates={"input": "3", "multiplier": "1.1", "source": source}))
    before.record(make_record(4, rates=None))
    before.close()
    store = Store(backend.url)
    with store.write() as conn:
        conn.execute(
            text(
                "INSERT INTO reprices (request_id, table_version, priced_at, rates) "
                "VALUES ('req_00000000', 'v2', '2026-11-20 00:00:00+00:00', :rates)"
            ),
            {"rates": '{"input": "3", "source": "/opt/tables/acme-v2.yaml"}'},
        )
    store.dispose()
    led = open_ledger()
    assert led.schema_version() == migrations.latest_version()
    back = {r.request_id: r.rates for r in led.calls()}
    assert back == {
        make_record(0).request_id: {"input": "3", "multiplier": "1.1", "source": "cachewise:anthropic.yaml"},
        make_record(1).request_id: {
            "input": "3",
            "multiplier": "1.1",
            "source": "cachewise:anthropic.yaml, acme.yaml",
        },
        make_record(2).request_id: {"input": "3", "multiplier": "1.1", "source": "cachewise:anthropic.yaml"},
        make_record(3).request_id: {"input": "3", "multiplier": "1.1", "source": "anthropic.yaml"},
        make_record(4).request_id: None,
    }
    with led._store.read() as conn:
        (rates,) = conn.execute(text("SELECT rates FROM reprices")).one()
    stored = rates if isinstance(rates, dict) else json.loads(rates)
    assert stored == {"input": "3", "source": "acme-v2.yaml"}
    assert led.check_rollups().ok
