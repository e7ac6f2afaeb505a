"""The ASGI app (starlette): every HTTP request goes to :meth:`Emulator.handle` in a worker thread.

Streaming replies go out chunk by chunk; a ``stream_cut`` fault ends the ASGI response
without its final chunk, so the server drops the connection mid-stream.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Send

from .emulator import Emulator, HttpRequest
from .errors import StreamCut

__all__ = ["create_app"]

_METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH"]


class _SSEResponse(StreamingResponse):
    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                data = (
                    chunk
                    if isinstance(chunk, bytes)
                    else bytes(chunk)
                    if isinstance(chunk, memoryview)
                    else chunk.encode()
                )
                await send({"type": "http.response.body", "body": data, "more_body": True})
        except StreamCut:
            return  # leave the response incomplete: the server closes the connection
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def create_app(emulator: Emulator) -> Starlette:
    """A starlette app serving ``emulator`` on every path."""

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        incoming = HttpRequest(
            method=request.method,
            path=request.url.path,
            query=list(request.query_params.multi_items()),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            base_url=str(request.base_url),
        )
        answer = await run_in_threadpool(emulator.handle, incoming)
        if answer.stream is None:
            return Response(answer.body, status_code=answer.status, headers=answer.headers)
        return _SSEResponse(answer.stream, status_code=answer.status, headers=answer.headers)

    app = Starlette(routes=[Route("/{path:path}", endpoint, methods=_METHODS)])
    app.state.emulator = emulator
    return app
