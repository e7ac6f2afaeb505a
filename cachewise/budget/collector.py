"""A process-wide, in-memory collector of call records, for budgets over one test session.

The collector is a record sink (:mod:`cachewise.sinks`): :func:`install_collector` (what the
pytest plugin calls for its session) and :func:`collecting` register it, so every wrapped
client, transport and proxy hands it each :class:`~cachewise.ledger.CallRecord` it records::

    collector = cachewise.budget.session_collector()   # the one installed, or None

The plugin sets ``collector.current_test`` to the node id of the running test, so every record
added meanwhile (from any thread) is attributed to it; with no collector installed, nothing is
registered and the wrapper hands records only to its own sinks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING

from .. import sinks

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


def _activate(collector: SessionCollector | None) -> None:
    global _ACTIVE
    if _ACTIVE is not None:
        sinks.unregister(_ACTIVE)
    _ACTIVE = collector
    if collector is not None:
        sinks.register(collector)


def install_collector(collector: SessionCollector | None = None) -> SessionCollector:
    """Make ``collector`` (or a new one) the session collector, registered as a sink, and return it."""
    active = collector or SessionCollector()
    with _LOCK:
        _activate(active)
    return active


def uninstall_collector() -> None:
    with _LOCK:
        _activate(None)


@contextmanager
def collecting() -> Iterator[SessionCollector]:
    """``with collecting() as calls:`` installs a fresh collector for the block, restoring the previous."""
    current = SessionCollector()
    with _LOCK:
        previous = _ACTIVE
        _activate(current)
    try:
        yield current
    finally:
        with _LOCK:
            _activate(previous)
