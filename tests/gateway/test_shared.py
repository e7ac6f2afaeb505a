"""Budgets shared by several gateway processes on one PostgreSQL ledger: leases, not per-process guesses.

Two :class:`GatewayBudgets` on two :class:`Ledger` connections to one schema are two workers (each
with its own holder name); their calls are held in flight (no record arrives), the case where
per-process estimates let N workers overshoot a budget by N times what is in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from starlette.requests import Request

from cachewise.emulator import EmulatorServer
from cachewise.gateway import GatewayBudgets
from cachewise.ledger import CallRecord, Ledger
from cachewise.usage import Usage
from tests.ledger.conftest import pg_schema

from .conftest import BODY
from .test_budgets import KEY_A, budget, estimate

SCOPE = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b""}
REQUEST = Request({**SCOPE, "headers": [(b"x-api-key", KEY_A.encode())]})


@pytest.fixture
def pg_url() -> Iterator[str]:
    with pg_schema("cw_gw_lease") as (url, _):
        yield url


async def admitted(guard: GatewayBudgets) -> bool:
    """One request admitted (in its own task's context, as a request is) and left in flight."""
    return await asyncio.create_task(guard.admit(REQUEST, BODY)) is None


def guards(
    emulator: EmulatorServer, limit: Decimal, *ledgers: Ledger, **options: float
) -> list[GatewayBudgets]:
    spec = [budget(name="shared", limit=str(limit))]
    return [
        GatewayBudgets(spec, led, clock=emulator.emulator.now, refresh_seconds=3600, workers=2, **options)
        for led in ledgers
    ]


@pytest.mark.postgres
async def test_two_workers_never_promise_more_than_the_limit(emulator: EmulatorServer, pg_url: str) -> None:
    each = estimate(emulator)
    limit = each * 6 + Decimal("0.0001")
    with Ledger(pg_url) as one, Ledger(pg_url) as two:
        a, b = guards(emulator, limit, one, two)
        results = [await admitted(g) for _ in range(12) for g in (a, b)]  # interleaved, all in flight
        a_count, b_count = sum(results[0::2]), sum(results[1::2])
    assert (a_count + b_count) * each <= limit  # no overshoot across the two workers
    assert a_count + b_count == 6  # and the whole limit is usable: the last call that fits is let in
    assert a_count >= 1 and b_count >= 1


async def test_separate_views_would_overshoot(emulator: EmulatorServer, tmp_path: Path) -> None:
    """The same traffic on two ledgers that share nothing (each worker alone with its estimates,
    the model leases replace): together they admit twice the limit."""
    each = estimate(emulator)
    limit = each * 6 + Decimal("0.0001")
    with Ledger(tmp_path / "a.sqlite") as one, Ledger(tmp_path / "b.sqlite") as two:
        a, b = guards(emulator, limit, one, two)
        results = [await admitted(g) for _ in range(12) for g in (a, b)]
    assert sum(results) == 12 and sum(results) * each > limit


@pytest.mark.postgres
async def test_spend_recorded_by_one_worker_refuses_the_other(emulator: EmulatorServer, pg_url: str) -> None:
    """Worker a records a call (its row committed); worker b, whose share lapsed, takes a new lease
    that counts it and refuses: a worker's view is at most ``share_seconds`` old."""
    each = estimate(emulator)
    limit = each * 2 + Decimal("0.0001")
    with Ledger(pg_url) as one, Ledger(pg_url) as two:
        a, b = guards(emulator, limit, one, two, share_seconds=0.5)
        assert await admitted(b)  # b holds one estimate in flight
        assert await admitted(a)
        record = CallRecord.priced(
            usage=Usage(input_tokens=20_000, output_tokens=10),  # less than its estimate, as always
            model="claude-sonnet-4-6",
            started_at=emulator.emulator.now(),
            request_id="req_a_0",
            tags={},
        )
        assert record.cost is not None and Decimal(0) < record.cost.cost_total < each
        one.record(record)
        one.flush()
        a.add(record)
        time.sleep(0.6)  # both shares lapse: b's next call takes a new lease, which reads a's row
        refused = await asyncio.create_task(b.admit(REQUEST, BODY))
        assert refused is not None and refused.status_code == 429
        assert b"budget 'shared'" in refused.body
