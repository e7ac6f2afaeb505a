"""HTTP transports that plan and record, for code that only accepts an http client.

Four flavours with one behaviour: :class:`CachewiseTransport` /
:class:`AsyncCachewiseTransport` for ``httpx2`` (what the ``anthropic`` SDK 2.x
takes as ``http_client``), and :class:`HttpxCachewiseTransport` /
:class:`AsyncHttpxCachewiseTransport` for ``httpx`` (other libraries). Each wraps
an inner transport (default: the library's own ``HTTPTransport``).

Below the SDK there are no retries to see: every request that reaches the
transport is one attempt, recorded once. Messages requests are sent with
``accept-encoding: identity`` so the stream can be read as it passes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import httpx
import httpx2

from .streams import AsyncFrames, AsyncFrames1, AsyncFrames2, Frames, Frames1, Frames2, tap_async, tap_sync
from .tracker import CallKind, CallTracker, Prepared, classify

__all__ = [
    "AsyncCachewiseTransport",
    "AsyncHttpxCachewiseTransport",
    "CachewiseTransport",
    "HttpxCachewiseTransport",
]


def _body(content: bytes) -> Mapping[str, Any] | None:
    try:
        data = json.loads(content) if content else None
    except (ValueError, RecursionError):  # not JSON, or nested too deep to parse: sent untouched
        return None
    return data if isinstance(data, Mapping) else None


def _headers(request_headers: Any) -> dict[str, str]:
    headers = {
        k: v for k, v in request_headers.items() if k.lower() not in {"content-length", "accept-encoding"}
    }
    headers["accept-encoding"] = "identity"
    return headers


def _rebuild(module: Any, request: Any, prepared: Prepared, content: bytes) -> Any:
    payload = prepared.payload if prepared.payload is not None else content
    return module.Request(
        request.method,
        request.url,
        headers=_headers(request.headers),
        content=payload,
        extensions=request.extensions,
    )


class _SyncCore:
    _module: Any
    _frames: type[Frames]

    def __init__(self, tracker: CallTracker, inner: Any) -> None:
        self.tracker = tracker
        self.inner = inner

    def handle_request(self, request: Any) -> Any:
        kind, _ = classify(request.method, str(request.url))
        if kind != CallKind.MESSAGES:
            return self.inner.handle_request(request)
        content = request.read()
        body = _body(content)
        prepared = self.tracker.prepare(body)
        response = self.inner.handle_request(_rebuild(self._module, request, prepared, content))
        if body is not None and body.get("stream") and 200 <= response.status_code < 300:
            recorder = self.tracker.tap(prepared, response.status_code, response.headers)
            tapped = self._frames(tap_sync(recorder, iter(response.stream), response.stream.close))
            return self._module.Response(
                response.status_code, headers=response.headers, stream=tapped, extensions=response.extensions
            )
        data = response.read()
        self.tracker.finish(prepared, response.status_code, response.headers, data)
        return response

    def close(self) -> None:
        self.inner.close()


class _AsyncCore:
    _module: Any
    _frames: type[AsyncFrames]

    def __init__(self, tracker: CallTracker, inner: Any) -> None:
        self.tracker = tracker
        self.inner = inner

    async def handle_async_request(self, request: Any) -> Any:
        kind, _ = classify(request.method, str(request.url))
        if kind != CallKind.MESSAGES:
            return await self.inner.handle_async_request(request)
        content = await request.aread()
        body = _body(content)
        prepared = await self.tracker.aprepare(body)
        response = await self.inner.handle_async_request(_rebuild(self._module, request, prepared, content))
        if body is not None and body.get("stream") and 200 <= response.status_code < 300:
            recorder = self.tracker.tap(prepared, response.status_code, response.headers)
            tapped = self._frames(tap_async(recorder, aiter(response.stream), response.stream.aclose))
            return self._module.Response(
                response.status_code, headers=response.headers, stream=tapped, extensions=response.extensions
            )
        data = await response.aread()
        self.tracker.finish(prepared, response.status_code, response.headers, data)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class CachewiseTransport(_SyncCore, httpx2.BaseTransport):
    """``httpx2`` transport: ``anthropic.Anthropic(http_client=httpx2.Client(transport=...))``."""

    _module = httpx2
    _frames = Frames2

    def __init__(self, tracker: CallTracker, inner: httpx2.BaseTransport | None = None) -> None:
        super().__init__(tracker, inner or httpx2.HTTPTransport())


class AsyncCachewiseTransport(_AsyncCore, httpx2.AsyncBaseTransport):
    _module = httpx2
    _frames = AsyncFrames2

    def __init__(self, tracker: CallTracker, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        super().__init__(tracker, inner or httpx2.AsyncHTTPTransport())


class HttpxCachewiseTransport(_SyncCore, httpx.BaseTransport):
    """``httpx`` transport, for libraries that take an ``httpx.Client``."""

    _module = httpx
    _frames = Frames1

    def __init__(self, tracker: CallTracker, inner: httpx.BaseTransport | None = None) -> None:
        super().__init__(tracker, inner or httpx.HTTPTransport())


class AsyncHttpxCachewiseTransport(_AsyncCore, httpx.AsyncBaseTransport):
    _module = httpx
    _frames = AsyncFrames1

    def __init__(self, tracker: CallTracker, inner: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(tracker, inner or httpx.AsyncHTTPTransport())
