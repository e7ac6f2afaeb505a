"""The ``anthropic`` SDK middleware that plans and records every Messages call.

It runs inside the SDK's retry loop, once per HTTP attempt (docs/api-notes.md §7), so
each billed attempt becomes one ledger row and each failed attempt an error
row with no cost. Bodies are rewritten only through ``APIRequest.copy``; a
streamed body is watched chunk by chunk as the caller reads it, never
buffered. If the server rejects a request the planner changed with a 400 that
names ``cache_control``, the request is sent again exactly as the user wrote it.
Concurrent requests on a cold prefix are held or pre-warmed by a :class:`.FanOut`
(:mod:`.fanout`): the core yields a :class:`.Hold` that the sync driver waits on with a
thread event and the async driver awaits, so the event loop keeps running.

Sync and async share one core, :meth:`CachewiseMiddleware._flow` (a generator of
asks, see :mod:`.steps`); ``handle`` and ``handle_async`` only answer its asks.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Mapping
from typing import TYPE_CHECKING, Any

import httpx2
from anthropic import Middleware
from anthropic._response import APIResponse, AsyncAPIResponse

from ..failopen import fail_open, record_failure
from .batches import BatchTimes, ResultLines
from .fanout import Admission, FanOut, Hold
from .steps import Read, Send, Tapped, adrive, drive
from .streams import AsyncFrames2, Frames2, tap_async, tap_sync
from .tracker import CallKind, CallTracker, PlanAsk, Prepared, classify

if TYPE_CHECKING:
    from .batch_planner import BatchPlanner

__all__ = ["CachewiseMiddleware"]

_BATCH = re.compile(r"/v1/messages/batches/([^/?]+)$")

Ask = Send[Any] | Read | PlanAsk | Hold


def _spliced(
    original: httpx2.Response, stream: httpx2.SyncByteStream | httpx2.AsyncByteStream
) -> httpx2.Response:
    """A response standing in for ``original`` whose body is ``stream`` (already decoded bytes)."""
    headers = original.headers.copy()
    for name in ("content-encoding", "content-length"):
        if name in headers:
            del headers[name]
    return httpx2.Response(
        status_code=original.status_code, headers=headers, stream=stream, request=original.request
    )


def _respond(cls: type[Any], response: Any, stream: httpx2.SyncByteStream | httpx2.AsyncByteStream) -> Any:
    """``response`` (an ``APIResponse`` or ``AsyncAPIResponse``, ``cls``) with its body replaced."""
    return cls(
        raw=_spliced(response.http_response, stream),
        cast_to=response._cast_to,
        client=response._client,
        stream=True,
        stream_cls=response._stream_cls,
        options=response._options,
        retries_taken=response.retries_taken,
    )


def _rejected_marker(prepared: Prepared, status: int, content: bytes) -> bool:
    """The API refused a request the planner changed, over a marker: resend it as the user wrote it."""
    rejected = prepared.changed and status == 400 and b"cache_control" in content
    if rejected:
        record_failure("planner (request rejected)", ValueError(content[:300].decode(errors="replace")))
    return rejected


class CachewiseMiddleware(Middleware):
    """Plans (``prepare``) and records (``finish``/``tap``) through a :class:`CallTracker`."""

    def __init__(
        self, tracker: CallTracker, fanout: FanOut | None = None, batches: BatchPlanner | None = None
    ) -> None:
        self.tracker = tracker
        self.fanout = fanout if fanout is not None else FanOut("off")
        self.batch_planner = batches
        self._batches = BatchTimes()

    # -- the core ---------------------------------------------------------------------------------

    def _flow(self, request: Any) -> Generator[Ask, Any, Any]:
        """One attempt: yields asks, returns the response (or a :class:`Tapped` one to wrap)."""
        kind, batch_id = classify(request.method, request.url)
        if kind == CallKind.MESSAGES:
            body = request.json if isinstance(request.json, Mapping) else None
            prepared = yield from self.tracker.preparing(body, retry=request.retries_taken > 0)
            return (yield from self._messages(request, prepared))
        if kind == CallKind.BATCH_CREATE and self.batch_planner is not None:
            request = self._planned_batch(request)
        response = yield Send(request)
        http = response.http_response
        if not http.is_success or kind == CallKind.BATCH_CREATE:
            return response
        if kind == CallKind.BATCH_RESULTS and batch_id is not None:
            started = self._batches.created(batch_id) or self.tracker.clock()
            return Tapped(response, ResultLines(self.tracker, batch_id, started))
        if _BATCH.search(request.url.split("?", 1)[0]):
            content = yield Read(http)
            with fail_open("batch retrieve"):
                self._batches.remember(json.loads(content))
        return response

    def _planned_batch(self, request: Any) -> Any:
        """The batch create request with its requests planned together (the user's, if that fails)."""
        assert self.batch_planner is not None
        with fail_open("batch planner"):
            body = request.json if isinstance(request.json, Mapping) else None
            planned = self.batch_planner.plan(body) if body is not None else None
            if planned is not None:
                return request.copy(body=planned)
        return request

    def _admit(self, prepared: Prepared) -> Admission:
        if not self.fanout.active:
            return Admission()
        with fail_open("fanout"):
            return self.fanout.admit(prepared, self.tracker.clock())
        return Admission()

    def _release(self, admission: Admission, *, ok: bool) -> None:
        self.fanout.settle(admission, ok=ok, clock=self.tracker.clock)

    def _prewarm(self, request: Any, prepared: Prepared) -> Generator[Ask, Any, bool]:
        """Send ``prepared``'s body with ``max_tokens: 0``; recorded as a call of its own.

        Returns whether the pre-warm's response began (a failure is logged, never raised).
        """
        warm = self.fanout.prewarm_call(prepared, self.tracker.clock())
        if warm is None:
            return False
        outgoing = request.copy(body=warm.body)
        outgoing.stream, outgoing.stream_cls = False, None
        try:
            response = yield Send(outgoing)
        except Exception as exc:  # the pre-warm failed to send: the user's request goes on as planned
            self.tracker.fail(warm, exc)
            record_failure("fanout prewarm", exc)
            return False
        http = response.http_response
        content = yield Read(http)
        self.tracker.finish(warm, http.status_code, http.headers, content)
        if not http.is_success:
            record_failure("fanout prewarm", ValueError(content[:300].decode(errors="replace")))
        return bool(http.is_success)

    def _messages(self, request: Any, prepared: Prepared) -> Generator[Ask, Any, Any]:
        admission = self._admit(prepared)
        try:
            if admission.waits:
                yield Hold(admission)
            if admission.prewarm:
                began = yield from self._prewarm(request, prepared)
                self._release(admission, ok=began)
            return (yield from self._sent(request, prepared, admission))
        finally:
            self._release(admission, ok=False)  # a lead that never began still wakes its followers

    def _sent(self, request: Any, prepared: Prepared, admission: Admission) -> Generator[Ask, Any, Any]:
        while True:
            changed = prepared.changed and bool(prepared.body)
            outgoing = request.copy(body=dict(prepared.body or {})) if changed else request
            try:
                response = yield Send(outgoing)
            except Exception as exc:
                self.tracker.fail(prepared, exc)
                raise
            http = response.http_response
            self._release(admission, ok=http.is_success)  # the response has begun: others may read
            if request.stream and http.is_success:
                return Tapped(response, self.tracker.tap(prepared, http.status_code, http.headers))
            content = yield Read(http)
            refused = self.tracker.misses.refuses(prepared.look, http.status_code, content)
            if not (refused or _rejected_marker(prepared, http.status_code, content)):
                self.tracker.finish(prepared, http.status_code, http.headers, content)
                return response
            prepared = self.tracker.unplanned(prepared.original)

    # -- sync ----------------------------------------------------------------------------------

    def handle(self, request: Any, call_next: Any) -> APIResponse[Any]:
        def answer(ask: Ask) -> Any:
            if isinstance(ask, Send):
                return call_next(ask.request)
            if isinstance(ask, Hold):
                with fail_open("fanout hold"):
                    self.fanout.wait(ask.admission)
                return None
            return ask.source.read() if isinstance(ask, Read) else self.tracker.ask_planner(ask)

        done = drive(self._flow(request), answer)
        if not isinstance(done, Tapped):
            return done  # type: ignore[no-any-return]
        http = done.response.http_response
        frames = Frames2(tap_sync(done.recorder, http.iter_bytes(), http.close))
        return _respond(APIResponse, done.response, frames)  # type: ignore[no-any-return]

    # -- async ---------------------------------------------------------------------------------

    async def handle_async(self, request: Any, call_next: Any) -> AsyncAPIResponse[Any]:
        async def answer(ask: Ask) -> Any:
            if isinstance(ask, Send):
                return await call_next(ask.request)
            if isinstance(ask, Hold):
                with fail_open("fanout hold"):
                    await self.fanout.await_(ask.admission)
                return None
            return await ask.source.aread() if isinstance(ask, Read) else await self.tracker.aask_planner(ask)

        done = await adrive(self._flow(request), answer)
        if not isinstance(done, Tapped):
            return done  # type: ignore[no-any-return]
        http = done.response.http_response
        frames = AsyncFrames2(tap_async(done.recorder, http.aiter_bytes(), http.aclose))
        return _respond(AsyncAPIResponse, done.response, frames)  # type: ignore[no-any-return]
