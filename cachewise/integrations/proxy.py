"""``cachewise proxy``: a local HTTP proxy that plans and records Messages calls for any language.

Point a client at it with ``ANTHROPIC_BASE_URL=http://127.0.0.1:8787``. Every
request is forwarded to the upstream (default ``https://api.anthropic.com``)
with the caller's own headers, API key included: keys pass through and are
never stored or logged. ``POST /v1/messages`` is planned and recorded like the
SDK wrapper does; streams pass through chunk by chunk, unbuffered.

What the proxy promises (docs/wrapper.md):

* A body above the limit (default: the API's own, 32 MB, 256 MB for batch
  creation; docs/wrapper.md cites the source) is answered 413 with the API's
  ``request_too_large`` error body; reading stops at the limit, nothing is sent.
* An upstream that cannot be reached is answered 502 (no connection, broken
  reply) or 504 (timeout) with an API-shaped error body; a Messages call that
  failed so is an error row in the ledger, under the ``request_id`` of the body.
* Batch results read through the proxy are one row per result, as through the
  wrapped SDK client; batch objects passing through point their ``results_url``
  at the proxy, so clients that follow it (the SDK does) read results through it.
* A body the proxy cannot parse (not JSON, nested too deep) or plan goes
  upstream byte for byte as received.

Some resellers answer ``{"code": 200, "data": {...message...}}``; the proxy
records the inner message and, with ``unwrap_envelopes`` (the default),
returns it unwrapped so that standard clients can parse it.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import httpx2
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from ..failopen import guarded
from .batch_planner import BatchPlanner, planned_batch
from .batches import BatchTimes, ResultLines
from .fanout import FanOut, scope_of
from .proxy_planner import caller_headers
from .streams import tap_async
from .tracker import CallKind, CallTracker, classify, read_reply, unwrap_envelope
from .upstream import UpstreamReply, upstream_client

__all__ = ["API_BATCH_BODY_LIMIT", "API_BODY_LIMIT", "Admit", "ProxyApp", "create_proxy_app"]

#: ``create_proxy_app(admit=...)``: the request and its planned attempt → a refusal, or ``None``.
#: The gateway's admission check: the request and its parsed body, before anything is planned or sent.
Admit = Callable[[Request, Any], Awaitable[Response | None]]

#: The API's request-size limits (docs/wrapper.md, "Limits"): Messages and count_tokens, Batches.
API_BODY_LIMIT = 32 * 1024 * 1024
API_BATCH_BODY_LIMIT = 256 * 1024 * 1024

_HOP_BY_HOP = {
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "upgrade",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "accept-encoding",
    "x-cachewise-tags",  # the gateway's own (cachewise.gateway.caller)
}
_DROP_FROM_UPSTREAM = {"content-length", "content-encoding", "transfer-encoding", "connection"}


def _forward_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
    out["accept-encoding"] = "identity"
    return out


def _reply_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _DROP_FROM_UPSTREAM}


def _local_id() -> str:
    return f"local_{uuid.uuid4().hex}"


def api_error(status: int, error_type: str, message: str, request_id: str) -> JSONResponse:
    """A response shaped like the API's own errors (``{"type": "error", "error": {...}, ...}``)."""
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return JSONResponse(body, status, headers={"request-id": request_id})


def _upstream_failed(exc: httpx2.TransportError, upstream: str, request_id: str) -> JSONResponse:
    if isinstance(exc, httpx2.TimeoutException):
        return api_error(
            504, "timeout_error", f"cachewise proxy: the upstream {upstream} timed out ({exc!r})", request_id
        )
    return api_error(
        502,
        "api_error",
        f"cachewise proxy: the upstream {upstream} could not be reached ({exc!r})",
        request_id,
    )


async def _read_body(request: Request, limit: int) -> bytes | None:
    """The request body, or ``None`` once it passes ``limit`` bytes (read no further)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    content = bytearray()
    async for chunk in request.stream():
        if len(content) + len(chunk) > limit:
            return None
        content += chunk
    return bytes(content)


def create_proxy_app(
    tracker: CallTracker,
    *,
    upstream: str = "https://api.anthropic.com",
    unwrap_envelopes: bool = True,
    transport: httpx2.AsyncBaseTransport | None = None,
    max_body_bytes: int | None = None,
    timeout: httpx2.Timeout | float | None = None,
    admit: Admit | None = None,
    fanout: FanOut | None = None,
    batch_planner: BatchPlanner | None = None,
) -> ProxyApp:
    """The proxy as an ASGI app (``uvicorn`` serves it in ``cachewise proxy``).

    ``max_body_bytes``: refuse bodies above this size (default: the API's own limits).
    ``timeout``: for the upstream (default 600 s, 10 s to connect).
    ``admit``: called for each Messages call and batch creation with its parsed body, before it is
    planned or sent; a
    :class:`Response` it returns is the answer (a refusal, ``cachewise.gateway.GatewayBudgets.admit``)
    and nothing goes upstream, ``None`` lets the call through. Finished calls reach the tracker's
    sinks as :class:`~cachewise.CallRecord`.
    ``fanout``: holds concurrent calls on a cold prefix (per API key) until the first one's response
    begins (default ``FanOut("hold")``, :mod:`.fanout`). ``batch_planner``: plans batch create bodies.
    """
    fanout = fanout if fanout is not None else FanOut("hold")
    base = upstream.rstrip("/")
    if timeout is None:
        timeout = httpx2.Timeout(600, connect=10)
    elif not isinstance(timeout, httpx2.Timeout):
        timeout = httpx2.Timeout(timeout)
    client = upstream_client(base, timeout=timeout, transport=transport)
    batches = BatchTimes()

    def limit_for(kind: CallKind) -> int:
        if max_body_bytes is not None:
            return max_body_bytes
        return API_BATCH_BODY_LIMIT if kind == CallKind.BATCH_CREATE else API_BODY_LIMIT

    def batch_objects(data: bytes, proxy_base: str) -> bytes:
        """Remember batch creation times; point ``results_url`` at the proxy. Other bodies unchanged."""
        payload = read_reply(data)
        if not isinstance(payload, dict):
            return data
        batches.remember(payload)
        page = payload.get("data")
        items = page if payload.get("type") != "message_batch" and isinstance(page, list) else [payload]
        changed = False
        for item in items:
            url = item.get("results_url") if isinstance(item, dict) else None
            if isinstance(url, str) and url.startswith(base + "/"):
                item["results_url"] = proxy_base + url[len(base) :]
                changed = True
        return json.dumps(payload).encode() if changed else data

    async def forward(request: Request) -> Response:
        path: str = request.scope["path"]
        query: bytes = request.scope["query_string"]
        target = f"{path}?{query.decode('latin-1')}" if query else path
        kind, batch_id = classify(request.method, path)
        limit = limit_for(kind)
        content = await _read_body(request, limit)
        if content is None:
            return api_error(
                413,
                "request_too_large",
                f"Request exceeds the maximum allowed number of bytes ({limit}); refused by the cachewise "
                "proxy before sending (see --max-body-bytes)",
                _local_id(),
            )
        headers = _forward_headers(request.headers)
        if kind == CallKind.MESSAGES:
            return await messages(request, target, headers, content)
        if kind == CallKind.BATCH_CREATE and admit is not None:  # a batch is admitted as a whole
            refused = await admit(request, read_reply(content))
            if refused is not None:
                return refused
        if kind == CallKind.BATCH_CREATE and batch_planner is not None:
            raw, planner = content, batch_planner
            content = guarded("batch planner", lambda: planned_batch(planner, raw), raw)
        try:
            reply = await client.send(request.method, target, headers, content)
        except httpx2.TransportError as exc:
            return _upstream_failed(exc, base, _local_id())
        if kind == CallKind.BATCH_RESULTS and batch_id is not None and reply.is_success:
            started = batches.created(batch_id) or tracker.clock()
            return PassThrough(
                tap_async(ResultLines(tracker, batch_id, started), reply.aiter_raw(), reply.aclose),
                reply.status_code,
                _reply_headers(reply.headers),
            )
        try:
            data = await reply.aread()
        except httpx2.TransportError as exc:
            return _upstream_failed(exc, base, _local_id())
        finally:
            await reply.aclose()
        if "/v1/messages/batches" in path and reply.is_success:
            proxy_base = str(request.base_url).rstrip("/")
            data = guarded("batch object", lambda: batch_objects(data, proxy_base), data)
        return Response(data, reply.status_code, headers=_reply_headers(reply.headers))

    async def messages(request: Request, target: str, headers: dict[str, str], content: bytes) -> Response:
        body = read_reply(content)
        if admit is not None and (refused := await admit(request, body)) is not None:
            return refused
        with caller_headers(request.headers):
            prepared = await tracker.aprepare(body if isinstance(body, Mapping) else None)
        payload = prepared.payload if prepared.payload is not None else content
        held = await fanout.ahold(prepared, tracker.clock(), scope=scope_of(request.headers))
        try:
            reply: UpstreamReply = await client.send(request.method, target, headers, payload)
            fanout.release(held, ok=reply.is_success, now=tracker.clock())
        except httpx2.TransportError as exc:
            fanout.release(held, ok=False, now=tracker.clock())
            request_id = _local_id()
            tracker.fail(prepared, exc, request_id=request_id)
            return _upstream_failed(exc, base, request_id)
        streaming = isinstance(body, Mapping) and bool(body.get("stream")) and reply.is_success
        if streaming:
            recorder = tracker.tap(prepared, reply.status_code, reply.headers)
            return PassThrough(
                tap_async(recorder, reply.aiter_raw(), reply.aclose),
                reply.status_code,
                _reply_headers(reply.headers),
            )
        try:
            data = await reply.aread()
        except httpx2.TransportError as exc:
            request_id = _local_id()
            tracker.fail(prepared, exc, request_id=request_id)
            return _upstream_failed(exc, base, request_id)
        finally:
            await reply.aclose()
        parsed = read_reply(data)  # read once, for the record and the envelope
        tracker.finish(prepared, reply.status_code, reply.headers, data, parsed=parsed)
        if unwrap_envelopes:
            inner = unwrap_envelope(parsed)
            if inner is not parsed:
                return Response(
                    json.dumps(inner),
                    reply.status_code,
                    headers={**_reply_headers(reply.headers), "content-type": "application/json"},
                )
        return Response(data, reply.status_code, headers=_reply_headers(reply.headers))

    async def close() -> None:
        await client.aclose()
        close_planner = getattr(tracker.planner, "aclose", None)
        if close_planner is not None:
            await close_planner()

    return ProxyApp(forward, close)


Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class PassThrough(Response):
    """A response whose body is the upstream's, chunk by chunk as it arrives, not re-encoded.

    Like starlette's ``StreamingResponse`` for a server of ASGI spec 2.3 (uvicorn): when the client
    goes away the stream stops at once (the body's generator is closed, so a recorder watching it
    records the call as incomplete and the upstream connection is let go). One watcher task waits
    for the disconnect and cancels the sending task, in place of an anyio task group, a cancel scope
    and two tasks per response; the body's generator is closed before the response returns.
    """

    def __init__(self, body: AsyncIterator[bytes], status_code: int, headers: Mapping[str, str]) -> None:
        self.body_iterator = body
        self.status_code = status_code
        self.background = None
        self.init_headers(headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task = asyncio.current_task()
        left = False

        async def watch() -> None:
            nonlocal left
            while (await receive())["type"] != "http.disconnect":
                pass
            left = True
            if task is not None:
                task.cancel()

        watcher = asyncio.ensure_future(watch())
        body = self.body_iterator
        try:
            await send(
                {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            )
            async for chunk in body:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except asyncio.CancelledError:
            if not left or task is None:
                raise
            task.uncancel()  # the watcher's own cancel: the client left, nothing more to send
        finally:
            watcher.cancel()
            await _aclose(body)


async def _aclose(body: AsyncIterator[bytes]) -> None:
    close = getattr(body, "aclose", None)
    if close is not None:
        await close()


#: The methods forwarded (HEAD with GET, as a router does); others are answered 405.
_METHODS = frozenset({"GET", "HEAD", "POST", "DELETE", "PUT", "PATCH"})
_ALLOW = ", ".join(sorted(_METHODS))


class ProxyApp:
    """An ASGI app that hands every HTTP request to ``handle`` and runs ``close`` at shutdown.

    One request object and one response per call, no router or middleware stack: every path
    goes to the same handler, so there is nothing to route.
    """

    def __init__(
        self, handle: Callable[[Request], Awaitable[Response]], close: Callable[[], Awaitable[None]]
    ) -> None:
        self.handle = handle
        self.close = close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            if scope["method"] in _METHODS:
                response = await self.handle(Request(scope, receive))
            else:
                response = PlainTextResponse("Method Not Allowed", 405, headers={"allow": _ALLOW})
            await response(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                try:
                    await self.close()
                except Exception as exc:
                    await send({"type": "lifespan.shutdown.failed", "message": repr(exc)})
                    raise
                await send({"type": "lifespan.shutdown.complete"})
                return
