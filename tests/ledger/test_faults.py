"""Writer-level fault suite: hostile records interleaved with good ones, on SQLite and PostgreSQL.

The properties, per generated run:

* every submitted record is a row or a quarantined record (``rows + quarantined == submitted``);
* every well-formed record is a row after the same ``flush()`` (a bad row never delays or loses
  a good one), and none is quarantined;
* no row reads $0 unless its usage counts zero tokens (unpriced rows have no cost, not $0).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from cachewise.ledger import CallRecord, Ledger
from cachewise.ledger.schema import TOKEN_COLUMNS, calls, quarantine
from cachewise.pricing import PriceBook
from tests.strategies import call_records

from .conftest import Backend, Outage

_runs = itertools.count()

SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _mixed(book: PriceBook) -> st.SearchStrategy[list[tuple[CallRecord, bool]]]:
    one = st.one_of(
        call_records(book).map(lambda r: (r, False)),
        call_records(book, hostile=True).map(lambda r: (r, True)),
    )
    return st.lists(one, min_size=1, max_size=25)


def _submit(led: Ledger, run: list[tuple[CallRecord, bool]]) -> tuple[str, dict[str, bool]]:
    prefix = f"run{next(_runs)}-"
    submitted: dict[str, bool] = {}
    for i, (record, hostile) in enumerate(run):
        request_id = f"{prefix}{i}-{record.request_id}"
        submitted[request_id] = hostile
        led.record(replace(record, request_id=request_id))
    return prefix, submitted


def _check(led: Ledger, backend: Backend, prefix: str, submitted: dict[str, bool]) -> None:
    with led._store.read() as conn:
        rows = conn.execute(
            select(calls.c.request_id, calls.c.cost_total, calls.c.cost_error, *calls.c[TOKEN_COLUMNS]).where(
                calls.c.request_id.startswith(prefix, autoescape=True)
            )
        ).all()
        held = conn.execute(
            select(quarantine.c.request_id).where(quarantine.c.request_id.startswith(prefix, autoescape=True))
        ).all()
    assert len(rows) + len(held) == len(submitted)
    stored = {row.request_id for row in rows}
    good = {rid for rid, hostile in submitted.items() if not hostile}
    assert good <= stored, f"good rows missing: {sorted(good - stored)[:3]}"
    assert {q.request_id for q in held}.isdisjoint(good)
    for row in rows:
        tokens = sum(getattr(row, name) for name in TOKEN_COLUMNS)
        if row.cost_total is not None and Decimal(row.cost_total) == 0:
            assert tokens == 0, f"{row.request_id} reads $0 with {tokens} tokens"
        if row.cost_total is None:
            assert row.cost_error, f"{row.request_id} has neither a cost nor a cost_error"


@SETTINGS
@given(data=st.data())
def test_hostile_records_never_cost_a_good_row(
    data: st.DataObject, open_ledger: Callable[..., Ledger], backend: Backend, book: PriceBook
) -> None:
    led = _ledger(open_ledger)
    run = data.draw(_mixed(book))
    prefix, submitted = _submit(led, run)
    assert led.flush(timeout=60) == len(submitted)
    _check(led, backend, prefix, submitted)


_opened: dict[int, Ledger] = {}


def _ledger(open_ledger: Callable[..., Ledger]) -> Ledger:
    """One ledger per test (hypothesis calls the body many times with the same fixtures)."""
    key = id(open_ledger)
    if key not in _opened or _opened[key]._closed:
        _opened.clear()
        _opened[key] = open_ledger(batch_size=7)  # small batches: refusals split many of them
    return _opened[key]


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_hostile_records_that_wait_out_an_outage_never_cost_a_good_row(
    data: st.DataObject,
    open_ledger: Callable[..., Ledger],
    outage: Outage,
    backend: Backend,
    book: PriceBook,
) -> None:
    key = id(outage)
    if key not in _opened:
        _opened.clear()
        _opened[key] = open_ledger(outage.url, batch_size=7, busy_timeout=0.1, retry_interval=0.1)
    led = _opened[key]
    run = data.draw(_mixed(book))
    outage.down()
    try:
        prefix, submitted = _submit(led, run)
        assert led.flush(timeout=60) == len(submitted)
    finally:
        outage.up()
    led.replay()
    _check(led, backend, prefix, submitted)


@pytest.fixture(autouse=True)
def _forget_ledgers() -> None:
    _opened.clear()
