"""Money in 10⁻¹² units: every shipped rate fits, totals are exact, step 0005 converts in place."""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal, localcontext

import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import Column, MetaData, Table, insert, text

from cachewise.errors import LedgerError, PricingError
from cachewise.ledger import MONEY_DTYPE, CallRecord, CostBreakdown, Ledger, migrations
from cachewise.ledger.schema import COST_COLUMNS, TOKEN_COLUMNS
from cachewise.ledger.schema import calls as calls_now
from cachewise.ledger.store import Store
from cachewise.ledger.units import (
    EXPONENT,
    MAX_SQLITE_SUM_USD,
    MONEY_COLUMNS,
    UNITS_COLUMNS,
    from_units,
    to_units,
)
from cachewise.pricing import Modifiers, PriceBook
from cachewise.usage import Usage

from .conftest import T0, Backend, make_record

MILLION = Decimal(1_000_000)


def _whole_units(value: Decimal) -> bool:
    return to_units(value) is not None


def _days(entry: object) -> set[object]:
    days: set[object] = set()
    for attr in ("prices", "long_context", "fast", "batch", "us_residency"):
        for period in getattr(entry, attr) or ():
            days.add(period.from_)
            until = getattr(period, "until", None)
            if until is not None:
                days.update((until - timedelta(days=1), until))
    return days


def test_every_shipped_rate_under_every_modifier_is_whole_units_per_token() -> None:
    book = PriceBook.default()
    checked = 0
    for entry in book.models():
        prompts = {0}
        prompts.update(t.above + 1 for t in entry.long_context or ())
        for period in entry.fast or ():
            prompts.update(t.above + 1 for t in period.tiers)
        for day, batch, fast, us, prompt in itertools.product(
            sorted(_days(entry)), (False, True), (False, True), (False, True), sorted(prompts)
        ):
            at = datetime.combine(day, time(12), UTC)  # type: ignore[arg-type]
            try:
                rates = book.rates(
                    entry.id, at, prompt_tokens=prompt, batch=batch, fast=fast, us_residency=us
                )
            except PricingError:
                continue
            for name in ("input", "cache_write_5m", "cache_write_1h", "cache_read", "output"):
                per_token = getattr(rates, name) / MILLION
                assert _whole_units(per_token), (entry.id, day, batch, fast, us, prompt, name, per_token)
                checked += 1
            assert _whole_units(rates.web_search_per_1k / 1000)
            assert _whole_units(rates.code_execution_per_hour)
    assert checked > 1000  # every model, period, modifier and tier was reached


def test_units_round_trip_and_refuse_what_does_not_fit() -> None:
    assert to_units(Decimal("0.0000034375")) == 3_437_500
    assert from_units(3_437_500) == Decimal("0.0000034375")
    assert to_units(Decimal("-1.5")) == -1_500_000_000_000
    assert to_units(Decimal("1E-13")) is None  # finer than a unit
    assert to_units(MAX_SQLITE_SUM_USD) == 2**63 - 1
    assert to_units(MAX_SQLITE_SUM_USD + Decimal("1E-12")) is None  # beyond 64 bits
    assert to_units(Decimal("NaN")) is None
    assert EXPONENT == 12


def random_records(count: int, seed: int) -> list[CallRecord]:
    """Priced (and some unpriced) records of every shipped model, modifier and TTL mix."""
    rng = random.Random(seed)
    book = PriceBook.default()
    entries = [e for e in book.models() if e.prices]  # a model with no price yet stays unpriced
    out: list[CallRecord] = []
    for i in range(count):
        entry = rng.choice(entries)
        first = entry.prices[0].from_
        at = datetime.combine(first, time(0), UTC) + timedelta(seconds=rng.randrange(0, 500 * 86400))
        write = rng.choice((0, 0, rng.randrange(1, 300_000)))
        one_hour = rng.choice((0, write, rng.randrange(0, write + 1)))
        usage = Usage(
            input_tokens=rng.randrange(0, 250_000),
            cache_read_input_tokens=rng.choice((0, rng.randrange(0, 400_000))),
            ephemeral_5m_input_tokens=write - one_hour,
            ephemeral_1h_input_tokens=one_hour,
            output_tokens=rng.randrange(0, 64_000),
            web_search_requests=rng.choice((0, 0, 0, rng.randrange(1, 20))),
            code_execution_hours=rng.choice((Decimal(0), Decimal(rng.randrange(0, 10_000)) / 1000)),
        )
        modifiers = Modifiers(
            batch=rng.random() < 0.3,
            speed="fast" if rng.random() < 0.2 else None,
            inference_geo="us" if rng.random() < 0.3 else None,
        )
        out.append(
            CallRecord.priced(
                usage=usage,
                model=entry.id,
                started_at=at,
                request_id=f"rnd_{seed}_{i:07d}",
                book=book,
                modifiers=modifiers,
                tags={"feature": rng.choice(("search", "chat", "code"))},
            )
        )
    return out


def _sum(records: list[CallRecord], name: str) -> Decimal:
    with localcontext(prec=200):
        return sum((getattr(r.cost, name) for r in records if r.cost is not None), Decimal(0))


def _check_totals(led: Ledger, records: list[CallRecord]) -> None:
    totals = led.totals()
    priced = [r for r in records if r.cost is not None]
    assert totals.calls == len(records)
    assert totals.priced_calls == len(priced)
    for name in COST_COLUMNS:
        assert getattr(totals, name) == _sum(records, name), name
    with localcontext(prec=200):
        hours = sum((r.usage.code_execution_hours for r in records), Decimal(0))
    assert totals.code_execution_hours == hours
    for name in TOKEN_COLUMNS:
        assert getattr(totals, name) == sum(getattr(r.usage, name) for r in records)


@pytest.mark.slow  # 100k rows written and summed: about half a minute per backend on a loaded machine
def test_totals_equal_the_per_row_decimal_sum_on_100k_random_rows(backend: Backend) -> None:
    records = random_records(100_000, seed=12)
    priced = [r for r in records if r.cost is not None]
    assert len(priced) > 50_000  # most rows are priced; the rest are honest pricing errors
    assert {r.endpoint for r in priced} >= {"batch", "messages"}
    assert {r.speed for r in priced} >= {"fast", "standard", None}
    assert any(r.inference_geo == "us" for r in priced)
    assert any(r.usage.ephemeral_1h_input_tokens and r.usage.ephemeral_5m_input_tokens for r in priced)
    store = Store(backend.url)
    store.upgrade()
    for start in range(0, len(records), 5000):
        store.insert(records[start : start + 5000])
    store.dispose()
    with Ledger(backend.url, spool_dir=backend.spool_dir, flush_on_signal=False) as led:
        with led._store.read() as conn:
            inexact = conn.execute(
                text("SELECT count(*) FROM calls WHERE code_execution_hours_units IS NULL")
            ).scalar_one()
        assert inexact == 0  # every shipped price is whole units: the SQL sums do all the work
        _check_totals(led, records)
        _check_group_sums(led, records)


def _check_group_sums(led: Ledger, records: list[CallRecord]) -> None:
    """What a report reads (one grouped scan by model and tag): every money sum of every group
    equals the per-row Decimal sum of its calls, digit for digit."""
    from cachewise.ledger import Filter
    from cachewise.ledger.aggregate import group_sums

    with led.read() as conn:
        groups = group_sums(conn, Filter(), ["model", "tag:feature", "cost_error"])
    want: dict[tuple[object, ...], list[CallRecord]] = {}
    for r in records:
        want.setdefault((r.model, r.tags.get("feature"), r.cost_error), []).append(r)
    assert {g.key for g in groups} == set(want)
    for group in groups:
        rows = want[group.key]
        assert group.calls == len(rows)
        assert group.unpriced_calls == sum(r.cost is None for r in rows)
        for name in COST_COLUMNS:
            assert group.money[name] == _sum(rows, name), (group.key, name)
        for name in TOKEN_COLUMNS:
            assert group.tokens[name] == sum(getattr(r.usage, name) for r in rows), (group.key, name)


def test_totals_on_both_backends_mix_exact_and_inexact_rows(ledger: Ledger) -> None:
    records = random_records(600, seed=3)
    fine = [make_record(i) for i in range(50)]  # 24-decimal costs: no exact units
    for record in records + fine:
        ledger.record(record)
    ledger.flush()
    with ledger._store.read() as conn:
        inexact = conn.execute(
            text("SELECT count(*) FROM calls WHERE code_execution_hours_units IS NULL")
        ).scalar_one()
    assert inexact == 50
    _check_totals(ledger, records + fine)
    assert ledger.totals(tags={"feature": "chat"}).cost_total == _sum(
        [r for r in records if r.tags.get("feature") == "chat"], "cost_total"
    )


def test_sqlite_sum_past_64_bits_is_still_exact(ledger: Ledger) -> None:
    big = Decimal("4000000.123456789012")  # three of them exceed MAX_SQLITE_SUM_USD
    records = [make_record(i, cost=CostBreakdown(*([big] * len(COST_COLUMNS)))) for i in range(3)]
    for record in records:
        ledger.record(record)
    ledger.flush()
    assert 3 * big > MAX_SQLITE_SUM_USD
    assert ledger.totals().cost_total == 3 * big


def test_frame_money_is_exact_decimal128(ledger: Ledger) -> None:
    records = random_records(300, seed=5)
    for record in records:
        ledger.record(record)
    ledger.flush()
    frame = ledger.to_frame(money="arrow")
    assert frame["cost_total"].dtype == MONEY_DTYPE
    assert frame["code_execution_hours"].dtype == MONEY_DTYPE
    assert frame["input_tokens"].dtype == "int64"
    by_id = {r.request_id: r for r in records}
    for row in frame.itertuples():
        record = by_id[row.request_id]
        if record.cost is None:
            assert pd.isna(row.cost_total)
        else:
            assert row.cost_total == record.cost.cost_total
            assert row.savings == record.cost.savings
    # Summing in arrow is exact too.
    assert pa.compute.sum(pa.array(frame["cost_total"])).as_py() == _sum(records, "cost_total")
    decimal = ledger.to_frame()  # the default: Decimal objects
    assert [None if v is None else str(v) for v in decimal["cost_total"]] == [
        None if by_id[i].cost is None else str(by_id[i].cost.cost_total)  # type: ignore[union-attr]
        for i in decimal["request_id"]
    ]


def test_iter_frames_streams_chunks_in_order(ledger: Ledger) -> None:
    records = random_records(250, seed=8)
    for record in records:
        ledger.record(record)
    ledger.flush()
    for money in ("decimal", "arrow"):
        chunks = list(ledger.iter_frames(chunk_rows=100, money=money))  # type: ignore[arg-type]
        assert [len(c) for c in chunks] == [100, 100, 50]
        joined = pd.concat(chunks, ignore_index=True)
        whole = ledger.to_frame(money=money)  # type: ignore[arg-type]
        pd.testing.assert_frame_equal(joined.drop(columns="tags"), whole.drop(columns="tags"))
    with pytest.raises(ValueError, match="chunk_rows"):
        list(ledger.iter_frames(chunk_rows=0))
    with pytest.raises(ValueError, match="money"):
        ledger.to_frame(money="float")  # type: ignore[arg-type]


def test_default_frame_reads_money_without_exact_units(ledger: Ledger) -> None:
    """A ledger that reads fine today keeps reading: the default frame never raises on money."""
    ledger.record(make_record(7))  # 24-decimal costs: no exact 10^-12 form
    ledger.flush()
    frame = ledger.to_frame()
    assert frame.loc[0, "cost_total"] == make_record(7).cost.cost_total  # type: ignore[union-attr]
    assert [len(chunk) for chunk in ledger.iter_frames()] == [1]


def test_arrow_frame_names_the_call_whose_money_has_no_exact_units(ledger: Ledger) -> None:
    ledger.record(make_record(7))
    ledger.flush()
    with pytest.raises(LedgerError, match=r"^to_frame\(money='arrow'\): call req_00000007.*money='decimal'"):
        ledger.to_frame(money="arrow")
    with pytest.raises(LedgerError, match=r"^iter_frames\(money='arrow'\): call req_00000007"):
        list(ledger.iter_frames(money="arrow"))


def test_step_0005_converts_a_populated_ledger_in_place(
    backend: Backend, open_ledger: Callable[..., Ledger]
) -> None:
    store = Store(backend.url)
    store.upgrade(target=4)
    exact = random_records(120, seed=21)
    fine = [make_record(1000 + i) for i in range(5)]
    with store.write() as conn:
        present = {c.name for c in Table("calls", MetaData(), autoload_with=conn).c}
        assert not present & set(UNITS_COLUMNS)
        typed = Table(
            "calls",
            MetaData(),
            *(Column(c.name, c.type) for c in calls_now.c if c.name in present and c.name != "id"),
        )
        rows = []
        for record in exact + fine:
            row = {k: v for k, v in record.to_row().items() if k in present}
            row["recorded_at"] = T0
            rows.append(row)
        conn.execute(insert(typed), rows)
    store.dispose()
    seen: list[tuple[str, int, int]] = []
    token = migrations.progress_callback.set(lambda *a: seen.append(a))
    try:
        led = open_ledger()
    finally:
        migrations.progress_callback.reset(token)
    assert seen and seen[-1] == ("0005_money_units", 125, 125)
    names = ", ".join(MONEY_COLUMNS)
    units = ", ".join(UNITS_COLUMNS)
    with led._store.read() as conn:
        stored = conn.execute(text(f"SELECT request_id, {names}, {units} FROM calls")).all()
    n = len(MONEY_COLUMNS)
    for row in stored:
        if row[0].startswith("req_"):
            assert all(u is None for u in row[1 + n :]), row[0]  # no exact units: all NULL
            continue
        for value, got in zip(row[1 : 1 + n], row[1 + n :], strict=True):
            if value is None:
                assert got is None
            else:
                assert got == to_units(Decimal(str(value)))
    _check_totals(led, exact + fine)
    # rows written before step 0006 have no provider: NULL, not a guess
    before = [replace(r, provider=None) for r in exact + fine]
    assert led.calls() == sorted(before, key=lambda r: (r.started_at, r.request_id))


@pytest.mark.parametrize("sqlite", [True, False])
def test_record_values_equal_the_row_through_its_dict(sqlite: bool) -> None:
    from cachewise.breakpoints import Breakpoint
    from cachewise.ledger.store import _driver_values, _Memo, call_row, format_utc, record_values

    now = datetime(2026, 5, 1, 8, 30, tzinfo=UTC)
    edge = [
        make_record(1),  # 24-decimal costs: no units
        make_record(2, priced=False, cost_error="no price; key sk-ant-api03-abcdefghijklmnop"),
        make_record(3, tags={"user": "Bearer abcdefghijklmnopqrstuvwxyz", "feature": "x"}),
        make_record(4, prompt="hello x-api-key: secret", raw_usage='{"input_tokens": 1}', error_type="E"),
        make_record(5, breakpoints=(Breakpoint(position=0, ttl="1h", tokens=2048, prefix_hash="ab"),)),
        make_record(6, cost=CostBreakdown(*([Decimal("-0.5")] * len(COST_COLUMNS)))),
    ]
    priced = next(r for r in random_records(50, seed=32) if r.rates)
    assert priced.rates is not None
    twins = [  # the same memo key (length, model, period, multiplier), different content
        replace(priced, request_id="twin-1", rates={**priced.rates, "input": "1.25"}),
        replace(priced, request_id="twin-2", rates={**priced.rates, "input": "2.50"}),
        replace(priced, request_id="twin-3", rates={**priced.rates, "uncertain": ["input"]}),
    ]
    records = [*random_records(500, seed=31), *edge, *twins, *edge, *twins]
    memo = _Memo(limit=8)  # shared across the rows as in a batch; small, so it is cleared too
    at = format_utc(now) if sqlite else now  # the store formats recorded_at once per batch
    for record in records:
        row = call_row(record, now)
        for values, tags in (record_values(record, now, sqlite), record_values(record, at, sqlite, memo)):
            assert values == tuple(_driver_values(row, sqlite)), record.request_id
            assert tags == row["tags"]
