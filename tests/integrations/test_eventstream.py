"""The Bedrock stream tap: usage from event-stream frames fed in arbitrary pieces; exception frames."""

from __future__ import annotations

import base64
import json
from typing import Any

from cachewise.emulator.bedrock import encode_frame
from cachewise.integrations.eventstream import EventStreamTap


def _chunk(event: dict[str, Any]) -> bytes:
    payload = json.dumps({"bytes": base64.b64encode(json.dumps(event).encode()).decode()}).encode()
    return encode_frame({":event-type": "chunk", ":message-type": "event"}, payload)


START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "model": "claude-haiku-4-5-20251001",
        "usage": {"input_tokens": 7, "cache_creation_input_tokens": 5000, "output_tokens": 1},
    },
}
DELTA = {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}}
END = {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}}


def test_usage_from_frames_split_anywhere() -> None:
    body = b"".join(_chunk(e) for e in (START, DELTA, END, {"type": "message_stop"}))
    tap = EventStreamTap()
    for i in range(0, len(body), 13):
        tap.feed(body[i : i + 13])
    assert tap.events == 4
    assert tap.first_token_at is not None
    assert tap.stream.complete
    usage = tap.stream.reading.usage
    assert (usage.input_tokens, usage.output_tokens, usage.ephemeral_5m_input_tokens) == (7, 9, 5000)
    assert usage.ttl_split_missing


def test_an_exception_frame_is_the_streams_error() -> None:
    tap = EventStreamTap()
    tap.feed(_chunk(START))
    tap.feed(
        encode_frame(
            {":message-type": "exception", ":exception-type": "throttlingException"}, b'{"message":"slow"}'
        )
    )
    assert tap.error_type == "throttlingException"
    assert not tap.stream.complete
