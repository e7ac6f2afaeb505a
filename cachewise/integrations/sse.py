"""Watch a Server-Sent Events body as it passes, without holding it back.

:class:`SSETap` takes the raw bytes of a Messages stream chunk by chunk, in
whatever pieces the network delivers them, and keeps the running usage
(replaced, never added), the time of the first content delta, and any
``error`` event. The bytes themselves are not changed or buffered beyond one
incomplete event.
"""

from __future__ import annotations

import json
import time
from typing import Any

from ..usage import StreamUsage

__all__ = ["SSETap"]


class SSETap:
    __slots__ = ("_buffer", "_started", "error_type", "events", "first_token_at", "stream")

    def __init__(self, started: float | None = None) -> None:
        self._buffer = b""
        self._started = time.perf_counter() if started is None else started
        self.stream = StreamUsage()
        self.first_token_at: float | None = None
        self.error_type: str | None = None
        self.events = 0

    @property
    def ttft_ms(self) -> float | None:
        if self.first_token_at is None:
            return None
        return (self.first_token_at - self._started) * 1000

    def feed(self, chunk: bytes) -> None:
        self._buffer += chunk
        while True:
            cut = _event_end(self._buffer)
            if cut is None:
                return
            end, sep = cut
            raw, self._buffer = self._buffer[:end], self._buffer[end + sep :]
            self._event(raw)

    def _event(self, raw: bytes) -> None:
        data_lines = [
            line[5:].lstrip()
            for line in raw.replace(b"\r\n", b"\n").split(b"\n")
            if line.startswith(b"data:")
        ]
        if not data_lines:
            return
        try:
            event: Any = json.loads(b"\n".join(data_lines))
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        self.events += 1
        kind = event.get("type")
        if kind == "content_block_delta" and self.first_token_at is None:
            self.first_token_at = time.perf_counter()
        elif kind == "error":
            error = event.get("error")
            self.error_type = str(error.get("type")) if isinstance(error, dict) else "error"
        self.stream.feed(event)


def _event_end(buffer: bytes) -> tuple[int, int] | None:
    best: tuple[int, int] | None = None
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        at = buffer.find(sep)
        if at != -1 and (best is None or at < best[0]):
            best = (at, len(sep))
    return best
