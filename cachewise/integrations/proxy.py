"""``cachewise proxy``: a local HTTP proxy that plans and records Messages calls for any language.

Point a client at it with ``ANTHROPIC_BASE_URL=http://127.0.0.1:8787``. Every
request is forwarded to the upstream (default ``https://api.anthropic.com``)
with the caller's own headers, API key included: keys pass through and are
never stored or logged. ``POST /v1/messages`` is planned and recorded like the
SDK wrapper does; streams pass through chunk by chunk, unbuffered.

Some resellers answer ``{"code": 200, "data": {...message...}}``; the proxy
records the inner message and, with ``unwrap_envelopes`` (the default),
returns it unwrapped so that standard clients can parse it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from .proxy_planner import caller_headers
from .streams import tap_async
from .tracker import CallKind, CallTracker, classify, unwrap_envelope

__all__ = ["create_proxy_app"]

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
}
_DROP_FROM_UPSTREAM = {"content-length", "content-encoding", "transfer-encoding", "connection"}


def _forward_headers(headers: Mapping[str, str]) -> dict[str, str]:
    out = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
    out["accept-encoding"] = "identity"
    return out


def _reply_headers(headers: httpx2.Headers) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() not in _DROP_FROM_UPSTREAM}


def create_proxy_app(
    tracker: CallTracker,
    *,
    upstream: str = "https://api.anthropic.com",
    unwrap_envelopes: bool = True,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> Starlette:
    """The proxy as an ASGI app (``uvicorn`` serves it in ``cachewise proxy``)."""
    client = httpx2.AsyncClient(
        base_url=upstream.rstrip("/"), timeout=httpx2.Timeout(600, connect=10), transport=transport
    )

    async def forward(request: Request) -> Response:
        path = request.url.path
        query = request.url.query
        target = f"{path}?{query}" if query else path
        content = await request.body()
        kind, _ = classify(request.method, path)
        headers = _forward_headers(request.headers)
        if kind != CallKind.MESSAGES:
            upstream_reply = await client.request(request.method, target, headers=headers, content=content)
            return Response(
                upstream_reply.content,
                upstream_reply.status_code,
                headers=_reply_headers(upstream_reply.headers),
            )
        try:
            body: Any = json.loads(content) if content else None
        except ValueError:
            body = None
        with caller_headers(request.headers):
            prepared = await tracker.aprepare(body if isinstance(body, Mapping) else None)
        payload = json.dumps(prepared.body).encode() if prepared.changed and prepared.body else content
        outgoing = client.build_request(request.method, target, headers=headers, content=payload)
        upstream_reply = await client.send(outgoing, stream=True)
        streaming = isinstance(body, Mapping) and bool(body.get("stream")) and upstream_reply.is_success
        if streaming:
            recorder = tracker.tap(prepared, upstream_reply.status_code, upstream_reply.headers)

            return StreamingResponse(
                tap_async(recorder, upstream_reply.aiter_raw(), upstream_reply.aclose),
                upstream_reply.status_code,
                headers=_reply_headers(upstream_reply.headers),
            )
        data = await upstream_reply.aread()
        await upstream_reply.aclose()
        tracker.finish(prepared, upstream_reply.status_code, upstream_reply.headers, data)
        if unwrap_envelopes:
            try:
                parsed = json.loads(data)
            except ValueError:
                parsed = None
            inner = unwrap_envelope(parsed)
            if inner is not parsed:
                return Response(
                    json.dumps(inner),
                    upstream_reply.status_code,
                    headers={**_reply_headers(upstream_reply.headers), "content-type": "application/json"},
                )
        return Response(data, upstream_reply.status_code, headers=_reply_headers(upstream_reply.headers))

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()
        close = getattr(tracker.planner, "aclose", None)
        if close is not None:
            await close()

    methods = ["GET", "POST", "DELETE", "PUT", "PATCH"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)
