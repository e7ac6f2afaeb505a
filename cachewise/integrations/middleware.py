"""The ``anthropic`` SDK middleware that plans and records every Messages call.

It runs inside the SDK's retry loop, once per HTTP attempt (docs/api-notes.md §7), so
each billed attempt becomes one ledger row and each failed attempt an error
row with no cost. Bodies are rewritten only through ``APIRequest.copy``; a
streamed body is watched chunk by chunk as the caller reads it, never
buffered. If the server rejects a request the planner changed with a 400 that
names ``cache_control``, the request is sent again exactly as the user wrote it.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Iterator, Mapping
from datetime import datetime
from typing import Any

import httpx2
from anthropic import Middleware
from anthropic._response import APIResponse, AsyncAPIResponse

from .failopen import guarded, record_failure
from .streams import AsyncFrames2, Frames2, tap_async, tap_sync
from .tracker import CallKind, CallTracker, Prepared, classify

__all__ = ["CachewiseMiddleware"]

_BATCH = re.compile(r"/v1/messages/batches/([^/?]+)$")


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


def _rejected_marker(prepared: Prepared, status: int, content: bytes) -> bool:
    """The API refused a request the planner changed, over a marker: resend it as the user wrote it."""
    rejected = prepared.changed and status == 400 and b"cache_control" in content
    if rejected:
        record_failure("planner (request rejected)", ValueError(content[:300].decode(errors="replace")))
    return rejected


class CachewiseMiddleware(Middleware):
    """Plans (``prepare``) and records (``finish``/``tap``) through a :class:`CallTracker`."""

    def __init__(self, tracker: CallTracker) -> None:
        self.tracker = tracker
        self._batch_times: dict[str, datetime] = {}

    # -- shared helpers -------------------------------------------------------------------------

    def _remember_batch(self, url: str, content: bytes) -> None:
        found = _BATCH.search(url.split("?", 1)[0])
        if not found:
            return
        data = json.loads(content)
        created = data.get("created_at") if isinstance(data, Mapping) else None
        if created:
            self._batch_times[found.group(1)] = datetime.fromisoformat(str(created).replace("Z", "+00:00"))

    def _batch_started(self, batch_id: str) -> datetime:
        return self._batch_times.get(batch_id) or self.tracker.clock()

    def _lines(self, batch_id: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        pending = b""
        started = self._batch_started(batch_id)
        for chunk in chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                self.tracker.record_batch_line(batch_id, line, started)
            yield chunk
        self.tracker.record_batch_line(batch_id, pending, started)

    # -- sync ----------------------------------------------------------------------------------

    def handle(self, request: Any, call_next: Any) -> APIResponse[Any]:
        kind, batch_id = classify(request.method, request.url)
        if kind == CallKind.OTHER:
            response: APIResponse[Any] = call_next(request)
            if _BATCH.search(request.url.split("?", 1)[0]) and response.http_response.is_success:
                content = response.http_response.read()
                guarded("batch retrieve", lambda: self._remember_batch(request.url, content), None)
            return response
        if kind == CallKind.BATCH_RESULTS and batch_id is not None:
            response = call_next(request)
            if not response.http_response.is_success:
                return response
            return self._respond(response, self._lines(batch_id, response.http_response.iter_bytes()))
        if kind != CallKind.MESSAGES:
            passed: APIResponse[Any] = call_next(request)
            return passed
        body = request.json if isinstance(request.json, Mapping) else None
        return self._messages(request, call_next, self.tracker.prepare(body, retry=request.retries_taken > 0))

    def _messages(self, request: Any, call_next: Any, prepared: Prepared) -> APIResponse[Any]:
        outgoing = request.copy(body=dict(prepared.body)) if prepared.changed and prepared.body else request
        try:
            response: APIResponse[Any] = call_next(outgoing)
        except Exception as exc:
            self.tracker.fail(prepared, exc)
            raise
        http = response.http_response
        if not request.stream or not http.is_success:
            content = http.read()
            if _rejected_marker(prepared, http.status_code, content):
                return self._messages(request, call_next, self.tracker.unplanned(prepared.original))
            self.tracker.finish(prepared, http.status_code, http.headers, content)
            return response
        recorder = self.tracker.tap(prepared, http.status_code, http.headers)
        return self._respond(response, tap_sync(recorder, http.iter_bytes(), http.close))

    @staticmethod
    def _respond(response: APIResponse[Any], frames: Iterator[bytes]) -> APIResponse[Any]:
        return APIResponse(
            raw=_spliced(response.http_response, Frames2(frames)),
            cast_to=response._cast_to,
            client=response._client,
            stream=True,
            stream_cls=response._stream_cls,
            options=response._options,
            retries_taken=response.retries_taken,
        )

    # -- async ---------------------------------------------------------------------------------

    async def handle_async(self, request: Any, call_next: Any) -> AsyncAPIResponse[Any]:
        kind, batch_id = classify(request.method, request.url)
        if kind == CallKind.OTHER:
            response: AsyncAPIResponse[Any] = await call_next(request)
            if _BATCH.search(request.url.split("?", 1)[0]) and response.http_response.is_success:
                content = await response.http_response.aread()
                guarded("batch retrieve", lambda: self._remember_batch(request.url, content), None)
            return response
        if kind == CallKind.BATCH_RESULTS and batch_id is not None:
            response = await call_next(request)
            if not response.http_response.is_success:
                return response
            return self._respond_async(response, self._alines(batch_id, response.http_response.aiter_bytes()))
        if kind != CallKind.MESSAGES:
            passed_async: AsyncAPIResponse[Any] = await call_next(request)
            return passed_async
        body = request.json if isinstance(request.json, Mapping) else None
        prepared = await self.tracker.aprepare(body, retry=request.retries_taken > 0)
        return await self._amessages(request, call_next, prepared)

    async def _amessages(self, request: Any, call_next: Any, prepared: Prepared) -> AsyncAPIResponse[Any]:
        outgoing = request.copy(body=dict(prepared.body)) if prepared.changed and prepared.body else request
        try:
            response: AsyncAPIResponse[Any] = await call_next(outgoing)
        except Exception as exc:
            self.tracker.fail(prepared, exc)
            raise
        http = response.http_response
        if not request.stream or not http.is_success:
            content = await http.aread()
            if _rejected_marker(prepared, http.status_code, content):
                return await self._amessages(request, call_next, self.tracker.unplanned(prepared.original))
            self.tracker.finish(prepared, http.status_code, http.headers, content)
            return response
        recorder = self.tracker.tap(prepared, http.status_code, http.headers)
        return self._respond_async(response, tap_async(recorder, http.aiter_bytes(), http.aclose))

    async def _alines(self, batch_id: str, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        pending = b""
        started = self._batch_started(batch_id)
        async for chunk in chunks:
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                self.tracker.record_batch_line(batch_id, line, started)
            yield chunk
        self.tracker.record_batch_line(batch_id, pending, started)

    @staticmethod
    def _respond_async(
        response: AsyncAPIResponse[Any], frames: AsyncIterator[bytes]
    ) -> AsyncAPIResponse[Any]:
        return AsyncAPIResponse(
            raw=_spliced(response.http_response, AsyncFrames2(frames)),
            cast_to=response._cast_to,
            client=response._client,
            stream=True,
            stream_cls=response._stream_cls,
            options=response._options,
            retries_taken=response.retries_taken,
        )
