"""The proxy over real sockets: SDK → cachewise proxy → emulator, and an enveloping upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cachewise.emulator import EmulatorServer
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.proxy_planner import upstream_planner
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import Ledger
from tests.fixtures.servers import serve

from .conftest import API_KEY

BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 24,
    "system": "A long and stable operating manual. " * 500,
    "messages": [{"role": "user", "content": "How do I reset my password?"}],
}


@pytest.fixture
def proxied(emulator: EmulatorServer, ledger: Ledger) -> Iterator[str]:
    tracker = CallTracker(
        ledger=ledger, planner=upstream_planner(emulator.base_url), clock=emulator.emulator.now
    )
    yield from serve(create_proxy_app(tracker, upstream=emulator.base_url))


def test_sdk_through_the_proxy_plans_and_records(
    proxied: str, emulator: EmulatorServer, ledger: Ledger
) -> None:
    with anthropic.Anthropic(api_key=API_KEY, base_url=proxied, max_retries=0) as client:
        for _ in range(3):
            client.messages.create(**BODY)
            emulator.emulator.advance(30)
        with client.messages.stream(**BODY) as stream:
            chunks = [e for e in stream if e.type == "content_block_delta"]
        assert chunks
        assert client.models.retrieve("claude-sonnet-4-6").id == "claude-sonnet-4-6"
    ledger.flush()
    rows = ledger.calls()
    assert len(rows) == 4
    assert all(r.planned for r in rows)
    assert sum(r.usage.cache_read_input_tokens for r in rows) > 0  # the proxy placed a breakpoint
    bill = {b["request_id"]: Decimal(b["cost_total"]) for b in emulator.emulator.bill()}
    assert {r.request_id: r.cost.cost_total for r in rows if r.cost} == bill
    for row in rows:  # the key passed through and was never stored
        assert API_KEY not in json.dumps(row.as_dict(), default=str) if hasattr(row, "as_dict") else True
    assert API_KEY.encode() not in Path(str(ledger.label).removeprefix("sqlite:///")).read_bytes()


def test_enveloped_upstream_is_unwrapped_and_recorded(ledger: Ledger) -> None:
    message = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": [{"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 3,
            "cache_read_input_tokens": 2000,
            "cache_creation_input_tokens": 0,
        },
    }

    def reseller(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json={"code": 200, "data": message}, headers={"request-id": "req_env_1"})

    tracker = CallTracker(ledger=ledger)
    app = create_proxy_app(
        tracker, upstream="http://reseller.invalid", transport=httpx2.MockTransport(reseller)
    )
    for base_url in serve(app):
        with anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0) as client:
            reply = client.messages.create(
                model="claude-haiku-4-5", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
            )
        assert reply.usage.cache_read_input_tokens == 2000
    ledger.flush()
    (row,) = ledger.calls()
    assert row.request_id == "req_env_1"
    assert row.usage.cache_read_input_tokens == 2000


def test_admit_refuses_before_sending_and_passes_the_rest(ledger: Ledger) -> None:
    sent: list[bytes] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        sent.append(request.content)
        usage = {"input_tokens": 5, "output_tokens": 1}
        message = {"id": "msg_a", "type": "message", "role": "assistant", "model": "claude-haiku-4-5"}
        return httpx2.Response(200, json={**message, "content": [], "usage": usage})

    seen: list[tuple[str, str]] = []

    async def admit(request: Request, body: Any) -> Response | None:
        seen.append((request.headers.get("x-team", ""), body.get("model")))
        if request.headers.get("x-team") == "over":
            return JSONResponse({"type": "error", "error": {"type": "rate_limit_error"}}, 429)
        return None

    app = create_proxy_app(
        CallTracker(ledger=ledger),
        upstream="http://api.invalid",
        transport=httpx2.MockTransport(upstream),
        admit=admit,
    )
    body = {"model": "claude-haiku-4-5", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    for base_url in serve(app):
        refused = httpx2.post(f"{base_url}/v1/messages", json=body, headers={"x-team": "over"})
        passed = httpx2.post(f"{base_url}/v1/messages", json=body, headers={"x-team": "ok"})
    assert refused.status_code == 429
    assert passed.status_code == 200
    assert len(sent) == 1  # the refused call never reached the upstream
    assert seen == [("over", "claude-haiku-4-5"), ("ok", "claude-haiku-4-5")]
    ledger.flush()
    assert [r.request_id for r in ledger.calls()] == ["msg_a"]


def test_every_path_and_method_is_forwarded_with_its_query_but_options_is_refused(ledger: Ledger) -> None:
    sent: list[tuple[str, str]] = []

    def upstream(request: httpx2.Request) -> httpx2.Response:
        sent.append((request.method, str(request.url)))
        return httpx2.Response(200, json={"ok": True})

    app = create_proxy_app(
        CallTracker(ledger=ledger), upstream="http://api.invalid", transport=httpx2.MockTransport(upstream)
    )
    for base_url in serve(app):
        for method in ("GET", "HEAD", "DELETE", "PUT", "PATCH"):
            reply = httpx2.request(method, f"{base_url}/v1/files/f_1?limit=2&after=x%20y")
            assert reply.status_code == 200
        refused = httpx2.options(f"{base_url}/v1/messages")
    assert refused.status_code == 405
    assert "POST" in refused.headers["allow"]
    assert sent == [
        (method, "http://api.invalid/v1/files/f_1?limit=2&after=x%20y")
        for method in ("GET", "HEAD", "DELETE", "PUT", "PATCH")
    ]
