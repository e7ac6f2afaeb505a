"""The proxy's streams over real sockets: bytes as the upstream sent them, and a client that leaves."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route

from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import Ledger
from tests.fixtures.servers import serve

from .conftest import API_KEY

START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_p","type":"message",'
    b'"role":"assistant","model":"claude-haiku-4-5","content":[],"usage":{"input_tokens":12,'
    b'"output_tokens":1,"cache_read_input_tokens":0,"cache_creation_input_tokens":0}}}\r\n\r\n'
)
DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"h\\u00e9"}}\n\n'
)
BODY = (
    b'{"model":"claude-haiku-4-5","max_tokens":5,"stream":true,"messages":[{"role":"user","content":"hi"}]}'
)
HEADERS = {"x-api-key": API_KEY, "anthropic-version": "2023-06-01", "content-type": "application/json"}


def _upstream(pieces: int, closed: threading.Event, pause: float) -> StreamingResponse:
    async def body() -> AsyncIterator[bytes]:
        try:
            yield START
            for _ in range(pieces):
                await asyncio.sleep(pause)
                yield DELTA
        finally:
            closed.set()

    return StreamingResponse(
        body(), 200, headers={"content-type": "text/event-stream", "request-id": "req_p"}
    )


def _app(pieces: int, closed: threading.Event, pause: float) -> Starlette:
    async def messages(request: Request) -> StreamingResponse:
        await request.body()
        return _upstream(pieces, closed, pause)

    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"])])


def test_a_stream_passes_byte_for_byte_and_is_recorded_once(ledger: Ledger) -> None:
    closed = threading.Event()
    for upstream in serve(_app(3, closed, 0.0)):
        app = create_proxy_app(CallTracker(ledger=ledger), upstream=upstream)
        for proxy in serve(app):
            with httpx2.stream("POST", f"{proxy}/v1/messages", content=BODY, headers=HEADERS) as reply:
                got = b"".join(reply.iter_raw())
            assert reply.status_code == 200
    assert got == START + DELTA * 3  # CRLF separators and escapes as the upstream wrote them
    ledger.flush()
    (row,) = ledger.calls()
    assert (row.request_id, row.status, row.usage.input_tokens) == ("req_p", "incomplete", 12)


def test_a_client_that_leaves_mid_stream_stops_it_and_the_call_is_recorded_incomplete(
    ledger: Ledger,
) -> None:
    closed = threading.Event()
    for upstream in serve(_app(600, closed, 0.05)):  # 30 s of stream if nobody stops it
        app = create_proxy_app(CallTracker(ledger=ledger), upstream=upstream)
        for proxy in serve(app):
            with httpx2.stream("POST", f"{proxy}/v1/messages", content=BODY, headers=HEADERS) as reply:
                first = next(reply.iter_raw())
            assert first.startswith(b"event: message_start")
            # the proxy lets go of the upstream at once: its generator is closed long before the end
            assert closed.wait(10)
            deadline = time.monotonic() + 10
            while not ledger.flush() and not ledger.calls() and time.monotonic() < deadline:
                time.sleep(0.05)
    ledger.flush()
    (row,) = ledger.calls()
    assert row.request_id == "req_p"
    assert row.status == "incomplete"
    assert row.usage.input_tokens == 12
