"""Budgets at the gateway: refused before sending (429, the budget named), per key, tag and model;
spend from the ledger and from calls not yet flushed; fail closed when the ledger cannot be read."""

from __future__ import annotations

import asyncio
import contextvars
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import pytest
from starlette.requests import Request

from cachewise.budget import BudgetSpec, estimate_cost
from cachewise.budget.config import KEY_TAG, key_id
from cachewise.emulator import EmulatorServer
from cachewise.gateway import GatewayBudgets
from cachewise.ledger import CallRecord, Ledger
from cachewise.pricing import PriceBook
from cachewise.usage import Usage

from .conftest import BODY, Gateway

KEY_A = "sk-ant-gateway-team-a"
KEY_B = "sk-ant-gateway-team-b"


def client(base_url: str, key: str = KEY_A, tags: str | None = None) -> anthropic.Anthropic:
    headers = {"x-cachewise-tags": tags} if tags is not None else None
    return anthropic.Anthropic(api_key=key, base_url=base_url, max_retries=0, default_headers=headers)


def budget(**values: Any) -> BudgetSpec:
    return BudgetSpec.model_validate({"window": "day", **values})


def estimate(emulator: EmulatorServer, body: dict[str, Any] = BODY) -> Decimal:
    """What the gateway estimates for ``body`` (planned: priced at the 1h write rate)."""
    marked = {**body, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    return estimate_cost(marked, body["model"], PriceBook.default(), emulator.emulator.now())


def refused(base_url: str, **kwargs: Any) -> anthropic.RateLimitError:
    with client(base_url, **kwargs) as c, pytest.raises(anthropic.RateLimitError) as caught:
        c.messages.create(**BODY)
    return caught.value


def message_of(error: anthropic.APIStatusError) -> str:
    return str(error.body["error"]["message"])  # type: ignore[index]


def test_a_request_under_every_budget_passes_and_is_tagged(
    gateway: Gateway, emulator: EmulatorServer, ledger: Ledger
) -> None:
    base = gateway(
        [
            budget(name="key-a", api_key=f"team-a:{key_id(KEY_A)}", limit="5"),
            budget(name="search", tags={"feature": "search"}, limit="5"),
            budget(name="sonnet", model="claude-sonnet-4-6", limit="5"),
        ]
    )
    with client(base, tags="feature=search, team=a") as c:
        reply = c.messages.create(**BODY)
    assert reply.usage.output_tokens > 0
    ledger.flush()
    (row,) = ledger.calls()
    assert row.tags == {"feature": "search", "team": "a", KEY_TAG: key_id(KEY_A)}
    assert len(emulator.emulator.bill()) == 1


def test_key_budget_refuses_that_key_only(gateway: Gateway, emulator: EmulatorServer) -> None:
    base = gateway([budget(name="team-a-daily", api_key=f"team-a:{key_id(KEY_A)}", limit="0.01")])
    error = refused(base, key=KEY_A)
    assert error.status_code == 429
    assert error.body == {
        "type": "error",
        "error": {"type": "rate_limit_error", "message": error.body["error"]["message"]},  # type: ignore[index]
        "request_id": error.request_id,
    }
    message = error.body["error"]["message"]  # type: ignore[index]
    assert "budget 'team-a-daily'" in message and "key=team-a" in message
    assert error.response.headers["x-should-retry"] == "false"
    assert emulator.emulator.bill() == []  # refused before it was sent
    with client(base, key=KEY_B) as c:
        c.messages.create(**BODY)
    assert len(emulator.emulator.bill()) == 1


def test_tag_budget_refuses_calls_carrying_the_tag(gateway: Gateway, emulator: EmulatorServer) -> None:
    base = gateway([budget(name="search-feature", tags={"feature": "search"}, limit="0.01")])
    error = refused(base, tags="feature=search")
    message = error.body["error"]["message"]  # type: ignore[index]
    assert "budget 'search-feature'" in message and "tag:feature=search" in message
    with client(base, tags="feature=chat") as c:
        c.messages.create(**BODY)
    assert len(emulator.emulator.bill()) == 1


def test_model_budget_refuses_that_model_only(gateway: Gateway, emulator: EmulatorServer) -> None:
    base = gateway([budget(name="sonnet-only", model="claude-sonnet-4-6", limit="0.01")])
    assert "budget 'sonnet-only'" in message_of(refused(base))
    with client(base) as c:
        c.messages.create(**{**BODY, "model": "claude-haiku-4-5"})
    assert [b["model"] for b in emulator.emulator.bill()] == ["claude-haiku-4-5-20251001"]


def test_spend_not_yet_flushed_counts(gateway: Gateway, emulator: EmulatorServer, ledger: Ledger) -> None:
    """One call fits, the second does not: its spend is known from the record, before any flush."""
    limit = estimate(emulator) + Decimal("0.001")
    base = gateway([budget(name="tight", limit=str(limit))], refresh_seconds=3600)
    with client(base) as c:
        c.messages.create(**BODY)
    assert emulator.emulator.bill_total() > Decimal("0.001")
    assert "budget 'tight'" in message_of(refused(base))
    assert len(emulator.emulator.bill()) == 1


def test_spend_in_the_ledger_counts_across_gateways(
    gateway: Gateway, emulator: EmulatorServer, ledger: Ledger
) -> None:
    """A second gateway on the same ledger reads the first one's spend (SQL sums)."""
    limit = estimate(emulator) + Decimal("0.001")
    with client(gateway([budget(name="shared", limit=str(limit))])) as c:
        c.messages.create(**BODY)
    ledger.flush()
    other = gateway([budget(name="shared", limit=str(limit))])
    assert "budget 'shared'" in message_of(refused(other))
    assert len(emulator.emulator.bill()) == 1


def test_budgets_not_for_the_gateway_are_skipped(
    gateway: Gateway, emulator: EmulatorServer, ledger: Ledger
) -> None:
    others = [budget(name="ci-run", window="run", limit="0"), budget(name="health", min_hit_ratio=0.9)]
    assert GatewayBudgets(others, ledger).skipped == ["ci-run", "health"]
    base = gateway(others)
    with client(base) as c:
        c.messages.create(**BODY)
    assert len(emulator.emulator.bill()) == 1


def test_an_unreadable_ledger_fails_closed(
    gateway: Gateway, emulator: EmulatorServer, tmp_path: Path
) -> None:
    down = Ledger("postgresql+psycopg://cachewise@127.0.0.1:1/test", spool_dir=tmp_path / "down-spool")
    try:
        base = gateway([budget(name="guarded", limit="100")], on=down)
        with client(base) as c, pytest.raises(anthropic.APIStatusError) as caught:
            c.messages.create(**BODY)
    finally:
        down.close(timeout=5)
    assert caught.value.status_code == 503
    assert caught.value.body["error"]["type"] == "api_error"  # type: ignore[index]
    message = caught.value.body["error"]["message"]  # type: ignore[index]
    assert "budget 'guarded' cannot be enforced" in message and "ledger cannot be read" in message
    assert emulator.emulator.bill() == []


def test_a_bad_tags_header_is_refused_naming_it(gateway: Gateway, emulator: EmulatorServer) -> None:
    base = gateway([budget(name="any", limit="5")])
    for header in ("feature", f"{KEY_TAG}=0123456789abcdef"):
        with client(base, tags=header) as c, pytest.raises(anthropic.BadRequestError) as caught:
            c.messages.create(**BODY)
        assert "x-cachewise-tags" in str(caught.value)
    assert emulator.emulator.bill() == []


def test_the_key_is_never_stored(gateway: Gateway, ledger: Ledger, tmp_path: Path) -> None:
    base = gateway([budget(name="key-a", api_key=f"team-a:{key_id(KEY_A)}", limit="5")])
    with client(base, tags="team=a") as c:
        c.messages.create(**BODY)
        with c.messages.stream(**BODY) as stream:
            stream.until_done()
    ledger.flush()
    assert len(ledger.calls()) == 2
    stored = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert KEY_A.encode() not in stored
    assert key_id(KEY_A).encode() in stored  # its id is what the rows carry


async def test_requests_in_flight_hold_their_estimate(emulator: EmulatorServer, ledger: Ledger) -> None:
    """Two concurrent requests that fit one at a time do not both pass; the record frees the estimate."""
    limit = estimate(emulator) * 2 - Decimal("0.0001")
    guard = GatewayBudgets([budget(name="burst", limit=str(limit))], ledger, clock=emulator.emulator.now)
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b""}
    request = Request({**scope, "headers": [(b"x-api-key", KEY_A.encode())]})

    async def admitted() -> tuple[bool, contextvars.Context]:
        refused = await guard.admit(request, BODY)
        return refused is None, contextvars.copy_context()

    ok_first, first = await asyncio.create_task(admitted())
    ok_second, _ = await asyncio.create_task(admitted())
    assert ok_first and not ok_second  # the first is still in flight: its estimate is held
    record = CallRecord.priced(
        usage=Usage(input_tokens=100, output_tokens=10),
        model="claude-sonnet-4-6",
        started_at=emulator.emulator.now(),
        request_id="req_burst_1",
        tags={},
    )
    first.run(guard.add, record)  # its record arrives (in its own request's context)
    ok_third, _ = await asyncio.create_task(admitted())
    assert ok_third  # the small actual cost, not the estimate, now counts
    assert record.cost is not None and record.cost.cost_total < estimate(emulator) / 100


def test_a_finished_call_frees_its_reservation(gateway: Gateway, emulator: EmulatorServer) -> None:
    """Through the proxy, JSON and streamed: each record frees its request's estimate (else the
    second call would be refused: two estimates do not fit)."""
    limit = estimate(emulator) * 2 - Decimal("0.0001")
    base = gateway([budget(name="sequential", limit=str(limit))], refresh_seconds=3600)
    with client(base) as c:
        c.messages.create(**BODY)
        with c.messages.stream(**BODY) as stream:
            stream.until_done()
        c.messages.create(**BODY)
    assert len(emulator.emulator.bill()) == 3


def batch_of(n: int) -> list[dict[str, Any]]:
    params = {k: BODY[k] for k in ("model", "max_tokens", "system", "messages")}
    return [{"custom_id": f"req-{i}", "params": params} for i in range(n)]


def batch_estimate(emulator: EmulatorServer, n: int) -> Decimal:
    marked = {**BODY, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
    one = estimate_cost(marked, BODY["model"], PriceBook.default(), emulator.emulator.now(), batch=True)
    return one * n


def test_a_batch_is_admitted_at_batch_rates(gateway: Gateway, emulator: EmulatorServer) -> None:
    """Four requests at the batch rates (half price) fit where two requests at the full rates would
    not; five do not fit, and nothing is sent."""
    assert batch_estimate(emulator, 4) == estimate(emulator) * 2
    limit = batch_estimate(emulator, 4) + Decimal("0.0001")
    base = gateway([budget(name="batches", limit=str(limit))], refresh_seconds=3600)
    with client(base) as c, pytest.raises(anthropic.RateLimitError) as caught:
        c.messages.batches.create(requests=batch_of(5))  # type: ignore[arg-type]
    assert "budget 'batches'" in message_of(caught.value)
    assert "may cost up to" in message_of(caught.value)
    with client(base) as c:
        created = c.messages.batches.create(requests=batch_of(4))  # type: ignore[arg-type]
        assert created.id
        # the batch's estimate is held (its results are not read yet): one more call does not fit
        assert "budget 'batches'" in message_of(refused(base))
        emulator.emulator.advance(3600)  # the batch ends
        results = list(c.messages.batches.results(created.id))  # read through the gateway
        assert len(results) == 4
        # its results are recorded at their (batch) cost: the held estimate is freed
        c.messages.create(**{**BODY, "max_tokens": 1})
    bill = emulator.emulator.bill()
    assert len(bill) == 5  # the four of the batch and the last call; nothing refused went upstream


def test_a_failed_batch_creation_frees_its_estimate(gateway: Gateway, emulator: EmulatorServer) -> None:
    """The batch (two requests at half price: one estimate) fits; held, the call after would not."""
    limit = estimate(emulator) * Decimal("1.5")
    base = gateway([budget(name="batches", limit=str(limit))], refresh_seconds=3600)
    bad = batch_of(2)
    bad[1]["custom_id"] = bad[0]["custom_id"]  # duplicate custom ids: the API refuses the batch
    with client(base) as c:
        with pytest.raises(anthropic.BadRequestError):
            c.messages.batches.create(requests=bad)  # type: ignore[arg-type]
        c.messages.create(**BODY)  # the refused batch holds nothing
    assert len(emulator.emulator.bill()) == 1


def test_count_tokens_passes_a_spent_budget_but_not_a_bad_tags_header(
    gateway: Gateway, emulator: EmulatorServer
) -> None:
    base = gateway([budget(name="spent", api_key=f"team-a:{key_id(KEY_A)}", limit="0")])
    count = {k: BODY[k] for k in ("model", "system", "messages")}
    assert "budget 'spent'" in message_of(refused(base))
    with client(base) as c:
        assert c.messages.count_tokens(**count).input_tokens > 1000  # free: not admitted against budgets
    with client(base, tags="no-equals-sign") as c, pytest.raises(anthropic.BadRequestError) as caught:
        c.messages.count_tokens(**count)
    assert "x-cachewise-tags" in str(caught.value)


async def test_the_body_size_bounds_the_estimate_and_a_document_by_url_is_refused(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    """Through the proxy the body's content-length bounds its prompt tokens (no re-encoding): the
    estimate is at least the re-encoded one for the same JSON; a document by URL cannot be bounded."""
    guard = GatewayBudgets([budget(name="sized", limit="5")], ledger, clock=emulator.emulator.now)
    sent = json.dumps(BODY).encode()
    scope = {"type": "http", "method": "POST", "path": "/v1/messages", "query_string": b""}
    headers = [(b"x-api-key", KEY_A.encode()), (b"content-length", str(len(sent)).encode())]
    request = Request({**scope, "headers": headers})
    assert await asyncio.create_task(guard.admit(request, BODY)) is None
    (held,) = guard._budgets[0].reserved
    assert held.amounts[guard._budgets[0]] >= estimate(emulator)
    document = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    body = {**BODY, "messages": [{"role": "user", "content": [document]}]}
    refusal = await asyncio.create_task(guard.admit(request, body))
    assert refusal is not None and refusal.status_code == 429
    assert b"cannot bound the tokens of a document" in refusal.body
