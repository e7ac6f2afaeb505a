"""Wrapped official SDK against the emulator over a socket: ledger rows equal the emulator's bill."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger

from .conftest import API_KEY

SYSTEM = [{"type": "text", "text": "You are a patient tutor. " * 400, "cache_control": {"type": "ephemeral"}}]
MODEL = "claude-sonnet-4-6"


def _kwargs(question: str) -> dict[str, Any]:
    return {
        "model": MODEL,
        "max_tokens": 64,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": question}],
    }


_open: list[anthropic.Anthropic] = []


def _client(server: EmulatorServer) -> anthropic.Anthropic:
    client = anthropic.Anthropic(api_key=API_KEY, base_url=server.base_url, max_retries=0)
    _open.append(client)
    return client


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while _open:
        _open.pop().close()


def _compare(ledger: Ledger, server: EmulatorServer) -> None:
    ledger.flush()
    bill = {row["request_id"]: row for row in server.emulator.bill()}
    rows = {r.request_id: r for r in ledger.calls() if r.status != "error"}
    assert set(rows) == set(bill)
    for request_id, row in rows.items():
        billed = bill[request_id]
        usage = billed["usage"]
        assert row.usage.input_tokens == usage["input_tokens"]
        assert row.usage.cache_read_input_tokens == usage["cache_read_input_tokens"]
        assert row.usage.cache_creation_input_tokens == usage["cache_creation_input_tokens"]
        assert row.usage.output_tokens == usage["output_tokens"]
        assert row.cost is not None
        assert row.cost.cost_total == Decimal(billed["cost_total"])


def test_sync_create_and_both_streaming_styles(emulator: EmulatorServer, ledger: Ledger) -> None:
    client = cachewise.wrap(_client(emulator), ledger=ledger, planner=False)
    first = client.messages.create(**_kwargs("What is a prime?"))
    assert first.usage.cache_creation_input_tokens
    with client.messages.stream(**_kwargs("And a composite?")) as stream:
        final = stream.get_final_message()
    assert final.usage.cache_read_input_tokens
    events = list(client.messages.create(**_kwargs("Twin primes?"), stream=True))
    assert events[-1].type == "message_stop"
    raw = client.messages.with_raw_response.create(**_kwargs("Goldbach?"))
    assert raw.headers["request-id"]
    assert raw.parse().content
    _compare(ledger, emulator)
    stream_rows = [r for r in ledger.calls() if r.endpoint == "stream"]
    assert len(stream_rows) == 2
    assert all(r.ttft_ms is not None and not r.incomplete for r in stream_rows)


async def test_async_client(emulator: EmulatorServer, ledger: Ledger) -> None:
    base = anthropic.AsyncAnthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0)
    client = cachewise.wrap(base, ledger=ledger, planner=False)
    await client.messages.create(**_kwargs("one"))
    async with client.messages.stream(**_kwargs("two")) as stream:
        await stream.get_final_message()
    stream_events = await client.messages.create(**_kwargs("three"), stream=True)
    async for _ in stream_events:
        pass
    await base.close()
    _compare(ledger, emulator)
    assert len(ledger.calls()) == 3


def test_abandoned_stream_is_recorded_incomplete(emulator: EmulatorServer, ledger: Ledger) -> None:
    client = cachewise.wrap(_client(emulator), ledger=ledger, planner=False)
    stream = client.messages.create(**{**_kwargs("long answer"), "max_tokens": 400}, stream=True)
    for event in stream:
        if event.type == "content_block_delta":
            break
    stream.close()
    ledger.flush()
    (row,) = ledger.calls()
    assert row.incomplete
    assert row.usage.input_tokens + row.usage.cache_creation_input_tokens > 0


def test_count_tokens_and_models_pass_through(emulator: EmulatorServer, ledger: Ledger) -> None:
    client = cachewise.wrap(_client(emulator), ledger=ledger, planner=False)
    counted = client.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert counted.input_tokens > 0
    assert client.models.retrieve(MODEL).id == MODEL
    ledger.flush()
    assert ledger.calls() == []


def test_tags_reach_the_ledger(emulator: EmulatorServer, ledger: Ledger) -> None:
    client = cachewise.wrap(_client(emulator), ledger=ledger, planner=False, tags={"app": "tutor"})
    with cachewise.tags(feature="search"):
        client.messages.create(**_kwargs("tagged"))
    ledger.flush()
    (row,) = ledger.calls()
    assert dict(row.tags) == {"app": "tutor", "feature": "search"}


def test_unsupported_client_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="cannot wrap object"):
        cachewise.wrap(object())  # type: ignore[type-var]
