"""Byte streams that pass a response body through while a recorder watches it.

``tap_sync`` / ``tap_async`` feed each chunk to a recorder (a
:class:`~cachewise.integrations.tracker.StreamRecorder`) as it goes by, and close
the recorder exactly once: at the end, on an error, or when the reader stops
early. The ``Frames`` classes, which make such a generator the body of an ``httpx2``
or ``httpx`` response, live in the leaf :mod:`cachewise.httpstreams` (the emulator
uses them too); the ``httpx2`` ones are re-exported here (the ``httpx`` ones, ``Frames1`` and
``AsyncFrames1``, are imported from :mod:`cachewise.httpstreams`, on first use).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from ..httpstreams import AsyncFrames, AsyncFrames2, Frames, Frames2  # re-exported

__all__ = [
    "AsyncFrames",
    "AsyncFrames2",
    "Frames",
    "Frames2",
    "tap_async",
    "tap_sync",
]


class _Closing:
    """Closes the recorder once the body ends: normally, by an error (passed on), or cut short."""

    __slots__ = ("recorder",)

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: Any) -> None:
        self.recorder.close(None if isinstance(error, GeneratorExit) else error)


def tap_sync(recorder: Any, raw: Iterator[bytes], close: Callable[[], object]) -> Iterator[bytes]:
    try:
        with _Closing(recorder):
            for chunk in raw:
                recorder.feed(chunk)
                yield chunk
    finally:
        close()


async def tap_async(
    recorder: Any, raw: AsyncIterator[bytes], close: Callable[[], Awaitable[object]]
) -> AsyncIterator[bytes]:
    try:
        with _Closing(recorder):
            async for chunk in raw:
                recorder.feed(chunk)
                yield chunk
    finally:
        await close()
