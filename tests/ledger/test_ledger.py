"""Recording, reading, idempotency and exact money, on SQLite and PostgreSQL."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal, localcontext

import pandas as pd
import pytest

from cachewise.errors import LedgerError
from cachewise.ledger import ARROW_FRAME_DTYPES, FRAME_DTYPES, Breakpoint, CallRecord, Ledger
from cachewise.ledger.record import CostBreakdown
from cachewise.ledger.schema import COST_COLUMNS, TOKEN_COLUMNS
from cachewise.tags import tags
from cachewise.usage import Usage

from .conftest import T0, Backend, make_record


def test_record_flush_and_read_back(ledger: Ledger) -> None:
    records = [make_record(i) for i in range(25)]
    for rec in records:
        ledger.record(rec)
    assert ledger.flush() == 25
    back = ledger.calls()
    assert back == records


def test_every_field_round_trips(ledger: Ledger) -> None:
    rec = make_record(
        7,
        message_id="msg_01",
        endpoint="stream",
        status="incomplete",
        error_type="overloaded_error",
        latency_ms=812.5,
        ttft_ms=95.25,
        service_tier="standard",
        inference_geo="us",
        speed="fast",
        batch_id="msgbatch_1",
        custom_id="row-7",
        planned=True,
        breakpoints=(Breakpoint(3, "1h", 4096, "sha256:aa"), Breakpoint(9, "5m", 5120, "sha256:bb")),
        prefix_hash="sha256:bb",
        tags={"feature": "search", "user": "u1"},
        rates={"input": "3", "multiplier": "1.1"},
        usage=Usage(
            input_tokens=1,
            cache_read_input_tokens=2,
            ephemeral_5m_input_tokens=3,
            ephemeral_1h_input_tokens=4,
            output_tokens=5,
            web_search_requests=6,
            web_fetch_requests=7,
            code_execution_hours=Decimal("0.083333333333333333333333"),
            ttl_split_missing=True,
        ),
    )
    assert rec.incomplete
    ledger.record(rec)
    ledger.flush()
    (back,) = ledger.calls()
    assert back == rec


@pytest.mark.parametrize(
    "amount",
    [
        "0.000001234567890123456789012345",
        "123456789012.123456789012345678",
        "0E-28",
        "1E-30",
        "-0.0075",
        "0.0300",
    ],
)
def test_decimal_round_trip_is_exact(ledger: Ledger, amount: str) -> None:
    value = Decimal(amount)
    cost = CostBreakdown(*([value] * len(COST_COLUMNS)))
    ledger.record(make_record(1, cost=cost))
    ledger.flush()
    (back,) = ledger.calls()
    assert back.cost is not None
    for name in COST_COLUMNS:
        stored = getattr(back.cost, name)
        assert isinstance(stored, Decimal)
        assert stored == value
    frame = ledger.to_frame()
    assert frame.loc[0, "cost_total"] == value


def test_unpriced_rows_keep_null_costs_never_zero(ledger: Ledger) -> None:
    ledger.record(make_record(1, priced=False, cost_error="no model 'claude-x'"))
    ledger.record(make_record(2))
    ledger.flush()
    frame = ledger.to_frame()
    assert frame.loc[0, "cost_total"] is None
    assert frame.loc[0, "cost_error"] == "no model 'claude-x'"
    totals = ledger.totals()
    assert (totals.calls, totals.priced_calls, totals.unpriced_calls) == (2, 1, 1)
    assert totals.cost_total == make_record(2).cost.cost_total  # type: ignore[union-attr]


def test_same_request_id_is_never_counted_twice(ledger: Ledger) -> None:
    rec = make_record(1)
    ledger.record(rec)
    ledger.record(rec)  # same batch
    ledger.flush()
    ledger.record(rec)  # a later batch
    ledger.flush()
    assert len(ledger.calls()) == 1
    assert ledger.totals().cost_total == rec.cost.cost_total  # type: ignore[union-attr]
    assert ledger.stats.duplicates == 2
    assert ledger.stats.conflicts == 0


def test_different_content_under_one_id_keeps_the_first(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
) -> None:
    first = make_record(1, status="error", error_type="overloaded_error", priced=False)
    second = make_record(1)
    ledger.record(first)
    ledger.flush()
    with caplog.at_level(logging.WARNING, logger="cachewise.ledger"):
        ledger.record(second)
        ledger.flush()
    (back,) = ledger.calls()
    assert back == first
    assert ledger.stats.conflicts == 1
    assert "req_00000001 recorded again with different content" in caplog.text


def test_equal_values_in_other_spelling_are_not_a_conflict(ledger: Ledger) -> None:
    rec = make_record(1)
    assert rec.cost is not None
    respelt = replace(
        rec, cost=replace(rec.cost, cost_web_search=rec.cost.cost_web_search + Decimal("0.000"))
    )
    ledger.record(rec)
    ledger.flush()
    ledger.record(respelt)
    ledger.flush()
    assert ledger.stats.conflicts == 0


def test_totals_equal_the_exact_sum_of_rows(ledger: Ledger) -> None:
    rng = random.Random(4)
    records = []
    for i in range(400):
        digits = "".join(rng.choice("0123456789") for _ in range(27))
        amount = Decimal(f"0.{digits}").scaleb(rng.randint(-6, 3))
        cost = CostBreakdown(*([amount] * len(COST_COLUMNS)))
        records.append(make_record(i, cost=cost))
    for rec in records:
        ledger.record(rec)
    ledger.flush()
    totals = ledger.totals()
    with localcontext(prec=200):
        expected = sum((r.cost.cost_total for r in records if r.cost), Decimal(0))
    assert totals.cost_total == expected
    for name in TOKEN_COLUMNS:
        assert getattr(totals, name) == sum(getattr(r.usage, name) for r in records)
    frame = ledger.to_frame()
    with localcontext(prec=200):
        assert sum(frame["cost_total"], Decimal(0)) == expected


def test_frame_contract(ledger: Ledger) -> None:
    for i in range(5):
        ledger.record(make_record(i, tags={"feature": "search"} if i % 2 else {}))
    ledger.record(make_record(9, priced=False, cost_error="boom"))
    ledger.flush()
    frame = ledger.to_frame()
    assert list(frame.columns) == list(FRAME_DTYPES)
    for name, dtype in FRAME_DTYPES.items():
        assert frame[name].dtype == pd.Series([], dtype=dtype).dtype, name
    assert str(frame["started_at"].dtype) == "datetime64[ns, UTC]"
    assert frame.loc[0, "started_at"] == pd.Timestamp(T0)
    assert frame.loc[1, "tags"] == {"feature": "search"}
    assert frame.loc[0, "tags"] == {}
    assert frame.loc[0, "tags"] is not frame.loc[2, "tags"]
    assert isinstance(frame.loc[0, "cost_input"], Decimal)
    assert frame.loc[5, "savings"] is None


def test_empty_frame_has_the_contract_dtypes(ledger: Ledger) -> None:
    frame = ledger.to_frame()
    assert len(frame) == 0
    assert list(frame.columns) == list(FRAME_DTYPES)
    assert frame["cost_total"].dtype == object
    assert list(ledger.to_frame(money="arrow").dtypes) == list(ARROW_FRAME_DTYPES.values())
    assert str(frame["started_at"].dtype) == "datetime64[ns, UTC]"
    assert frame["input_tokens"].dtype == "int64"


def test_filters(ledger: Ledger) -> None:
    for i in range(10):
        model = "claude-test-1" if i < 6 else "claude-test-2"
        with tags(feature="search" if i % 2 else "chat", team="a"):
            ledger.record(make_record(i, model=model, started_at=T0 + timedelta(hours=i)))
    ledger.flush()
    ids = lambda recs: [r.request_id for r in recs]  # noqa: E731
    assert len(ledger.calls(since=T0 + timedelta(hours=3), until=T0 + timedelta(hours=5))) == 2
    assert len(ledger.calls(model="claude-test-2")) == 4
    assert len(ledger.calls(model=["claude-test-1", "claude-test-2"])) == 10
    assert ids(ledger.calls(tags={"feature": "search"})) == [f"req_{i:08d}" for i in (1, 3, 5, 7, 9)]
    assert len(ledger.calls(tags={"feature": "search", "team": "b"})) == 0
    assert len(ledger.to_frame(model="claude-test-2", tags={"feature": "chat"})) == 2
    assert ledger.totals(tags={"feature": "search"}).calls == 5
    assert len(ledger.calls(limit=3)) == 3


def test_record_captures_tags_where_it_is_built(ledger: Ledger) -> None:
    with tags(feature="search"), tags(user="u1"):
        rec = make_record(1)
    ledger.record(rec)
    ledger.flush()
    assert ledger.calls()[0].tags == {"feature": "search", "user": "u1"}


def test_priced_records_store_rates_and_version(ledger: Ledger, book: object) -> None:
    from cachewise.pricing import Modifiers, PriceBook

    assert isinstance(book, PriceBook)
    rec = CallRecord.priced(
        usage=Usage(input_tokens=1000, ephemeral_1h_input_tokens=2000, output_tokens=100),
        model="claude-test-1",
        started_at=T0,
        request_id="req_b",
        book=book,
        modifiers=Modifiers(batch=True),
    )
    ledger.record(rec)
    ledger.flush()
    (back,) = ledger.calls()
    assert back.endpoint == "batch"
    assert back.price_table_version == "test-1"
    assert back.rates is not None and back.rates["multiplier"] == "0.5"
    # the stored rates name the table file, never a path of the machine that priced the call
    assert back.rates["source"] and not any(sep in back.rates["source"] for sep in "/\\")
    assert back.cost is not None
    # 1000 × 3 × 0.5 + 2000 × 6 × 0.5 + 100 × 15 × 0.5, per million
    assert back.cost.cost_total == Decimal("0.00825")


def test_closed_ledger_refuses_records(open_ledger: Callable[..., Ledger]) -> None:
    led = open_ledger()
    led.close()
    with pytest.raises(LedgerError, match="is closed"):
        led.record(make_record(1))


def test_close_flushes_pending_rows(open_ledger: Callable[..., Ledger], backend: Backend) -> None:
    led = open_ledger(flush_interval=60)
    for i in range(10):
        led.record(make_record(i))
    led.close()
    again = open_ledger()
    assert len(again.calls()) == 10
