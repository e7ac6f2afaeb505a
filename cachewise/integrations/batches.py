"""Message Batches through the wrapper or the proxy: planned on create, one ledger row per result.

:class:`~cachewise.integrations.batch_planner.BatchPlanner` plans the create request itself.

A results body is JSON Lines; :class:`ResultLines` watches it as it passes (the
bytes are not changed or held back beyond one incomplete line) and hands each
complete line to :meth:`CallTracker.record_batch_line`. Rows are keyed
``"{batch_id}:{custom_id}"``, so reading the same results twice never doubles a
row in the ledger. :class:`BatchTimes` remembers when each batch seen was
created, so its results are dated by the batch, not by when they were read.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .tracker import CallTracker

__all__ = ["BatchTimes", "ResultLines"]

_REMEMBERED = 10_000  # batch creation times kept (oldest forgotten first)


class BatchTimes:
    """When each batch this client or proxy has seen was created."""

    def __init__(self) -> None:
        self._times: OrderedDict[str, datetime] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, payload: Any) -> None:
        """Note the ``created_at`` of a batch object, or of each batch in a list page."""
        if not isinstance(payload, Mapping):
            return
        if payload.get("type") != "message_batch":
            page = payload.get("data")
            for item in page if isinstance(page, list) else ():
                self.remember(item)
            return
        batch_id, created = payload.get("id"), payload.get("created_at")
        if not batch_id or not created:
            return
        at = datetime.fromisoformat(str(created).replace("Z", "+00:00"))
        with self._lock:
            self._times[str(batch_id)] = at
            self._times.move_to_end(str(batch_id))
            while len(self._times) > _REMEMBERED:
                self._times.popitem(last=False)

    def created(self, batch_id: str) -> datetime | None:
        with self._lock:
            return self._times.get(batch_id)


class ResultLines:
    """A recorder for :func:`~cachewise.integrations.streams.tap_sync` / ``tap_async``."""

    def __init__(self, tracker: CallTracker, batch_id: str, started_at: datetime) -> None:
        self.tracker = tracker
        self.batch_id = batch_id
        self.started_at = started_at
        self._pending = b""
        self._closed = False

    def feed(self, chunk: bytes) -> None:
        self._pending += chunk
        *complete, self._pending = self._pending.split(b"\n")
        for line in complete:
            self.tracker.record_batch_line(self.batch_id, line, self.started_at)

    def close(self, error: BaseException | None = None) -> None:
        """The body ended; a last line without its newline is recorded if it is whole."""
        if self._closed:
            return
        self._closed = True
        last, self._pending = self._pending, b""
        if not last.strip():
            return
        try:
            json.loads(last)
        except (ValueError, RecursionError):  # cut short (the reader stopped, the stream broke)
            return
        self.tracker.record_batch_line(self.batch_id, last, self.started_at)
