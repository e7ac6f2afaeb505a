"""In-process transports: the SDK (``httpx2``) or plain ``httpx`` talks to an emulator without a socket.

::

    emulator = Emulator()
    client = anthropic.Anthropic(
        api_key="test",
        base_url="http://emulator",
        http_client=httpx2.Client(transport=EmulatorTransport(emulator)),
    )

A ``stream_cut`` fault surfaces as ``RemoteProtocolError`` while the body is read, as a
dropped connection does over a socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio.to_thread
import httpx
import httpx2

from .emulator import Emulator, HttpRequest, HttpResponse
from .errors import StreamCut

__all__ = [
    "AsyncEmulatorTransport",
    "AsyncHttpxEmulatorTransport",
    "EmulatorTransport",
    "HttpxEmulatorTransport",
]

_CUT = "peer closed connection without sending complete message body (emulator fault injection)"


def _incoming(request: httpx2.Request | httpx.Request, body: bytes) -> HttpRequest:
    url = request.url
    return HttpRequest(
        method=request.method,
        path=url.path,
        query=list(url.params.multi_items()),
        headers={k.lower(): v for k, v in request.headers.items()},
        body=body,
        base_url=f"{url.scheme}://{url.netloc.decode()}/",
    )


class _Sync2(httpx2.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except StreamCut:
            raise httpx2.RemoteProtocolError(_CUT) from None


class _Async2(httpx2.AsyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for chunk in self._chunks:
                yield chunk
        except StreamCut:
            raise httpx2.RemoteProtocolError(_CUT) from None


class _Sync1(httpx.SyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._chunks
        except StreamCut:
            raise httpx.RemoteProtocolError(_CUT) from None


class _Async1(httpx.AsyncByteStream):
    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            for chunk in self._chunks:
                yield chunk
        except StreamCut:
            raise httpx.RemoteProtocolError(_CUT) from None


def _response2(
    answer: HttpResponse, stream: httpx2.SyncByteStream | httpx2.AsyncByteStream | None
) -> httpx2.Response:
    if stream is None:
        return httpx2.Response(answer.status, headers=answer.headers, content=answer.body)
    return httpx2.Response(answer.status, headers=answer.headers, stream=stream)


def _response1(
    answer: HttpResponse, stream: httpx.SyncByteStream | httpx.AsyncByteStream | None
) -> httpx.Response:
    if stream is None:
        return httpx.Response(answer.status, headers=answer.headers, content=answer.body)
    return httpx.Response(answer.status, headers=answer.headers, stream=stream)


class EmulatorTransport(httpx2.BaseTransport):
    """A sync ``httpx2`` transport (what ``anthropic.Anthropic(http_client=...)`` needs)."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        answer = self.emulator.handle(_incoming(request, request.read()))
        return _response2(answer, _Sync2(answer.stream) if answer.stream is not None else None)


class AsyncEmulatorTransport(httpx2.AsyncBaseTransport):
    """An async ``httpx2`` transport for ``anthropic.AsyncAnthropic``; requests run in a worker thread."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        incoming = _incoming(request, await request.aread())
        answer = await anyio.to_thread.run_sync(self.emulator.handle, incoming)
        return _response2(answer, _Async2(answer.stream) if answer.stream is not None else None)


class HttpxEmulatorTransport(httpx.BaseTransport):
    """A sync plain-``httpx`` transport, for callers that do not use the SDK."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.emulator.handle(_incoming(request, request.read()))
        return _response1(answer, _Sync1(answer.stream) if answer.stream is not None else None)


class AsyncHttpxEmulatorTransport(httpx.AsyncBaseTransport):
    """An async plain-``httpx`` transport."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        incoming = _incoming(request, await request.aread())
        answer = await anyio.to_thread.run_sync(self.emulator.handle, incoming)
        return _response1(answer, _Async1(answer.stream) if answer.stream is not None else None)
