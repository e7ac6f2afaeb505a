"""HTTP transports that plan and record, for code that only accepts an http client.

Four flavours with one behaviour and one core (``_Core._flow``, a generator of asks; see
:mod:`.steps`): :class:`CachewiseTransport` /
:class:`AsyncCachewiseTransport` for ``httpx2`` (what the ``anthropic`` SDK 2.x
takes as ``http_client``), and :class:`HttpxCachewiseTransport` /
:class:`AsyncHttpxCachewiseTransport` for ``httpx`` (other libraries). Each wraps
an inner transport (default: the library's own ``HTTPTransport``).

Below the SDK there are no retries to see: every request that reaches the
transport is one attempt, recorded once. Messages requests are sent with
``accept-encoding: identity`` so the stream can be read as it passes. ``fanout`` (a
:class:`.FanOut`, default ``"hold"``) holds or pre-warms concurrent requests on a cold prefix,
as the SDK middleware does (:mod:`.fanout`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from typing import Any

import httpx
import httpx2

from ..failopen import fail_open, record_failure
from ..httpstreams import AsyncFrames1, Frames1
from .fanout import Admission, FanOut, Hold
from .steps import Read, Send, Tapped, adrive, drive
from .streams import AsyncFrames, AsyncFrames2, Frames, Frames2, tap_async, tap_sync
from .tracker import CallKind, CallTracker, PlanAsk, Prepared, classify, serialised

Ask = Send[Any] | Read | PlanAsk | Hold

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


def _tapped(module: Any, response: Any, stream: Any) -> Any:
    """``response`` again, with ``stream`` (the tapped body) as its body."""
    return module.Response(
        response.status_code, headers=response.headers, stream=stream, extensions=response.extensions
    )


class _Core:
    """One Messages attempt as asks (:mod:`.steps`); the sync and async transports answer them."""

    _module: Any
    _default: Callable[[], Any]

    def __init__(self, tracker: CallTracker, inner: Any = None, *, fanout: FanOut | None = None) -> None:
        """``inner``: the transport that sends (default: the library's own ``HTTPTransport``)."""
        self.tracker = tracker
        self.inner = inner if inner is not None else self._default()
        self.fanout = fanout if fanout is not None else FanOut("hold")

    def _flow(self, request: Any) -> Generator[Ask, Any, Any]:
        content = yield Read(request)
        body = _body(content)
        prepared = yield from self.tracker.preparing(body)
        admission = Admission()
        with fail_open("fanout"):
            admission = self.fanout.admit(prepared, self.tracker.clock())
        try:
            if admission.waits:
                yield Hold(admission)
            if admission.prewarm:
                began = yield from self._prewarm(request, prepared)
                self._release(admission, ok=began)
            return (yield from self._sent(request, body, content, prepared, admission))
        finally:
            self._release(admission, ok=False)

    def _release(self, admission: Admission, *, ok: bool) -> None:
        self.fanout.settle(admission, ok=ok, clock=self.tracker.clock)

    def _prewarm(self, request: Any, prepared: Prepared) -> Generator[Ask, Any, bool]:
        """Send the planned body with ``max_tokens: 0``, recorded as a call of its own."""
        record = self.fanout.prewarm_call(prepared, self.tracker.clock())
        if record is None or record.body is None:
            return False
        payload = record.payload = serialised(record.body)
        try:
            response = yield Send(_rebuild(self._module, request, record, payload))
        except Exception as exc:
            self.tracker.fail(record, exc)
            record_failure("fanout prewarm", exc)
            return False
        data = yield Read(response)
        self.tracker.finish(record, response.status_code, response.headers, data)
        return bool(200 <= response.status_code < 300)

    def _sent(
        self,
        request: Any,
        body: Mapping[str, Any] | None,
        content: bytes,
        prepared: Prepared,
        admission: Admission,
    ) -> Generator[Ask, Any, Any]:
        response = yield Send(_rebuild(self._module, request, prepared, content))
        self._release(admission, ok=200 <= response.status_code < 300)
        if body is not None and body.get("stream") and 200 <= response.status_code < 300:
            return Tapped(response, self.tracker.tap(prepared, response.status_code, response.headers))
        data = yield Read(response)
        self.tracker.finish(prepared, response.status_code, response.headers, data)
        return response


class _SyncCore(_Core):
    _frames: type[Frames]

    def _answer(self, ask: Ask) -> Any:
        if isinstance(ask, Send):
            return self.inner.handle_request(ask.request)
        if isinstance(ask, Hold):
            with fail_open("fanout hold"):
                self.fanout.wait(ask.admission)
            return None
        return ask.source.read() if isinstance(ask, Read) else self.tracker.ask_planner(ask)

    def handle_request(self, request: Any) -> Any:
        if classify(request.method, str(request.url))[0] != CallKind.MESSAGES:
            return self.inner.handle_request(request)
        done = drive(self._flow(request), self._answer)
        if not isinstance(done, Tapped):
            return done
        raw = done.response.stream
        return _tapped(
            self._module, done.response, self._frames(tap_sync(done.recorder, iter(raw), raw.close))
        )

    def close(self) -> None:
        self.inner.close()


class _AsyncCore(_Core):
    _frames: type[AsyncFrames]

    async def _answer(self, ask: Ask) -> Any:
        if isinstance(ask, Send):
            return await self.inner.handle_async_request(ask.request)
        if isinstance(ask, Hold):
            with fail_open("fanout hold"):
                await self.fanout.await_(ask.admission)
            return None
        return await ask.source.aread() if isinstance(ask, Read) else await self.tracker.aask_planner(ask)

    async def handle_async_request(self, request: Any) -> Any:
        if classify(request.method, str(request.url))[0] != CallKind.MESSAGES:
            return await self.inner.handle_async_request(request)
        done = await adrive(self._flow(request), self._answer)
        if not isinstance(done, Tapped):
            return done
        raw = done.response.stream
        stream = self._frames(tap_async(done.recorder, aiter(raw), raw.aclose))
        return _tapped(self._module, done.response, stream)

    async def aclose(self) -> None:
        await self.inner.aclose()


class CachewiseTransport(_SyncCore, httpx2.BaseTransport):
    """``httpx2`` transport: ``anthropic.Anthropic(http_client=httpx2.Client(transport=...))``."""

    _module, _frames, _default = httpx2, Frames2, httpx2.HTTPTransport


class AsyncCachewiseTransport(_AsyncCore, httpx2.AsyncBaseTransport):
    """``httpx2`` async transport, for ``anthropic.AsyncAnthropic``."""

    _module, _frames, _default = httpx2, AsyncFrames2, httpx2.AsyncHTTPTransport


class HttpxCachewiseTransport(_SyncCore, httpx.BaseTransport):
    """``httpx`` transport, for libraries that take an ``httpx.Client``."""

    _module, _frames, _default = httpx, Frames1, httpx.HTTPTransport


class AsyncHttpxCachewiseTransport(_AsyncCore, httpx.AsyncBaseTransport):
    """``httpx`` async transport, for libraries that take an ``httpx.AsyncClient``."""

    _module, _frames, _default = httpx, AsyncFrames1, httpx.AsyncHTTPTransport
