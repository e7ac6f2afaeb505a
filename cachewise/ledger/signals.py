"""Flush the open ledgers when the process is asked to stop (SIGTERM, SIGINT), then stop as before.

:func:`install` is called when a ledger opens. From the main thread only (Python allows
signal handlers nowhere else), for SIGTERM and SIGINT, it remembers the handler in place
and installs one that flushes every open ledger of this process (bounded by
:data:`FLUSH_TIMEOUT`) and then hands the signal to the remembered handler:

* Python's default SIGINT handler: ``KeyboardInterrupt`` is raised where it would have been.
* ``SIG_DFL`` (SIGTERM's default): the default disposition is restored and the signal
  re-sent, so the process ends *killed by the signal*, exit status and all.
* A handler the user set before the ledger opened: it is called with the same arguments.
* ``SIG_IGN``, or a handler set outside Python: left alone, nothing is installed.

A handler the user sets *after* a ledger opened replaces this one; it should call
``Ledger.flush()`` itself. SIGKILL cannot be caught: only what ``flush()`` acknowledged survives it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["FLUSH_TIMEOUT", "install", "installed", "uninstall"]

log = logging.getLogger("cachewise.ledger")

#: Seconds the handler waits for the ledgers to flush before passing the signal on.
FLUSH_TIMEOUT = 10.0

SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGINT)

_previous: dict[int, Any] = {}
_lock = threading.Lock()
_flush: Callable[[float], None] | None = None
_flushing = False


def install(flush: Callable[[float], None]) -> bool:
    """Install the flushing handlers (idempotent); False when not on the main thread."""
    global _flush
    if threading.current_thread() is not threading.main_thread():
        return False
    with _lock:
        _flush = flush
        for sig in SIGNALS:
            if sig in _previous:
                continue
            try:
                current = signal.getsignal(sig)
                if current is signal.SIG_IGN or current is None:
                    continue  # ignored on purpose, or owned by code outside Python: respect it
                signal.signal(sig, _handle)
            except (ValueError, OSError) as exc:  # e.g. a sub-interpreter: no handlers here
                log.debug("ledger: no flush handler for %s: %s", sig.name, exc)
                continue
            _previous[sig] = current
    return True


def installed() -> list[signal.Signals]:
    """The signals whose handler is currently this module's."""
    return [sig for sig in SIGNALS if signal.getsignal(sig) is _handle]


def uninstall() -> None:
    """Put back the handlers found at :func:`install` where ours is still in place (main thread)."""
    with _lock:
        for sig, previous in list(_previous.items()):
            if signal.getsignal(sig) is _handle:
                signal.signal(sig, previous)
            del _previous[sig]


def _handle(signum: int, frame: FrameType | None) -> None:
    global _flushing
    if not _flushing and _flush is not None:  # a second signal while flushing goes straight on
        _flushing = True
        try:
            _flush(FLUSH_TIMEOUT)
        except Exception:  # never keep the process from stopping
            log.exception("ledger: flush on signal %d failed", signum)
        finally:
            _flushing = False
    _chain(signum, frame, _previous.get(signum, signal.SIG_DFL))


def _chain(signum: int, frame: FrameType | None, previous: Any) -> None:
    if callable(previous):
        previous(signum, frame)
        return
    if previous == signal.SIG_IGN:
        return
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)  # delivered before kill() returns: the process ends here
    os._exit(128 + signum)  # pragma: no cover - only if the signal was blocked
