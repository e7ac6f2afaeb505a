"""Transports that remember what was sent (path and bytes), then send it: for tests that compare bodies."""

from __future__ import annotations

import httpx2

Sent = list[tuple[str, bytes]]


class SyncRecording(httpx2.BaseTransport):
    def __init__(self, inner: httpx2.BaseTransport | None = None) -> None:
        self.inner = inner or httpx2.HTTPTransport()
        self.sent: Sent = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append((request.url.path, request.read()))
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()

    def bodies(self, path: str = "/v1/messages") -> list[bytes]:
        return [content for sent_to, content in self.sent if sent_to == path]


class AsyncRecording(httpx2.AsyncBaseTransport):
    def __init__(self, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx2.AsyncHTTPTransport()
        self.sent: Sent = []

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append((request.url.path, await request.aread()))
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()

    def bodies(self, path: str = "/v1/messages") -> list[bytes]:
        return [content for sent_to, content in self.sent if sent_to == path]
