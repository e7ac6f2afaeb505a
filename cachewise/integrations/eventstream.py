"""Watch a Bedrock ``invoke-with-response-stream`` body: AWS event-stream frames around Messages events.

Each ``chunk`` frame's payload is ``{"bytes": "<base64 of one Messages stream event>"}``; the
events are the first-party ones (``message_start`` … ``message_stop``), so they go through the
same :class:`~cachewise.integrations.sse.SSETap` bookkeeping. The frames are decoded with
botocore's ``EventStreamBuffer`` (installed with the SDK's ``bedrock`` extra, which
``AnthropicBedrock`` needs anyway). An ``exception`` frame is recorded as the stream's error.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from .sse import SSETap

__all__ = ["EVENT_STREAM_TYPE", "EventStreamTap"]

EVENT_STREAM_TYPE = "application/vnd.amazon.eventstream"


class EventStreamTap(SSETap):
    __slots__ = ("_frames",)

    def __init__(self, started: float | None = None) -> None:
        super().__init__(started)
        from botocore.eventstream import EventStreamBuffer  # the bedrock extra

        self._frames: Any = EventStreamBuffer()

    def feed(self, chunk: bytes) -> None:
        self._frames.add_data(chunk)
        for frame in self._frames:
            headers = frame.headers
            if headers.get(":message-type") != "event":
                self.error_type = str(headers.get(":exception-type") or headers.get(":error-code") or "error")
                continue
            if headers.get(":event-type") != "chunk":
                continue
            payload = json.loads(frame.payload)
            raw = payload.get("bytes") if isinstance(payload, dict) else None
            if isinstance(raw, str):
                self._event(b"data: " + base64.b64decode(raw))
