"""A Bedrock or Vertex AI request, seen as the first-party Messages request it stands for.

:func:`platform_call` recognises the platforms' paths (``bedrock.py``, ``vertex.py``); the
emulator then serves the translated request like any other and hands the answer back through
:attr:`PlatformCall.frames` (a stream re-encoded in the platform's framing) and its headers.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .errors import ApiError

__all__ = ["PlatformCall", "parse_body"]


@dataclass(frozen=True, slots=True)
class PlatformCall:
    """``path`` and ``body``: the first-party request; ``key``: who is calling (picks the workspace).

    ``regional``: the endpoint carries the regional premium (every endpoint but the global one).
    ``frames``: re-encodes the emulator's SSE chunks for a stream (``None``: SSE as is).
    """

    platform: Literal["bedrock", "vertex"]
    path: str
    body: bytes
    key: str | None
    regional: bool
    streaming: bool
    frames: Callable[[Iterator[bytes]], Iterator[bytes]] | None = None
    stream_type: str | None = None

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        out = dict(headers)
        if self.platform == "bedrock" and "request-id" in out:
            out["x-amzn-requestid"] = out["request-id"]
        if self.stream_type is not None and out.get("content-type", "").startswith("text/event-stream"):
            out["content-type"] = self.stream_type
        return out


def parse_body(body: bytes, where: str) -> dict[str, Any]:
    try:
        data = json.loads(body) if body else {}
    except ValueError as exc:
        raise ApiError(400, "invalid_request_error", f"{where}: the body is not valid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_request_error", f"{where}: the body must be a JSON object")
    return data


def dumps(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()
