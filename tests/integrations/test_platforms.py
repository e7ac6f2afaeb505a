"""beta.messages, Vertex, count_tokens failures, and clients cachewise cannot wrap."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

import cachewise
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger

from .conftest import API_KEY

SYSTEM = "Stable instructions for every call. " * 600


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as opened:
        yield opened


def test_beta_messages_are_planned_and_recorded(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(client, ledger=ledger, clock=emulator.emulator.now)
    for turn in range(2):
        wrapped.beta.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=16,
            system=SYSTEM,
            messages=[{"role": "user", "content": f"turn {turn}"}],
        )
        emulator.emulator.advance(20)
    ledger.flush()
    rows = ledger.calls()
    assert len(rows) == 2
    assert rows[1].usage.cache_read_input_tokens > 0


def test_count_tokens_failing_never_fails_the_call(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    emulator.emulator.faults.add("api_error", count=50, endpoint="count_tokens")
    wrapped = cachewise.wrap(client, ledger=ledger, clock=emulator.emulator.now)
    body: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 16,
        "system": SYSTEM,
        "messages": [{"role": "user", "content": "hello"}],
    }
    reply = wrapped.messages.create(**body)
    assert reply.content
    assert reply.stop_reason in {"end_turn", "max_tokens"}
    ledger.flush()
    (row, *_) = ledger.calls()
    assert row.status == "ok"
    # the system prompt is far above the minimum by the offline bound alone, so a breakpoint there is
    # justified without a count; nothing near the minimum was marked on a guess
    for point in row.breakpoints:
        assert point.tokens is None or point.tokens >= 1024


def test_vertex_client_is_recorded(ledger: Ledger) -> None:
    sent: list[str] = []

    def vertex(request: httpx2.Request) -> httpx2.Response:
        sent.append(str(request.url))
        body = json.loads(request.content)
        assert "model" not in body  # the Vertex client moves it into the URL after our middleware ran
        return httpx2.Response(
            200,
            headers={"request-id": "req_vertex_1"},
            json={
                "id": "msg_v",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-6",
                "content": [{"type": "text", "text": "ok"}],
                "stop_reason": "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 12,
                    "output_tokens": 3,
                    "cache_read_input_tokens": 0,
                    "cache_creation_input_tokens": 0,
                },
            },
        )

    base = anthropic.AnthropicVertex(
        region="us-east5",
        project_id="p",
        access_token="tok",
        http_client=httpx2.Client(transport=httpx2.MockTransport(vertex)),
    )
    wrapped = cachewise.wrap(base, ledger=ledger, planner=False)
    wrapped.messages.create(
        model="claude-sonnet-4-6", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
    )
    ledger.flush()
    (row,) = ledger.calls()
    assert row.request_id == "req_vertex_1"
    assert row.cost is not None
    assert sent[0].endswith(":rawPredict")


def test_other_clients_get_a_clear_error() -> None:
    with pytest.raises(cachewise.UnsupportedClient, match="cannot wrap Client") as info:
        cachewise.wrap(httpx2.Client())
    assert "cachewise proxy" in str(info.value)
