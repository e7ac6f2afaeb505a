"""The gateway app: the tags header never goes upstream, the caller's tags reach the record."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest

from cachewise.budget.config import KEY_TAG, key_id
from cachewise.gateway import GatewayApp
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import CallRecord
from tests.fixtures.servers import serve

from .conftest import BODY

REPLY = {
    "id": "msg_app_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-6",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 2},
}


@pytest.fixture
def upstream_seen() -> list[httpx2.Request]:
    return []


@pytest.fixture
def records() -> list[CallRecord]:
    return []


@pytest.fixture
def base(upstream_seen: list[httpx2.Request], records: list[CallRecord]) -> Iterator[str]:
    def answer(request: httpx2.Request) -> httpx2.Response:
        upstream_seen.append(request)
        return httpx2.Response(200, json=REPLY, headers={"request-id": f"req_app_{len(upstream_seen)}"})

    tracker = CallTracker(ledger=None, on_record=records.append)
    proxy = create_proxy_app(tracker, upstream="http://upstream.test", transport=httpx2.MockTransport(answer))
    yield from serve(GatewayApp(proxy))


def test_tags_header_is_recorded_and_not_forwarded(
    base: str, upstream_seen: list[httpx2.Request], records: list[CallRecord]
) -> None:
    reply = httpx2.post(
        f"{base}/v1/messages",
        json=BODY,
        headers={"x-api-key": "sk-ant-app", "x-cachewise-tags": "feature=search,team=a"},
    )
    assert reply.status_code == 200, reply.text
    (sent,) = upstream_seen
    assert "x-cachewise-tags" not in sent.headers
    assert sent.headers["x-api-key"] == "sk-ant-app"  # the caller's key still goes upstream
    assert json.loads(sent.content)["model"] == BODY["model"]
    (record,) = records
    assert dict(record.tags) == {"feature": "search", "team": "a", KEY_TAG: key_id("sk-ant-app")}


def test_bearer_tokens_are_identified_too(base: str, records: list[CallRecord]) -> None:
    httpx2.post(f"{base}/v1/messages", json=BODY, headers={"authorization": "Bearer tok-1"})
    assert records[0].tags[KEY_TAG] == key_id("tok-1")


def test_a_bad_tags_header_is_a_400_and_not_sent(base: str, upstream_seen: list[httpx2.Request]) -> None:
    reply = httpx2.post(f"{base}/v1/messages", json=BODY, headers={"x-cachewise-tags": "=x"})
    assert reply.status_code == 400
    assert reply.json()["error"]["type"] == "invalid_request_error"
    assert "x-cachewise-tags" in reply.json()["error"]["message"]
    assert upstream_seen == []
