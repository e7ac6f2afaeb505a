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

__all__ = ["CLAUDE_API_ONLY_USAGE", "PlatformCall", "parse_body", "platform_event", "sse_events"]

#: Usage fields of the Claude API that the platforms' responses are taken not to carry: the TTL
#: split of the writes, and the Claude API's service tier, inference geography and speed
#: (docs/api-notes.md §7.1; the emulator answers with the conservative shape).
CLAUDE_API_ONLY_USAGE = ("cache_creation", "service_tier", "inference_geo", "speed")


def _usage(usage: Any) -> Any:
    if not isinstance(usage, dict):
        return usage
    return {k: v for k, v in usage.items() if k not in CLAUDE_API_ONLY_USAGE}


def platform_event(event: Any) -> Any:
    """A Message or stream event with the platform's usage shape."""
    if not isinstance(event, dict):
        return event
    if event.get("type") == "message_start" and isinstance(event.get("message"), dict):
        return {**event, "message": platform_event(event["message"])}
    if "usage" in event:
        return {**event, "usage": _usage(event["usage"])}
    return event


def sse_events(sse: Iterator[bytes]) -> Iterator[tuple[str, Any]]:
    """``(name, data)`` of each event in the emulator's own SSE chunks (whole events)."""
    for chunk in sse:
        name = "message"
        for line in chunk.split(b"\n"):
            if line.startswith(b"event:"):
                name = line[6:].strip().decode()
            elif line.startswith(b"data:"):
                yield name, json.loads(line[5:])


def _sse(sse: Iterator[bytes]) -> Iterator[bytes]:
    for name, data in sse_events(sse):
        yield f"event: {name}\ndata: {json.dumps(platform_event(data), separators=(',', ':'))}\n\n".encode()


@dataclass(frozen=True, slots=True)
class PlatformCall:
    """``path`` and ``body``: the first-party request; ``key``: who is calling (picks the workspace).

    ``regional``: the endpoint carries the regional premium (every endpoint but the global one).
    ``frames``: re-encodes the emulator's SSE chunks for a stream (default: SSE, usage reshaped).
    """

    platform: Literal["bedrock", "vertex"]
    path: str
    body: bytes
    key: str | None
    regional: bool
    streaming: bool
    frames: Callable[[Iterator[bytes]], Iterator[bytes]] = _sse
    stream_type: str | None = None

    def message(self, body: bytes) -> bytes:
        """A JSON Message reply in the platform's usage shape (any other body as it is)."""
        try:
            data = json.loads(body)
        except ValueError:
            return body
        return (
            dumps(platform_event(data)) if isinstance(data, dict) and data.get("type") == "message" else body
        )

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
