"""The plain-``httpx`` twins of :mod:`cachewise.httpstreams`' byte streams (imported on first use)."""

from __future__ import annotations

import httpx

from .httpstreams import AsyncFrames, Frames

__all__ = ["AsyncFrames1", "Frames1"]


class Frames1(Frames, httpx.SyncByteStream):
    pass


class AsyncFrames1(AsyncFrames, httpx.AsyncByteStream):
    pass
