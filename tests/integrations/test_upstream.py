"""The proxy's two upstream clients (aiohttp's, httpx2's) send alike and fail alike, over real sockets."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest

from cachewise.integrations.upstream import AiohttpUpstream, HttpxUpstream, Upstream, upstream_client
from tests.fixtures.servers import serve

CHUNKS = [b"event: ping\ndata: {}\n\n", b"event: message_stop\nda", b'ta: {"type":"message_stop"}\n\n']


class _Echo:
    """An upstream that keeps what it received and answers JSON, a chunked stream, or a cut body."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes, dict[str, str], bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        self.received.append((scope["method"], scope["path"], scope["query_string"], headers, body))
        if scope["path"] == "/stream":
            await send({"type": "http.response.start", "status": 200, "headers": [(b"request-id", b"req_s")]})
            for chunk in CHUNKS:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["path"] == "/cut":  # promises 100 bytes, sends 10, and the server closes
            start = {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]}
            await send(start)
            await send({"type": "http.response.body", "body": b"0123456789", "more_body": True})
            raise RuntimeError("connection dropped")
        reply = b'{"type":"message","echo":%d}' % len(body)
        await send(
            {
                "type": "http.response.start",
                "status": 201,
                "headers": [(b"content-type", b"application/json"), (b"request-id", b"req_1")],
            }
        )
        await send({"type": "http.response.body", "body": reply})


@pytest.fixture
def echo() -> Iterator[tuple[_Echo, str]]:
    app = _Echo()
    for base in serve(app):
        yield app, base


def _client(kind: str, base: str, timeout: float = 5) -> Upstream:
    if kind == "aiohttp":
        return AiohttpUpstream(base, timeout=httpx2.Timeout(timeout))
    return HttpxUpstream(base, timeout=httpx2.Timeout(timeout))


KINDS = ["aiohttp", "httpx2"]
HEADERS = {
    "x-api-key": "sk-test",
    "anthropic-version": "2023-06-01",
    "content-type": "application/json",
    "user-agent": "Anthropic/Python 2.12",
    "accept-encoding": "identity",
}


def test_aiohttp_sends_unless_a_transport_is_given() -> None:
    timeout = httpx2.Timeout(1)
    assert isinstance(upstream_client("http://x", timeout=timeout), AiohttpUpstream)
    mock = httpx2.MockTransport(lambda request: httpx2.Response(200))
    assert isinstance(upstream_client("http://x", timeout=timeout, transport=mock), HttpxUpstream)


async def _exchange(
    client: Upstream, target: str, body: bytes
) -> tuple[int, dict[str, str], bytes, list[bytes]]:
    try:
        reply = await client.send("POST", target, HEADERS, body)
        try:
            chunks = [chunk async for chunk in reply.aiter_raw()]
        finally:
            await reply.aclose()
        return reply.status_code, dict(reply.headers), b"".join(chunks), chunks
    finally:
        await client.aclose()


def test_both_clients_send_the_callers_request_and_return_the_reply_alike(echo: tuple[_Echo, str]) -> None:
    app, base = echo
    body = b'{"model":"m","messages":[]}' * 2000
    seen = {}
    for kind in KINDS:
        status, headers, data, _ = asyncio.run(_exchange(_client(kind, base), "/v1/messages?beta=true", body))
        assert status == 201
        assert headers["request-id"] == "req_1"
        assert data == b'{"type":"message","echo":%d}' % len(body)
        method, path, query, received, sent = app.received[-1]
        assert (method, path, query, sent) == ("POST", "/v1/messages", b"beta=true", body)
        assert {k: received[k] for k in HEADERS} == HEADERS  # the caller's headers, unchanged
        seen[kind] = received
    # nothing of the client's own beyond what HTTP needs: the same header names either way
    # (httpx2 says ``connection: keep-alive``, HTTP/1.1's default)
    assert set(seen["aiohttp"]) == set(seen["httpx2"]) - {"connection"}


def test_a_stream_comes_through_byte_for_byte(echo: tuple[_Echo, str]) -> None:
    _, base = echo
    for kind in KINDS:
        status, headers, data, chunks = asyncio.run(_exchange(_client(kind, base), "/stream", b"{}"))
        assert status == 200
        assert headers["request-id"] == "req_s"
        assert data == b"".join(CHUNKS)
        assert all(chunks)


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize("kind", KINDS)
def test_an_unreachable_upstream_is_a_connect_error(kind: str) -> None:
    with pytest.raises(httpx2.ConnectError):
        asyncio.run(_exchange(_client(kind, _closed_port()), "/v1/messages", b"{}"))


@pytest.mark.parametrize("kind", KINDS)
def test_an_upstream_that_never_answers_is_a_read_timeout(kind: str) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(4)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(httpx2.ReadTimeout):
            asyncio.run(_exchange(_client(kind, base, timeout=0.3), "/v1/messages", b"{}"))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("read", ["aread", "aiter_raw"])
def test_a_body_cut_short_is_a_protocol_error(echo: tuple[_Echo, str], kind: str, read: str) -> None:
    _, base = echo

    async def go() -> None:
        client = _client(kind, base)
        try:
            reply = await client.send("POST", "/cut", HEADERS, b"{}")
            try:
                if read == "aread":
                    await reply.aread()
                else:
                    async for _ in _chunks(reply.aiter_raw()):
                        pass
            finally:
                await reply.aclose()
        finally:
            await client.aclose()

    with pytest.raises(httpx2.RemoteProtocolError):
        asyncio.run(go())


async def _chunks(source: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    async for chunk in source:
        yield chunk
