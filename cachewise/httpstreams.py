"""Response bodies from generators, for ``httpx2`` (the SDK's HTTP library) and plain ``httpx``.

A leaf shared by the wrapper (``cachewise.integrations``) and the emulator's in-process
transports, which must not import each other: ``Frames2(chunks)`` is an
``httpx2.SyncByteStream`` whose body is the iterator ``chunks``; ``Frames1`` the same for
``httpx``, and ``AsyncFrames2`` / ``AsyncFrames1`` the async twins. Closing the stream
closes the generator (so its ``finally`` runs when a reader stops early).

``Frames1`` / ``AsyncFrames1`` live in :mod:`._httpstreams1` and are imported on first use: plain
``httpx`` imports its command line (click, rich, pygments), which the SDK's send path never needs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx2

if TYPE_CHECKING:
    from ._httpstreams1 import AsyncFrames1, Frames1

__all__ = ["AsyncFrames", "AsyncFrames1", "AsyncFrames2", "Frames", "Frames1", "Frames2"]


class Frames:
    def __init__(self, frames: Iterator[bytes]) -> None:
        self._frames = frames

    def __iter__(self) -> Iterator[bytes]:
        return self._frames

    def close(self) -> None:
        close = getattr(self._frames, "close", None)
        if close is not None:
            close()


class AsyncFrames:
    def __init__(self, frames: AsyncIterator[bytes]) -> None:
        self._frames = frames

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._frames

    async def aclose(self) -> None:
        close = getattr(self._frames, "aclose", None)
        if close is not None:
            await close()


class Frames2(Frames, httpx2.SyncByteStream):
    pass


class AsyncFrames2(AsyncFrames, httpx2.AsyncByteStream):
    pass


def __getattr__(name: str) -> Any:
    if name not in ("Frames1", "AsyncFrames1"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from . import _httpstreams1

    value = getattr(_httpstreams1, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
