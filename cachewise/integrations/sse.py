"""Watch a Server-Sent Events body as it passes, without holding it back.

:class:`SSETap` takes the raw bytes of a Messages stream chunk by chunk, in
whatever pieces the network delivers them, and keeps the running usage
(replaced, never added), the time of the first content delta, and any
``error`` event. The bytes themselves are not changed or buffered beyond one
incomplete event.
"""

from __future__ import annotations

import time
from typing import Any

from ..usage import StreamUsage
from ._json import read_json

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
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\r" not in buffer:  # the API's own line ends: cut every whole event at once
            *events, self._buffer = buffer.split(b"\n\n")
            for raw in events:
                self._event(raw)
            return
        while True:
            cut = _event_end(buffer)
            if cut is None:
                self._buffer = buffer
                return
            end, sep = cut
            raw, buffer = buffer[:end], buffer[end + sep :]
            self._event(raw)

    def _event(self, raw: bytes) -> None:
        if b"\r" in raw:
            raw = raw.replace(b"\r\n", b"\n")
        data_lines = [line[5:].lstrip() for line in raw.split(b"\n") if line.startswith(b"data:")]
        if not data_lines:
            return
        if len(data_lines) == 1 and _passing(data_lines[0]):
            # A content block or ping event, recognised by its opening bytes: nothing of it is
            # kept but the time of the first delta, so it is not parsed.
            self.events += 1
            if self.first_token_at is None and data_lines[0].startswith(_DELTA):
                self.first_token_at = time.perf_counter()
            return
        if len(data_lines) == 1 and data_lines[0].rstrip() == _STOP:
            # The end of the message, as the API writes it: what feeding it parsed would do.
            self.events += 1
            self.stream.stop()
            return
        try:
            event: Any = read_json(b"\n".join(data_lines))
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


_STOP = b'{"type":"message_stop"}'
_DELTA = b'{"type":"content_block_delta"'
_PASSING = (_DELTA, b'{"type":"content_block_start"', b'{"type":"content_block_stop"', b'{"type":"ping"')


def _passing(data: bytes) -> bool:
    """An event that carries no usage and no error (its type comes first, as the API writes it)."""
    return data.startswith(_PASSING) and data.rstrip().endswith(b"}")


def _event_end(buffer: bytes) -> tuple[int, int] | None:
    if b"\r" not in buffer:
        at = buffer.find(b"\n\n")
        return None if at == -1 else (at, 2)
    best: tuple[int, int] | None = None
    for sep in (b"\n\n", b"\r\n\r\n", b"\r\r"):
        at = buffer.find(sep)
        if at != -1 and (best is None or at < best[0]):
            best = (at, len(sep))
    return best
