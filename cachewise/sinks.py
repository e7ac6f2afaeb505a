"""Where a call's record goes once the call is made: its sinks.

The call tracker hands every :class:`~cachewise.ledger.CallRecord` to each of its
sinks (the ledger, a runtime budget, any passed to ``wrap(sinks=...)``) and to
the sinks registered for the whole process (:func:`register`; the pytest
plugin's session collector is one). It knows them only by :class:`RecordSink`,
and a runtime budget also by :class:`RequestCheck` (checked before sending), so
the send path imports neither budgets nor pytest.

This module imports nothing from cachewise at run time.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .ledger.record import CallRecord
    from .pricing import PriceBook

__all__ = [
    "Budget",
    "LedgerSink",
    "RecordSink",
    "RecordWriter",
    "RequestCheck",
    "register",
    "registered",
    "unregister",
]


class RecordSink(Protocol):
    """Takes each record of a call made (must be thread-safe; a failure is logged, never raised)."""

    def add(self, record: CallRecord) -> None: ...


class RequestCheck(Protocol):
    """Checked before a request is sent; raises (``BudgetExceeded``) to stop it. Returns the estimate.

    ``plan``: the planner's :class:`~cachewise.planner.Plan` of this request (its counted tokens and
    breakpoints), ``None`` when unplanned; ``counter``: the planner's token counter, if any.
    """

    def check_request(
        self,
        request_body: Mapping[str, Any],
        *,
        book: PriceBook | None = None,
        at: datetime | None = None,
        plan: Any | None = None,
        counter: Any | None = None,
    ) -> Decimal: ...


class Budget(RecordSink, RequestCheck, Protocol):
    """A runtime budget: checks each request before it is sent, and counts each call made."""


class RecordWriter(Protocol):
    """Something that writes records with ``record(record)`` (a :class:`~cachewise.ledger.Ledger`)."""

    def record(self, record: CallRecord) -> None: ...


class LedgerSink:
    """A :class:`RecordSink` that writes to a ledger."""

    __slots__ = ("ledger",)

    def __init__(self, ledger: RecordWriter) -> None:
        self.ledger = ledger

    def add(self, record: CallRecord) -> None:
        self.ledger.record(record)


_lock = threading.Lock()
_registered: tuple[RecordSink, ...] = ()


def register(sink: RecordSink) -> None:
    """Hand the records of every tracker in this process to ``sink`` as well (once, however often called)."""
    global _registered
    with _lock:
        if not any(s is sink for s in _registered):
            _registered = (*_registered, sink)


def unregister(sink: RecordSink) -> None:
    global _registered
    with _lock:
        _registered = tuple(s for s in _registered if s is not sink)


def registered() -> tuple[RecordSink, ...]:
    """The process-wide sinks, in the order they were registered."""
    return _registered
