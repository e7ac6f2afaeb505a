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
from typing import Any

import anyio.to_thread
import httpx
import httpx2

from ..httpstreams import AsyncFrames1, AsyncFrames2, Frames1, Frames2
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


def _chunks(chunks: Iterator[bytes], dropped: type[Exception]) -> Iterator[bytes]:
    try:
        yield from chunks
    except StreamCut:
        raise dropped(_CUT) from None


async def _achunks(chunks: Iterator[bytes], dropped: type[Exception]) -> AsyncIterator[bytes]:
    try:
        for chunk in chunks:
            yield chunk
    except StreamCut:
        raise dropped(_CUT) from None


def _reply(response: Any, answer: HttpResponse, stream: Any) -> Any:
    """An ``httpx2`` or ``httpx`` response (``response`` is the class) carrying ``answer``."""
    if answer.stream is None:
        return response(answer.status, headers=answer.headers, content=answer.body)
    return response(answer.status, headers=answer.headers, stream=stream)


class _Sync:
    _response: Any  # the httpx2 or httpx classes this transport answers with
    _frames: Any
    _dropped: type[Exception]

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    def handle_request(self, request: Any) -> Any:
        answer = self.emulator.handle(_incoming(request, request.read()))
        stream = answer.stream and self._frames(_chunks(answer.stream, self._dropped))
        return _reply(self._response, answer, stream)


class _Async:
    _response: Any
    _frames: Any
    _dropped: type[Exception]

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator

    async def handle_async_request(self, request: Any) -> Any:
        incoming = _incoming(request, await request.aread())
        answer = await anyio.to_thread.run_sync(self.emulator.handle, incoming)
        stream = answer.stream and self._frames(_achunks(answer.stream, self._dropped))
        return _reply(self._response, answer, stream)


class EmulatorTransport(_Sync, httpx2.BaseTransport):
    """A sync ``httpx2`` transport (what ``anthropic.Anthropic(http_client=...)`` needs)."""

    _response, _frames, _dropped = httpx2.Response, Frames2, httpx2.RemoteProtocolError


class AsyncEmulatorTransport(_Async, httpx2.AsyncBaseTransport):
    """An async ``httpx2`` transport for ``anthropic.AsyncAnthropic``; requests run in a worker thread."""

    _response, _frames, _dropped = httpx2.Response, AsyncFrames2, httpx2.RemoteProtocolError


class HttpxEmulatorTransport(_Sync, httpx.BaseTransport):
    """A sync plain-``httpx`` transport, for callers that do not use the SDK."""

    _response, _frames, _dropped = httpx.Response, Frames1, httpx.RemoteProtocolError


class AsyncHttpxEmulatorTransport(_Async, httpx.AsyncBaseTransport):
    """An async plain-``httpx`` transport."""

    _response, _frames, _dropped = httpx.Response, AsyncFrames1, httpx.RemoteProtocolError
