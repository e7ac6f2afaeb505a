"""The proxy's planner: counts prefixes at the upstream with the credentials of the request being planned.

The proxy holds no key of its own. While a request is planned, its
authentication headers sit in a context variable (:func:`caller_headers`), and
the token counter sends ``count_tokens`` to the upstream with exactly those
headers. They are never stored.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import httpx2

from ..errors import TokenCountError
from ..planner import CachePlanner
from ..tokens import COUNT_TOKENS_PATH, AsyncTokenCounter, read_reply

__all__ = ["UpstreamPlanner", "caller_headers", "upstream_planner"]

_AUTH_HEADERS = (
    "x-api-key",
    "authorization",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-workspace-id",
)
_current: ContextVar[dict[str, str] | None] = ContextVar("cachewise_proxy_caller", default=None)


@contextmanager
def caller_headers(headers: Mapping[str, str]) -> Iterator[None]:
    """Make the caller's authentication headers available to the counter for this block."""
    token = _current.set({k: v for k, v in headers.items() if k.lower() in _AUTH_HEADERS})
    try:
        yield
    finally:
        _current.reset(token)


class UpstreamPlanner(CachePlanner):
    """A :class:`CachePlanner` whose counter asks the upstream, as the caller; ``aclose`` when done."""

    def __init__(self, upstream: str, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self._http = httpx2.AsyncClient(base_url=upstream.rstrip("/"), timeout=30, transport=transport)
        super().__init__(counter=AsyncTokenCounter(self._count, namespace=f"proxy:{upstream}"))

    async def _count(self, body: dict[str, Any]) -> int:
        headers = _current.get()
        if not headers:
            raise TokenCountError("no caller credentials to count with")
        return read_reply(await self._http.post(COUNT_TOKENS_PATH, json=body, headers=headers))

    async def aclose(self) -> None:
        await self._http.aclose()


def upstream_planner(upstream: str, *, transport: httpx2.AsyncBaseTransport | None = None) -> UpstreamPlanner:
    return UpstreamPlanner(upstream, transport=transport)
