"""The gateway around the proxy app: ``/healthz``, ``/metrics``, and who is calling.

:class:`GatewayApp` is an ASGI app that wraps :func:`cachewise.integrations.proxy.create_proxy_app`:

* ``GET /healthz`` answers ``{"status": "ok"}`` (the process serves; nothing upstream is asked).
* ``GET /metrics`` serves :class:`~.metrics.ProxyMetrics` in Prometheus' text format.
* A batch created (``POST /v1/messages/batches``): its id is handed to the budget guard, which
  holds the batch's estimate until its results are recorded (released at once if creation failed).
* Every other request: the caller (:func:`~.caller.caller_of`: key id, ``x-cachewise-tags``) is
  read once, the tags header is dropped from what the proxy sees (so it never goes upstream), and
  the proxy runs inside ``cachewise.tags(...)`` of the caller's tags, so the call's record carries
  them (the key as its id only). A tags header that cannot be read is a 400 naming it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from ..integrations.tracker import CallKind, classify
from ..tags import tags
from .budgets import GatewayBudgets, error_response
from .caller import CALLER_SCOPE_KEY, TAGS_HEADER, TagHeaderError, caller_of
from .metrics import CONTENT_TYPE_LATEST, ProxyMetrics

__all__ = ["GatewayApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_TAGS_HEADER = TAGS_HEADER.encode()


async def _reply(send: Send, status: int, body: bytes, content_type: str) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _batch_id(body: bytes) -> str | None:
    """The ``id`` of a message batch object, or ``None``."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    found = parsed.get("id") if isinstance(parsed, dict) else None
    return found if isinstance(found, str) else None


class GatewayApp:
    """``inner`` (the proxy) with health, metrics and the caller's identity around it."""

    def __init__(
        self, inner: ASGIApp, *, metrics: ProxyMetrics | None = None, budgets: GatewayBudgets | None = None
    ) -> None:
        self.inner = inner
        self.metrics = metrics
        self.budgets = budgets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.inner(scope, receive, send)
            return
        path, method = scope["path"], scope["method"]
        if method == "GET" and path == "/healthz":
            await _reply(send, 200, b'{"status":"ok","pid":%d}' % os.getpid(), "application/json")
            return
        if method == "GET" and path == "/metrics" and self.metrics is not None:
            await _reply(send, 200, self.metrics.exposition(), CONTENT_TYPE_LATEST)
            return
        await self._proxied(scope, receive, send)

    async def _proxied(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw: list[tuple[bytes, bytes]] = scope["headers"]
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in raw}
        kind = classify(scope["method"], scope["path"])[0]
        status = 500
        try:
            caller = caller_of(headers)
        except TagHeaderError as exc:
            response = error_response(400, "invalid_request_error", f"cachewise gateway: {exc}")
            await response(scope, receive, send)
            status = 400
        else:
            batch = self.budgets is not None and kind == CallKind.BATCH_CREATE
            reply: list[bytes] = []

            async def sending(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = int(message["status"])
                elif batch and message["type"] == "http.response.body":
                    reply.append(message.get("body", b""))
                    if not message.get("more_body") and self.budgets is not None:
                        self.budgets.bind_batch(_batch_id(b"".join(reply)), created=200 <= status < 300)
                await send(message)

            inner_scope = {
                **scope,
                "headers": [(k, v) for k, v in raw if k.lower() != _TAGS_HEADER],
                CALLER_SCOPE_KEY: caller,
            }
            with tags(dict(caller.tags)):
                await self.inner(inner_scope, receive, sending)
        finally:
            if self.metrics is not None:
                self.metrics.request(kind.value, status)
