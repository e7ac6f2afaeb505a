"""Byte streams that pass a response body through while a recorder watches it.

``tap_sync`` / ``tap_async`` feed each chunk to a recorder (a
:class:`~cachewise.integrations.tracker.StreamRecorder`) as it goes by, and close
the recorder exactly once: at the end, on an error, or when the reader stops
early. The ``Frames`` classes, which make such a generator the body of an ``httpx2``
or ``httpx`` response, live in the leaf :mod:`cachewise.httpstreams` (the emulator
uses them too); they are re-exported here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING, Any

from ..httpstreams import AsyncFrames, AsyncFrames2, Frames, Frames2  # re-exported

if TYPE_CHECKING:
    from ..httpstreams import AsyncFrames1, Frames1

__all__ = [
    "AsyncFrames",
    "AsyncFrames1",
    "AsyncFrames2",
    "Frames",
    "Frames1",
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


def __getattr__(name: str) -> Any:
    """``Frames1`` / ``AsyncFrames1`` (plain ``httpx``), re-exported on first use."""
    if name not in ("Frames1", "AsyncFrames1"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from .. import httpstreams

    value = getattr(httpstreams, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
