"""The emulator's clock: virtual by default (deterministic tests), or real time plus an offset.

Every time the emulator uses (request start, TTL expiry, batch processing, the bill)
comes from one :class:`Clock`, so ``advance(seconds)`` moves all of them together.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

__all__ = ["DEFAULT_START", "Clock"]

DEFAULT_START = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)


class Clock:
    """A virtual clock starting at ``start`` (aware UTC); ``real=True`` follows the wall clock."""

    def __init__(self, start: datetime | None = None, *, real: bool = False) -> None:
        if start is not None and start.tzinfo is None:
            raise ValueError(f"clock start {start.isoformat()} has no timezone; pass an aware UTC datetime")
        self.real = real
        self.start = (start or (datetime.now(UTC) if real else DEFAULT_START)).astimezone(UTC)
        self._offset = timedelta()
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            base = datetime.now(UTC) if self.real else self.start
            return base + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError(f"the clock only moves forward; got {seconds} seconds")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
        return self.now()

    def reset(self) -> None:
        with self._lock:
            self._offset = timedelta()
