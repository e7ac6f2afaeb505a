"""The SSE event sequence of a streamed Message (docs/api-notes.md §3.2).

``message_start`` (full usage, with the ``cache_creation`` TTL split and
``service_tier``/``inference_geo``/``speed``) → per block ``content_block_start`` /
``content_block_delta``… / ``content_block_stop`` (a ``ping`` after the first start) →
``message_delta`` with cumulative usage (never the TTL split, tier, geo or speed) →
``message_stop``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .responses import Reply

__all__ = ["encode_event", "sse_events"]

_TEXT_CHUNK_WORDS = 4
_JSON_CHUNK_CHARS = 16


def encode_event(name: str, data: Any) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _text_chunks(text: str) -> list[str]:
    words = text.split(" ")
    chunks = []
    for i in range(0, len(words), _TEXT_CHUNK_WORDS):
        piece = " ".join(words[i : i + _TEXT_CHUNK_WORDS])
        chunks.append(piece if i == 0 else " " + piece)
    return [c for c in chunks if c]


def sse_events(message: dict[str, Any], reply: Reply) -> Iterator[bytes]:
    usage = message["usage"]
    start_usage = {**usage, "output_tokens": min(1, usage["output_tokens"])}
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None, "usage": start_usage}
    yield encode_event("message_start", {"type": "message_start", "message": start})
    for index, block in enumerate(reply.content):
        if block["type"] == "text":
            opening: dict[str, Any] = {"type": "text", "text": ""}
            deltas = [{"type": "text_delta", "text": c} for c in _text_chunks(block["text"])]
        else:
            opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
            raw = json.dumps(block["input"], separators=(",", ":"))
            deltas = [
                {"type": "input_json_delta", "partial_json": raw[i : i + _JSON_CHUNK_CHARS]}
                for i in range(0, len(raw), _JSON_CHUNK_CHARS)
            ]
        yield encode_event(
            "content_block_start", {"type": "content_block_start", "index": index, "content_block": opening}
        )
        if index == 0:
            yield encode_event("ping", {"type": "ping"})
        for delta in deltas:
            yield encode_event(
                "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
            )
        yield encode_event("content_block_stop", {"type": "content_block_stop", "index": index})
    final_usage = {
        "input_tokens": usage["input_tokens"],
        "cache_creation_input_tokens": usage["cache_creation_input_tokens"],
        "cache_read_input_tokens": usage["cache_read_input_tokens"],
        "output_tokens": usage["output_tokens"],
    }
    delta = {"stop_reason": message["stop_reason"], "stop_sequence": message["stop_sequence"]}
    yield encode_event("message_delta", {"type": "message_delta", "delta": delta, "usage": final_usage})
    yield encode_event("message_stop", {"type": "message_stop"})
