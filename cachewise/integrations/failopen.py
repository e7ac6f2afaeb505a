"""Instrumentation never breaks the user's call.

Code inside cachewise that runs on a user's request path goes through
:func:`guarded`: an exception is logged once per kind (with the traceback the
first time) and swallowed, so the request goes out as the user wrote it. Under
pytest the exception is re-raised instead, so our own bugs still fail our
tests; a test of the fail-open behaviour itself turns that off with
:func:`raising`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = ["guarded", "internal_failures", "raising", "record_failure", "reset_failures", "swallow"]

log = logging.getLogger("cachewise")
T = TypeVar("T")

_lock = threading.Lock()
_seen: dict[str, int] = {}
_raise_override: bool | None = None


def _should_raise() -> bool:
    if _raise_override is not None:
        return _raise_override
    return "pytest" in sys.modules and "PYTEST_CURRENT_TEST" in os.environ


@contextmanager
def raising(enabled: bool) -> Iterator[None]:
    """Force internal errors to propagate (``True``) or be swallowed (``False``) in this block."""
    global _raise_override
    previous = _raise_override
    _raise_override = enabled
    try:
        yield
    finally:
        _raise_override = previous


def internal_failures() -> dict[str, int]:
    """How many internal failures of each kind were swallowed so far."""
    with _lock:
        return dict(_seen)


def reset_failures() -> None:
    with _lock:
        _seen.clear()


def record_failure(kind: str, exc: BaseException) -> None:
    """Log ``exc`` (once per kind with a traceback, then at debug level) and count it."""
    with _lock:
        count = _seen.get(kind, 0)
        _seen[kind] = count + 1
    if count == 0:
        log.warning("cachewise %s failed; the request goes on without it: %r", kind, exc, exc_info=exc)
    else:
        log.debug("cachewise %s failed again (%d times): %r", kind, count + 1, exc)


def swallow(kind: str, exc: Exception) -> None:
    """Handle an exception already caught: re-raise it under pytest, else log it once per kind."""
    if _should_raise():
        raise exc
    record_failure(kind, exc)


def guarded(kind: str, func: Callable[[], T], fallback: T) -> T:
    """``func()``, or ``fallback`` if it raises (re-raised under pytest unless told otherwise)."""
    try:
        return func()
    except Exception as exc:
        if _should_raise():
            raise
        record_failure(kind, exc)
        return fallback
