"""The proxy does not trust its input or its upstream (issue 10, item 4), over real loopback sockets.

Oversized bodies get the API's own 413 and are never sent; an upstream that cannot be reached
or does not answer gets a 502 / 504 with an API-shaped body and an error row; batches created
and read through the proxy are recorded like the SDK path; what the proxy cannot parse goes
upstream byte for byte.
"""

from __future__ import annotations

import json
import socket
import tracemalloc
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import anthropic
import httpx2
import pytest

from cachewise.emulator import EmulatorServer
from cachewise.integrations.proxy import API_BODY_LIMIT, create_proxy_app
from cachewise.integrations.proxy_planner import upstream_planner
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import Ledger

from .conftest import API_KEY
from .recording import AsyncRecording as Recording
from .test_proxy import BODY, serve


def _proxy(tracker: CallTracker, upstream: str, **options: Any) -> Iterator[str]:
    return serve(create_proxy_app(tracker, upstream=upstream, **options))


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def silent_upstream() -> Iterator[str]:
    """A socket that accepts connections (in its backlog) and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def _sdk(base_url: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=API_KEY, base_url=base_url, max_retries=0)


# -- body limit ---------------------------------------------------------------------------------


def test_a_body_over_the_limit_gets_the_apis_413_and_is_never_sent(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    recording = Recording()
    tracker = CallTracker(
        ledger=ledger,
        planner=upstream_planner(emulator.base_url, transport=recording),
        clock=emulator.emulator.now,
    )
    big = {**BODY, "system": "x" * 70_000}
    for base_url in _proxy(tracker, emulator.base_url, transport=recording, max_body_bytes=64 * 1024):
        with _sdk(base_url) as client, pytest.raises(anthropic.ContentTooLargeError) as refused:
            client.messages.create(**big)
        assert refused.value.status_code == 413
        body: Any = refused.value.body
        assert body["type"] == "error"
        assert body["error"]["type"] == "request_too_large"
        assert str(64 * 1024) in body["error"]["message"]
        assert body["request_id"] == refused.value.request_id
        # a chunked body (no content-length) is cut at the limit just the same
        chunks = (b"x" * 16_384 for _ in range(8))
        reply = httpx2.post(f"{base_url}/v1/messages", content=chunks, headers={"x-api-key": API_KEY})
        assert reply.status_code == 413
        assert reply.json()["error"]["type"] == "request_too_large"
        # under the limit, the same proxy forwards as usual
        with _sdk(base_url) as client:
            assert client.messages.create(**BODY).content
    assert [path for path, _ in recording.sent if path == "/v1/messages"] == ["/v1/messages"]
    assert all(len(sent) <= 64 * 1024 for _, sent in recording.sent)  # neither sent nor counted
    ledger.flush()
    assert [r.status for r in ledger.calls()] == ["ok"]


def test_the_default_limit_is_the_apis_own(emulator: EmulatorServer, ledger: Ledger) -> None:
    recording = Recording()
    tracker = CallTracker(ledger=ledger)
    over = API_BODY_LIMIT + 1
    for base_url in _proxy(tracker, emulator.base_url, transport=recording):
        reply = httpx2.post(f"{base_url}/v1/messages", content=b" " * over, headers={"x-api-key": API_KEY})
        assert reply.status_code == 413
        assert reply.json()["error"]["type"] == "request_too_large"
        # a batch may be larger (256 MB): the same body is forwarded there (and refused by the API)
        batch = httpx2.post(
            f"{base_url}/v1/messages/batches", content=b" " * over, headers={"x-api-key": API_KEY}
        )
        assert batch.status_code == 400
    assert [(path, len(sent)) for path, sent in recording.sent] == [("/v1/messages/batches", over)]


# -- upstream failures -------------------------------------------------------------------------


def test_an_unreachable_upstream_is_a_502_with_an_api_error_and_an_error_row(ledger: Ledger) -> None:
    upstream = _closed_port()
    tracker = CallTracker(ledger=ledger, planner=upstream_planner(upstream))
    for base_url in _proxy(tracker, upstream):
        with _sdk(base_url) as client, pytest.raises(anthropic.InternalServerError) as failed:
            client.messages.create(**BODY)
        with _sdk(base_url) as client, pytest.raises(anthropic.InternalServerError) as other:
            client.models.retrieve("claude-sonnet-4-6")  # not a Messages call: the same answer, no row
    assert failed.value.status_code == 502
    assert other.value.status_code == 502
    body: Any = failed.value.body
    assert body["type"] == "error"
    assert body["error"]["type"] == "api_error"
    assert "could not be reached" in body["error"]["message"]
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "error"
    assert row.request_id == body["request_id"] == failed.value.request_id
    assert row.error_type == "ConnectError"
    assert row.model == BODY["model"]
    assert row.cost is not None
    assert row.cost.cost_total == 0


def test_an_upstream_that_never_answers_is_a_504_and_an_error_row(
    silent_upstream: str, ledger: Ledger
) -> None:
    tracker = CallTracker(ledger=ledger)
    for base_url in _proxy(tracker, silent_upstream, timeout=httpx2.Timeout(0.3)):
        with _sdk(base_url) as client, pytest.raises(anthropic.GatewayTimeoutError) as failed:
            client.messages.create(**BODY)
    body: Any = failed.value.body
    assert body["error"]["type"] == "timeout_error"
    ledger.flush()
    (row,) = ledger.calls()
    assert row.status == "error"
    assert row.request_id == body["request_id"]
    assert row.error_type == "ReadTimeout"


# -- batches -------------------------------------------------------------------------------------


def test_batches_through_the_proxy_are_recorded_like_the_sdk_path(
    emulator: EmulatorServer, ledger: Ledger
) -> None:
    tracker = CallTracker(ledger=ledger, clock=emulator.emulator.now)
    requests = [
        {
            "custom_id": f"p{i}",
            "params": {
                "model": "claude-sonnet-4-6",
                "max_tokens": 16,
                "system": [
                    {"type": "text", "text": "Sort the mail. " * 700, "cache_control": {"type": "ephemeral"}}
                ],
                "messages": [{"role": "user", "content": f"letter {i}"}],
            },
        }
        for i in range(3)
    ]
    for base_url in _proxy(tracker, emulator.base_url):
        with _sdk(base_url) as client:
            batch = client.messages.batches.create(requests=requests)  # type: ignore[arg-type]
            created = batch.created_at
            emulator.emulator.advance(60)
            done = client.messages.batches.retrieve(batch.id)
            assert done.results_url is not None
            assert done.results_url.startswith(base_url)  # clients follow it back through the proxy
            results = list(client.messages.batches.results(batch.id))
            assert {r.custom_id for r in results} == {"p0", "p1", "p2"}
            list(client.messages.batches.results(batch.id))  # read twice: never a doubled row
    ledger.flush()
    rows = ledger.calls()
    assert len(rows) == 3
    assert {r.endpoint for r in rows} == {"batch"}
    assert all(r.batch_id == batch.id and r.started_at == created for r in rows)
    bill = {(b["batch_id"], b["custom_id"]): Decimal(b["cost_total"]) for b in emulator.emulator.bill()}
    assert {(r.batch_id, r.custom_id): r.cost.cost_total for r in rows if r.cost} == bill


# -- what the proxy cannot parse ----------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "claude-sonnet-4-6", "max_tokens": 8, "messages": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}",
        b'{"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": "\xff\xfe"}]}',
        b"model=claude-sonnet-4-6&max_tokens=8",
    ],
    ids=["100k-deep", "not-utf8", "not-json"],
)
def test_what_the_proxy_cannot_parse_goes_upstream_untouched(
    content: bytes, emulator: EmulatorServer, ledger: Ledger
) -> None:
    direct = httpx2.post(f"{emulator.base_url}/v1/messages", content=content, headers={"x-api-key": API_KEY})
    recording = Recording()
    tracker = CallTracker(
        ledger=ledger,
        planner=upstream_planner(emulator.base_url, transport=recording),
        clock=emulator.emulator.now,
    )
    for base_url in _proxy(tracker, emulator.base_url, transport=recording):
        reply = httpx2.post(f"{base_url}/v1/messages", content=content, headers={"x-api-key": API_KEY})
    assert recording.sent == [("/v1/messages", content)]  # byte for byte, and nothing counted
    assert reply.status_code == direct.status_code  # the upstream's own answer comes back
    if direct.headers["content-type"].startswith("application/json"):
        assert json.loads(reply.content)["error"] == json.loads(direct.content)["error"]
    else:
        assert reply.content == direct.content


def test_an_oversized_body_is_read_only_up_to_the_limit(ledger: Ledger) -> None:
    """A chunked 16 MiB body against a 1 MiB limit: the proxy holds at most about the limit."""

    def upstream(request: httpx2.Request) -> httpx2.Response:
        raise AssertionError("an oversized body was sent upstream")

    tracker = CallTracker(ledger=ledger)
    app = create_proxy_app(
        tracker, upstream="http://api.invalid", transport=httpx2.MockTransport(upstream), max_body_bytes=2**20
    )
    for base_url in serve(app):
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            chunks = (b"x" * 65_536 for _ in range(256))
            reply = httpx2.post(f"{base_url}/v1/messages", content=chunks, timeout=60)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        assert reply.status_code == 413
    assert peak < 6 * 2**20  # the whole body (16 MiB), let alone twice, was never held


@pytest.mark.parametrize(
    ("error", "status", "error_type"),
    [
        (httpx2.ReadError("connection reset"), 502, "api_error"),
        (httpx2.RemoteProtocolError("peer closed connection"), 502, "api_error"),
        (httpx2.ReadTimeout("timed out"), 504, "timeout_error"),
        (httpx2.ConnectTimeout("timed out"), 504, "timeout_error"),
    ],
    ids=["read-error", "protocol-error", "read-timeout", "connect-timeout"],
)
def test_every_upstream_transport_failure_is_answered_and_recorded(
    error: httpx2.TransportError, status: int, error_type: str, ledger: Ledger
) -> None:
    def upstream(request: httpx2.Request) -> httpx2.Response:
        raise error

    tracker = CallTracker(ledger=ledger)
    app = create_proxy_app(tracker, upstream="http://api.invalid", transport=httpx2.MockTransport(upstream))
    for base_url in serve(app):
        reply = httpx2.post(f"{base_url}/v1/messages", json=BODY, headers={"x-api-key": API_KEY})
    assert reply.status_code == status
    body = reply.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert reply.headers["request-id"] == body["request_id"]
    ledger.flush()
    (row,) = ledger.calls()
    assert (row.status, row.request_id, row.error_type) == ("error", body["request_id"], type(error).__name__)
