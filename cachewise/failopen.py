"""Instrumentation never breaks the user's call: one fail-open policy for all of cachewise.

Code on a user's request path (planner, token counter, tracker, middleware, proxy)
runs its own work inside :func:`fail_open`, a context manager that is also a
decorator (in the spirit of logfire's ``handle_internal_errors``)::

    with fail_open("ledger record"):
        ledger.record(row)

    @fail_open("batch planner")
    def plan_batch(self, body: dict) -> None: ...

    try:                           # once per chunk of a stream: a plain ``try`` and
        self.tap.feed(chunk)       # :func:`swallow`, as the decorator builds a
    except Exception as exc:       # context manager on every call
        swallow("stream tap", exc)

An exception inside is an internal failure of that kind: logged once per kind
(with the traceback the first time, then at debug level), counted
(:func:`internal_failures`) and swallowed, so the request goes on as the user
wrote it. Under pytest it is re-raised instead, so our own bugs still fail our
tests; a test of the fail-open behaviour itself turns that off with
:func:`raising`. :func:`guarded` is the same policy for a call whose value is
needed (with a fallback), :func:`swallow` for an exception already caught.

This module is a leaf: it imports nothing from cachewise.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

__all__ = [
    "fail_open",
    "guarded",
    "internal_failures",
    "raising",
    "record_failure",
    "reset_failures",
    "should_raise",
    "swallow",
]

log = logging.getLogger("cachewise")
T = TypeVar("T")

_lock = threading.Lock()
_seen: dict[str, int] = {}
_raise_override: bool | None = None


def should_raise() -> bool:
    """Whether internal failures propagate: under pytest, unless :func:`raising` says otherwise."""
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
    if should_raise():
        raise exc
    record_failure(kind, exc)


@contextmanager
def fail_open(kind: str) -> Iterator[None]:
    """An exception in this block (or decorated function) is an internal failure of ``kind``."""
    try:
        yield
    except Exception as exc:
        swallow(kind, exc)


def guarded(kind: str, func: Callable[[], T], fallback: T) -> T:
    """``func()``, or ``fallback`` if it raises (re-raised under pytest unless told otherwise)."""
    with fail_open(kind):
        return func()
    return fallback
