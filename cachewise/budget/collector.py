"""A process-wide, in-memory collector of call records, for budgets over one test session.

The hook between the wrapper and the pytest plugin (docs/budgets.md)::

    collector = cachewise.budget.session_collector()
    if collector is not None:
        collector.add(record)        # every CallRecord the wrapper records

The plugin installs a collector for the session (:func:`install_collector`) and sets
``collector.current_test`` to the node id of the running test, so every record added
meanwhile (from any thread) is attributed to it; outside such a session
:func:`session_collector` returns ``None`` and the wrapper does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from ..ledger.record import CallRecord

__all__ = ["SessionCollector", "collecting", "install_collector", "session_collector", "uninstall_collector"]

_LOCK = threading.Lock()
_ACTIVE: SessionCollector | None = None


class SessionCollector:
    """Thread-safe list of the call records made during a session, each with the test it ran in."""

    #: Tag under which :meth:`frame` shows the test a call was attributed to.
    test_tag = "test"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[tuple[str | None, CallRecord]] = []
        self._seen: set[str] = set()
        self.current_test: str | None = None

    def add(self, record: CallRecord) -> None:
        """Keep ``record``, attributed to its own ``test`` tag, else to :attr:`current_test`.

        A request id already kept (batch results read twice, a replay) is not counted again.
        """
        with self._lock:
            if record.request_id in self._seen:
                return
            self._seen.add(record.request_id)
            self._records.append((record.tags.get(self.test_tag) or self.current_test, record))

    def records(self) -> list[CallRecord]:
        """The records, with the test each was attributed to in its ``test`` tag."""
        with self._lock:
            pairs = list(self._records)
        return [
            record if test is None or record.tags.get(self.test_tag) == test
            else replace(record, tags={**record.tags, self.test_tag: test})
            for test, record in pairs
        ]  # fmt: skip

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)

    def frame(self) -> pd.DataFrame:
        """The collected calls as a ledger frame (the ``Ledger.to_frame()`` contract)."""
        from ..reports.records import frame_from_records  # pandas: only when a frame is asked for

        return frame_from_records(self.records())


def session_collector() -> SessionCollector | None:
    """The collector of the running session, or ``None`` (the wrapper's hook)."""
    return _ACTIVE


def install_collector(collector: SessionCollector | None = None) -> SessionCollector:
    """Make ``collector`` (or a new one) the session collector and return it."""
    global _ACTIVE
    with _LOCK:
        _ACTIVE = collector or SessionCollector()
        return _ACTIVE


def uninstall_collector() -> None:
    global _ACTIVE
    with _LOCK:
        _ACTIVE = None


@contextmanager
def collecting() -> Iterator[SessionCollector]:
    """``with collecting() as calls:`` installs a fresh collector for the block, restoring the previous."""
    global _ACTIVE
    with _LOCK:
        previous, _ACTIVE = _ACTIVE, SessionCollector()
        current = _ACTIVE
    try:
        yield current
    finally:
        with _LOCK:
            _ACTIVE = previous
