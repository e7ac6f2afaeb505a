"""Rollups kept on write equal the rows: reports, totals and budgets read them for full hours and
get the row scan's figures digit for digit, on SQLite and PostgreSQL.

Random ledgers (every priced model, modifiers, both TTLs, prefix families read back in and out of
the lifetimes, tags, unpriced calls, rows without exact units) are recorded out of order in
batches of random sizes, so a later batch changes the write waste of calls an earlier batch
stored. Windows start and end off the hour. ``use_rollups=False`` is the row scan.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from cachewise.cli import cli
from cachewise.ledger import CallRecord, Filter, Ledger, rollups
from cachewise.ledger.aggregate import GroupSums, group_sums
from cachewise.ledger.query import read_totals
from cachewise.ledger.types import format_utc
from cachewise.reports import build_report, render
from cachewise.reports.source import LedgerSource
from cachewise.usage import Usage
from tests.ledger.conftest import Backend, make_record, pg_schema
from tests.ledger.test_aggregate import T0, random_ledger

KEY_SETS: tuple[tuple[str, ...], ...] = (
    (),
    ("model",),
    ("model", "tag:feature"),
    ("day", "tag:user", "cost_error"),
    ("month", "model"),
)


def _record_shuffled(ledger: Ledger, records: Sequence[CallRecord], rng: random.Random) -> None:
    """Record ``records`` in a random order, flushing after batches of random sizes."""
    order = list(records)
    rng.shuffle(order)
    start = 0
    while start < len(order):
        size = rng.choice((1, 3, 17, 60))
        for record in order[start : start + size]:
            ledger.record(record)
        ledger.flush()
        start += size


def _sorted(groups: list[GroupSums]) -> list[GroupSums]:
    return sorted(groups, key=lambda g: repr(g.key))


def _same_as_rows(ledger: Ledger, flt: Filter) -> None:
    with ledger.read() as conn:
        assert read_totals(conn, flt) == read_totals(conn, flt, use_rollups=False), flt
        for keys in KEY_SETS:
            fast = _sorted(group_sums(conn, flt, keys))
            rows = _sorted(group_sums(conn, flt, keys, use_rollups=False))
            assert fast == rows, (flt, keys)


def _windows(records: Sequence[CallRecord], offsets: Sequence[int]) -> list[Filter]:
    first = min(r.started_at for r in records)
    since = first + timedelta(seconds=offsets[0])
    until = since + timedelta(seconds=offsets[1])
    model = records[0].model
    return [
        Filter(),
        Filter(since),
        Filter(None, until),
        Filter(since, until),
        Filter(since, until, model=model),
        Filter(since, tags={"feature": "chat"}),
        Filter(until=until, tags={"user": "u1", "feature": "search"}),
    ]


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    seed=st.integers(0, 10_000),
    count=st.integers(1, 120),
    offsets=st.tuples(st.integers(-600, 30_000), st.integers(1, 60_000)),
)
def test_rollups_equal_the_rows_on_random_ledgers_and_windows(
    ledger: Ledger, seed: int, count: int, offsets: tuple[int, int]
) -> None:
    records = random_ledger(count, seed)
    records = [replace(r, request_id=f"{r.request_id}_{seed}_{count}") for r in records]
    _record_shuffled(ledger, records, random.Random(seed))
    assert ledger.check_rollups().ok
    for flt in _windows(records, offsets):
        _same_as_rows(ledger, flt)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 10_000), count=st.integers(1, 120))
def test_families_read_from_their_last_read_keep_the_rollups_equal(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, seed: int, count: int
) -> None:
    # every family is "wide" once read: each later batch reads it from its last read before the batch
    monkeypatch.setattr(rollups, "_WIDE_MEMBERS", 0)
    monkeypatch.setattr(rollups, "_WIDE", set())
    records = random_ledger(count, seed)
    records = [replace(r, request_id=f"{r.request_id}_wide_{seed}_{count}") for r in records]
    rng = random.Random(seed)
    order = list(records)
    rng.shuffle(order)
    while order:
        size = rng.choice((1, 3, 17))
        for record in order[:size]:
            ledger.record(record)
        del order[:size]
        ledger.flush()
        assert ledger.check_rollups().ok  # after every batch, not only at the end
    for flt in _windows(records, (0, 30_000)):
        _same_as_rows(ledger, flt)


def _family_call(n: int, at: Any, *, write: int = 0, one_hour: bool = False, read: int = 0) -> CallRecord:
    usage = Usage(
        input_tokens=10,
        cache_read_input_tokens=read,
        ephemeral_5m_input_tokens=0 if one_hour else write,
        ephemeral_1h_input_tokens=write if one_hour else 0,
        output_tokens=5,
    )
    return CallRecord.priced(
        usage=usage, model="claude-sonnet-4-5", started_at=at, request_id=f"busy_{n}", prefix_hash="busy"
    )


def test_a_busy_family_is_read_from_its_last_read_not_its_whole_hour(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rollups, "_WIDE", set())
    read_sizes: list[int] = []
    members = rollups._members

    def counted(*args: Any) -> dict[str, list[Any]]:
        found = members(*args)
        read_sizes.extend(len(v) for v in found.values())
        return found

    monkeypatch.setattr(rollups, "_members", counted)
    start = T0 + timedelta(minutes=1)
    calls = [_family_call(0, start, write=4000)]
    calls += [_family_call(n, start + timedelta(seconds=n), read=4000) for n in range(1, 200)]
    for call in calls:
        ledger.record(call)
    ledger.flush()
    ledger.record(_family_call(200, start + timedelta(seconds=200), read=4000))
    ledger.flush()
    assert read_sizes == [0, 200]  # the first batch's calls are all new; then every stored call
    assert "busy" in rollups._WIDE
    at = start + timedelta(seconds=201)
    # writers after the last read (two in one second), then a read that takes them out of waste
    late = [
        _family_call(201, at, write=3000),
        _family_call(202, at, write=2000, one_hour=True),
        _family_call(203, at + timedelta(seconds=1), write=1000),
    ]
    for call in late:
        ledger.record(call)
    ledger.flush()
    assert read_sizes[2:] == [1]  # from the last read before them, not the 201 calls of the hour
    with ledger.read() as conn:
        (sums,) = group_sums(conn, Filter(), ["model"])
    assert (sums.tokens["wasted_5m_tokens"], sums.tokens["wasted_1h_tokens"]) == (4000, 2000)
    ledger.record(_family_call(204, at + timedelta(minutes=3), read=9000))
    ledger.flush()
    assert read_sizes[3:] == [4]  # from the read at 200 s: it and the three writers after it
    with ledger.read() as conn:
        (sums,) = group_sums(conn, Filter(), ["model"])
    assert (sums.tokens["wasted_5m_tokens"], sums.tokens["wasted_1h_tokens"]) == (0, 0)
    assert ledger.check_rollups().ok


def test_a_read_in_a_later_batch_moves_the_write_out_of_waste(ledger: Ledger) -> None:
    from cachewise.pricing import PriceBook

    book = PriceBook.default()
    model = next(e.id for e in book.models() if e.prices and e.prices[0].from_ <= T0.date())
    write = CallRecord.priced(
        usage=Usage(input_tokens=10, ephemeral_5m_input_tokens=4000),
        model=model,
        book=book,
        started_at=T0 + timedelta(minutes=50),
        request_id="w",
        prefix_hash="fam",
    )
    read = CallRecord.priced(
        usage=Usage(input_tokens=10, cache_read_input_tokens=4000),
        model=model,
        book=book,
        started_at=T0 + timedelta(minutes=53),  # 3 minutes on: it reads the write back
        request_id="r",
        prefix_hash="fam",
    )
    ledger.record(write)
    ledger.flush()
    with ledger.read() as conn:
        (before,) = group_sums(conn, Filter(), ["model"])
    assert before.tokens["wasted_5m_tokens"] == 4000
    ledger.record(read)
    ledger.flush()
    with ledger.read() as conn:
        (after,) = group_sums(conn, Filter(), ["model"])
        assert conn.execute(text("SELECT sum(calls) FROM call_rollups")).scalar_one() == 2
    assert after.tokens["wasted_5m_tokens"] == 0
    assert ledger.check_rollups().ok


def test_a_batch_of_many_rollup_rows_is_kept_whole(ledger: Ledger) -> None:
    """One batch whose calls fall in 556 distinct hours: SQLite's multi-row upserts of every
    statement size (500 + 50 + 5 + 1 rows) and the repeats of those keys in a second batch."""
    from cachewise.ledger.rollups import _SQLITE_UPSERT_SIZES

    assert sum(_SQLITE_UPSERT_SIZES) == 556
    records = [
        replace(record, started_at=T0 + timedelta(hours=i), request_id=f"h{i}")
        for i, record in enumerate(random_ledger(556, 5))
    ]
    for record in records:
        ledger.record(record)
    ledger.flush()
    with ledger.read() as conn:
        assert conn.execute(text("SELECT count(DISTINCT bucket) FROM call_rollups")).scalar_one() == 556
    for i, record in enumerate(records):  # the same hours again, under new request ids
        ledger.record(replace(record, request_id=f"again{i}"))
    ledger.flush()
    with ledger.read() as conn:
        assert conn.execute(text("SELECT sum(calls) FROM call_rollups")).scalar_one() == 2 * 556
    assert ledger.check_rollups().ok
    _same_as_rows(ledger, Filter(T0 + timedelta(minutes=17)))


def test_without_the_temporary_privilege_postgresql_upserts_row_by_row(
    backend: Backend, ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A role that may not create temporary tables: the batch's rollups go through the
    ``executemany`` upsert instead of ``COPY``, and nothing is lost or doubled."""
    if backend.name != "postgres":
        assert ledger.stats.database_up  # SQLite has no temporary-table path; nothing to refuse
        return
    from cachewise.ledger import rollups

    refuse = "DO $$ BEGIN RAISE EXCEPTION 'no temp' USING ERRCODE = '42501'; END $$"
    monkeypatch.setattr(rollups, "_PG_CREATE_DELTAS", refuse)
    records = [
        replace(record, started_at=T0 + timedelta(hours=i), request_id=f"p{i}")
        for i, record in enumerate(random_ledger(120, 8))
    ]
    for record in records:
        ledger.record(record)
    ledger.flush()
    assert ledger.stats.inserted == 120 and ledger.stats.spooled == 0
    with ledger.read() as conn:
        assert conn.execute(text("SELECT sum(calls) FROM call_rollups")).scalar_one() == 120
    assert ledger.check_rollups().ok


def test_refused_rows_and_repeats_leave_the_rollups_equal(ledger: Ledger) -> None:
    records = random_ledger(80, 11)
    for record in records[:40]:
        ledger.record(record)
    ledger.record(replace(records[0], request_id="too-big", usage=Usage(input_tokens=2**64)))
    for record in records:  # the first 40 again: duplicates, not doubled
        ledger.record(record)
    ledger.flush()
    assert ledger.quarantine_count() == 1
    assert ledger.check_rollups().ok
    _same_as_rows(ledger, Filter(T0 + timedelta(minutes=17)))


def test_reprices_change_no_rollup(ledger: Ledger, table_files: Any) -> None:
    records = random_ledger(60, 4)
    for record in records:
        ledger.record(record)
    ledger.flush()
    table, overlay = table_files
    from cachewise.pricing import PriceBook

    ledger.reprice(PriceBook.load(overlay, base=table), store=True)
    with ledger.read() as conn:
        assert conn.execute(text("SELECT count(*) FROM reprices")).scalar_one() == 60
    assert ledger.check_rollups().ok
    _same_as_rows(ledger, Filter(T0 + timedelta(minutes=29)))


def test_tampered_rollups_are_found_and_rebuilt(backend: Backend, ledger: Ledger) -> None:
    records = random_ledger(120, 8)
    for record in records:
        ledger.record(record)
    ledger.flush()
    flt = Filter(T0 + timedelta(minutes=7))
    with ledger.read() as conn:
        good = _sorted(group_sums(conn, flt, ["model", "tag:feature"]))
    with ledger._store.write() as conn:
        conn.execute(text("UPDATE call_rollups SET cost_total_units_lo = cost_total_units_lo + 1"))
        conn.execute(text("DELETE FROM call_rollups WHERE bucket = (SELECT max(bucket) FROM call_rollups)"))
    found = ledger.check_rollups()
    assert not found.ok and found.differ and found.missing
    with ledger.read() as conn:
        assert _sorted(group_sums(conn, flt, ["model", "tag:feature"])) != good
    runner = CliRunner()
    checked = runner.invoke(cli, ["ledger", "--db", backend.url, "rollups", "check"])
    assert checked.exit_code == 1, checked.output
    assert "rollups differ from the rows" in checked.output
    rebuilt = runner.invoke(cli, ["ledger", "--db", backend.url, "rollups", "rebuild"])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "rebuilt" in rebuilt.output
    assert ledger.check_rollups().ok
    with ledger.read() as conn:
        assert _sorted(group_sums(conn, flt, ["model", "tag:feature"])) == good
    again = runner.invoke(cli, ["ledger", "--db", backend.url, "rollups", "check"])
    assert again.exit_code == 0 and "rollups match the rows" in again.output


def test_the_report_is_the_same_from_rollups_and_from_rows(ledger: Ledger) -> None:
    records = random_ledger(200, 21)
    _record_shuffled(ledger, records, random.Random(2))
    since, until = T0 + timedelta(minutes=41, seconds=9), T0 + timedelta(hours=40, minutes=3)
    source = LedgerSource(ledger, Filter(since, until))
    report = build_report(source, ["model", "tag:feature"], calls=5)

    class RowSource(LedgerSource):
        def _groups(self, by: Any) -> Any:
            from cachewise.reports.frames import group_keys

            keys = group_keys(by)
            fine = list(dict.fromkeys([*keys, "model", "cost_error"]))
            with self._read() as conn:
                return fine, group_sums(conn, self.filter, fine, use_rollups=False)

    rows = build_report(RowSource(ledger, Filter(since, until)), ["model", "tag:feature"], calls=5)
    assert render(report, "json") == render(rows, "json")
    assert report.totals == rows.totals


@pytest.mark.postgres
def test_two_writers_on_one_postgresql_ledger_keep_the_rollups_equal(tmp_path: Any) -> None:
    records = random_ledger(300, 17)
    with pg_schema("cw_rollups") as (url, _schema):
        first = Ledger(url, spool_dir=tmp_path / "a", batch_size=7, flush_interval=0.01)
        second = Ledger(url, spool_dir=tmp_path / "b", batch_size=11, flush_interval=0.01)

        def write(ledger: Ledger, part: Sequence[CallRecord]) -> None:
            for record in part:
                ledger.record(record)
            ledger.flush()

        threads = [
            threading.Thread(target=write, args=(first, records[0::2])),
            threading.Thread(target=write, args=(second, records[1::2])),
        ]
        try:
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert len(first.calls()) == 300
            assert first.check_rollups().ok
            _same_as_rows(first, Filter(T0 + timedelta(minutes=3)))
        finally:
            first.close()
            second.close()


@settings(max_examples=300, deadline=None)
@given(
    moment=st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-7, minutes=-30))])),
)
def test_the_hour_cut_from_the_time_text_is_the_hour_of_the_time(moment: datetime) -> None:
    """The write path takes a SQLite call's hour from its ``started_at`` text; it must be the
    bucket the parsed time gives, whatever the offset it was recorded in."""
    written = format_utc(moment)
    assert rollups._text_bucket(written) == rollups._driver_bucket(moment, True)
    assert rollups._text_bucket(written) == format_utc(rollups.floor_hour(moment))


def test_negative_money_keeps_its_exact_units_in_the_two_parts(ledger: Ledger) -> None:
    """A write that nobody read back saves a negative amount. SQLite splits the units in SQL
    (truncating ``/``, signed ``%``), PostgreSQL with ``divmod``; either way the two parts of the
    rollup row add up to the exact sum of the calls' units, and each part stays within bounds."""
    from decimal import Decimal

    from cachewise.ledger.record import CostBreakdown

    savings = [Decimal("-1.234567890123"), Decimal("-0.000000000001"), Decimal("-987654.321")]
    for i, saved in enumerate(savings):
        cost = CostBreakdown(
            *(Decimal("0.5"),) * 7,
            cost_total=Decimal("3.5"),
            cost_no_cache=Decimal("3.5") + saved,
            savings=saved,
        )
        ledger.record(
            make_record(
                i,
                cost=cost,
                usage=Usage(input_tokens=100, output_tokens=10),
                started_at=T0 + timedelta(minutes=i),
            )
        )
    ledger.flush()
    with ledger.read() as conn:
        hi, lo = conn.execute(
            text("SELECT savings_units_hi, savings_units_lo FROM call_rollups WHERE calls > 0")
        ).one()
    assert hi * 10**9 + lo == sum(int(saved.scaleb(12)) for saved in savings)
    assert abs(lo) < 3 * 10**9
    assert ledger.check_rollups().ok
    assert ledger.totals().savings == sum(savings)
