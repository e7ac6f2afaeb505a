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
from typing import Any

from ..httpstreams import AsyncFrames, AsyncFrames1, AsyncFrames2, Frames, Frames1, Frames2  # re-exported

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


def tap_sync(recorder: Any, raw: Iterator[bytes], close: Callable[[], object]) -> Iterator[bytes]:
    error: BaseException | None = None
    try:
        for chunk in raw:
            recorder.feed(chunk)
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        recorder.close(error)
        close()


async def tap_async(
    recorder: Any, raw: AsyncIterator[bytes], close: Callable[[], Awaitable[object]]
) -> AsyncIterator[bytes]:
    error: BaseException | None = None
    try:
        async for chunk in raw:
            recorder.feed(chunk)
            yield chunk
    except GeneratorExit:
        raise
    except BaseException as exc:
        error = exc
        raise
    finally:
        recorder.close(error)
        await close()
