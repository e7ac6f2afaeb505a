"""Reading JSON on the proxy's and the tracker's hot path: orjson first, :mod:`json` for the rest.

orjson (the ``fast`` extra) reads a small reply or an SSE event in a fraction of :mod:`json`'s time.
What it refuses and :mod:`json` takes (``NaN``, lone surrogates, UTF-16 or UTF-32 bytes) is read
by :mod:`json`, and so is a body where orjson may have read an integer beyond 64 bits as a float
(it does, silently): every body reads as :mod:`json` reads it; what neither reads raises
:mod:`json`'s :class:`ValueError` (or :class:`RecursionError`, nested too deep).
"""

from __future__ import annotations

import json
from typing import Any

_orjson: Any
try:  # the ``fast`` extra
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised where orjson is not installed
    _orjson = None

__all__ = ["read_json"]


def read_json(content: bytes | str) -> Any:
    """``json.loads(content)``, by orjson when it reads the same value."""
    if _orjson is not None:
        try:
            value = _orjson.loads(content)
        except (ValueError, RecursionError):
            pass
        else:
            if not _maybe_big_integer(value):
                return value
    return json.loads(content)


#: orjson reads an integer beyond 64 bits as a float: one at least this large may have been one.
_BIG = float(2**63)


def _maybe_big_integer(value: Any) -> bool:
    """Whether ``value`` holds a float with no fraction of 2**63 or more (``1e30`` or an integer that
    orjson turned into a float: :mod:`json` reads it again, keeping the integer)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif type(item) is float and abs(item) >= _BIG and item.is_integer():
            return True
    return False
