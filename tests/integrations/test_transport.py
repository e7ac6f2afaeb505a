"""The transports plan and record like the middleware, for httpx2 (the SDK) and httpx."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import httpx2

from cachewise.emulator import EmulatorServer
from cachewise.integrations.tracker import CallTracker
from cachewise.integrations.transport import (
    AsyncHttpxCachewiseTransport,
    CachewiseTransport,
    HttpxCachewiseTransport,
)
from cachewise.ledger import Ledger

from .conftest import API_KEY

BODY = {
    "model": "claude-haiku-4-5",
    "max_tokens": 16,
    "system": [{"type": "text", "text": "Rules. " * 1500, "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hi"}],
}


def test_httpx2_transport_under_the_sdk(emulator: EmulatorServer, ledger: Ledger) -> None:
    tracker = CallTracker(ledger=ledger)
    with anthropic.Anthropic(
        api_key=API_KEY,
        base_url=emulator.base_url,
        http_client=httpx2.Client(transport=CachewiseTransport(tracker)),
    ) as client:
        client.messages.create(**BODY)  # type: ignore[call-overload]
        with client.messages.stream(**BODY) as stream:  # type: ignore[arg-type]
            stream.get_final_message()
    ledger.flush()
    rows = sorted(ledger.calls(), key=lambda r: r.started_at)
    assert [r.endpoint for r in rows] == ["messages", "stream"]
    bill = {b["request_id"]: Decimal(b["cost_total"]) for b in emulator.emulator.bill()}
    assert {r.request_id: r.cost.cost_total for r in rows if r.cost} == bill


def test_httpx_transport_for_other_libraries(emulator: EmulatorServer, ledger: Ledger) -> None:
    tracker = CallTracker(ledger=ledger)
    with httpx.Client(transport=HttpxCachewiseTransport(tracker), base_url=emulator.base_url) as http:
        reply = http.post("/v1/messages", json=BODY, headers={"x-api-key": API_KEY})
        assert reply.status_code == 200
        with http.stream(
            "POST", "/v1/messages", json={**BODY, "stream": True}, headers={"x-api-key": API_KEY}
        ) as streamed:
            text = b"".join(streamed.iter_bytes())
        assert b"message_stop" in text
        counted = http.post(
            "/v1/messages/count_tokens",
            json={k: v for k, v in BODY.items() if k != "max_tokens"},
            headers={"x-api-key": API_KEY},
        )
        assert json.loads(counted.content)["input_tokens"] > 0
    ledger.flush()
    assert len(ledger.calls()) == 2  # count_tokens is not a billed call


async def test_async_httpx_transport(emulator: EmulatorServer, ledger: Ledger) -> None:
    tracker = CallTracker(ledger=ledger)
    async with httpx.AsyncClient(
        transport=AsyncHttpxCachewiseTransport(tracker), base_url=emulator.base_url
    ) as h:
        reply = await h.post("/v1/messages", json=BODY, headers={"x-api-key": API_KEY})
        assert reply.json()["usage"]["cache_creation_input_tokens"] > 0
    ledger.flush()
    (row,) = ledger.calls()
    assert row.usage.cache_creation_input_tokens > 0
