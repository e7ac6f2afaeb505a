"""The background writer: batches recorded rows into the database, or the spool when it is down.

``submit`` is a lock-free queue put (well under a microsecond on the caller's path).
One daemon thread per ledger collects up to ``batch_size`` rows or waits at most
``flush_interval`` seconds, then writes them in one transaction. The thread is woken once per
batch, not per row: the first row after an idle spell wakes it, the rows after that only queue
up until the interval ends, the queue holds ``batch_size`` rows, or a ``flush`` (or ``close``)
asks for them (each of those sets one event). When the write fails
the batch goes to the spool (fsync'd) instead, the database is retried every
``retry_interval`` seconds, and on the first successful write the spool is replayed.

A row the database *refuses* (its values, not the connection: see
:func:`~.quarantine.is_refusal`) never blocks the queue: :meth:`Store.insert` writes the
batch again by halves, down to single rows, and moves the refused rows to the ``quarantine``
table, and the
rows around them are written. A refused row is durable once quarantined.

``flush`` puts a marker in the same FIFO queue, so when the writer reaches it every row
submitted before it has been written to the database (calls or quarantine) or the spool.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from queue import Empty, SimpleQueue

from sqlalchemy.exc import SQLAlchemyError

from ..errors import CachewiseError, LedgerError
from .quarantine import QuarantinedRecord, first_line
from .record import CallRecord
from .spool import ReplayResult, Spool
from .store import Store

__all__ = ["Writer", "WriterStats"]

log = logging.getLogger("cachewise.ledger")


@dataclass(slots=True)
class WriterStats:
    """Counters since the ledger was opened."""

    durable: int = 0
    inserted: int = 0
    duplicates: int = 0
    conflicts: int = 0
    spooled: int = 0
    replayed: int = 0
    replayed_files: int = 0
    quarantined: int = 0
    skipped_spool_lines: int = 0
    database_up: bool = True
    last_error: str | None = None


class _Marker:
    __slots__ = ("durable", "error", "event", "replay", "result", "urgent")

    def __init__(self, *, replay: bool = False, urgent: bool = False) -> None:
        self.event = threading.Event()
        self.durable = 0
        self.error: BaseException | None = None
        self.replay = replay
        self.urgent = urgent  # the process is stopping: a database known to be down is not retried
        self.result: ReplayResult | None = None


_STOP = object()


class Writer:
    """Owns the queue and the thread; see the module docstring."""

    def __init__(
        self,
        store: Store,
        spool: Spool,
        *,
        batch_size: int,
        flush_interval: float,
        retry_interval: float,
        database_up: bool,
    ) -> None:
        self.store = store
        self.spool = spool
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.retry_interval = retry_interval
        self.stats = WriterStats(database_up=database_up)
        self._queue: SimpleQueue[object] = SimpleQueue()
        self._wake = threading.Event()  # set: stop waiting for the interval, write what is queued
        self._room = batch_size  # rows the batch being collected still takes (the writer sets it)
        self._pending: list[CallRecord] = []
        self._retry_at = 0.0
        self._next_spool_check = 0.0
        self._error: BaseException | None = None
        self._outage_logged = False
        self._unreported = ReplayResult()  # replayed since open or the last replay() call
        self._thread = threading.Thread(target=self._run, name=f"cachewise-ledger-{store.key}", daemon=True)
        self._thread.start()

    # -- caller side -------------------------------------------------------------------------

    def submit(self, record: CallRecord) -> None:
        queue = self._queue
        queue.put(record)
        if queue.qsize() >= self._room and not self._wake.is_set():
            self._wake.set()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def flush(self, timeout: float | None, *, urgent: bool = False) -> int:
        before = self.stats.durable
        marker = self._await(_Marker(urgent=urgent), timeout, "flush")
        return marker.durable - before

    def replay(self, timeout: float | None) -> ReplayResult:
        """Write what is queued, then replay the spool now, from the writer thread.

        The result counts every replay since open or the previous call (the one on open too).
        """
        marker = self._await(_Marker(replay=True), timeout, "replay")
        assert marker.result is not None
        return marker.result

    def _await(self, marker: _Marker, timeout: float | None, what: str) -> _Marker:
        """Queue ``marker`` behind every row submitted so far and wait until the writer reaches it."""
        if not self._thread.is_alive():
            raise LedgerError(f"ledger {self.store.label} is closed")
        self._queue.put(marker)
        self._wake.set()
        if not marker.event.wait(timeout):
            raise TimeoutError(f"ledger {self.store.label}: {what} did not finish within {timeout} s")
        if marker.error is not None:
            raise marker.error
        return marker

    def close(self, timeout: float | None) -> None:
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            self._thread.join(timeout)
        if self._pending:
            log.error(
                "ledger %s: %d rows could not be written or spooled", self.store.label, len(self._pending)
            )

    # -- thread side -------------------------------------------------------------------------

    def _run(self) -> None:
        self._maybe_replay(force=True)
        stop = False
        while not stop:
            records, markers, stop = self._collect()
            self._pending.extend(records)
            try:
                if self._pending:
                    self._persist(urgent=any(m.urgent for m in markers))
                self._maybe_replay(force=False)
            except Exception as exc:  # a bug must not kill the writer or lose rows
                log.exception("ledger %s: writer failed", self.store.label)
                self._error = exc
            for marker in markers:
                marker.durable = self.stats.durable
                marker.error = self._error if self._pending else None
                if marker.replay and marker.error is None:
                    try:
                        latest = self._replay()
                        marker.result, self._unreported = self._unreported, ReplayResult()
                        marker.result.left = latest.left
                    except (SQLAlchemyError, LedgerError) as exc:
                        marker.error = (
                            self.store.unavailable(exc) if isinstance(exc, SQLAlchemyError) else exc
                        )
                marker.event.set()
        self.spool.close()

    def _idle_timeout(self) -> float | None:
        if self._pending or not self.stats.database_up or self.spool.pending():
            return self.retry_interval
        return None

    def _collect(self) -> tuple[list[CallRecord], list[_Marker], bool]:
        """The next batch: rows up to ``batch_size``, the markers among them, and whether to stop.

        Blocks for the first item; then takes what is queued without blocking, and when the queue
        is empty sleeps on ``_wake`` until the interval ends (a row does not wake the thread; a
        full batch, a marker or the stop does). The event is cleared before each look at the
        queue, so a wake for an item queued since is never lost.
        """
        records: list[CallRecord] = []
        markers: list[_Marker] = []
        queue, wake = self._queue, self._wake
        wake.clear()
        self._room = self.batch_size
        try:
            item = queue.get(timeout=self._idle_timeout())
        except Empty:
            return records, markers, False
        deadline = time.monotonic() + self.flush_interval
        while True:
            if item is _STOP:
                return records, markers, True
            if isinstance(item, _Marker):
                markers.append(item)
                # Take what else is already queued, then write at once.
                while len(records) < self.batch_size:
                    try:
                        item = queue.get_nowait()
                    except Empty:
                        break
                    if item is _STOP:
                        return records, markers, True
                    if isinstance(item, _Marker):
                        markers.append(item)
                    else:
                        assert isinstance(item, CallRecord)
                        records.append(item)
                return records, markers, False
            assert isinstance(item, CallRecord)
            records.append(item)
            if len(records) >= self.batch_size:
                return records, markers, False
            while True:
                try:
                    item = queue.get_nowait()
                    break
                except Empty:
                    pass
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return records, markers, False
                self._room = self.batch_size - len(records)
                wake.wait(remaining)
                wake.clear()  # before the next look: a set for an item queued since is not lost

    def _persist(self, *, urgent: bool = False) -> None:
        batch = self._pending
        if self.stats.database_up or (not urgent and time.monotonic() >= self._retry_at):
            try:
                if self.store.version == 0:
                    self.store.upgrade()
                self._insert(batch)
            except (SQLAlchemyError, LedgerError) as exc:
                self._down(exc)
            else:
                self._durable(len(batch))
                if not self.stats.database_up:
                    log.warning("ledger %s: database reachable again", self.store.label)
                    self.stats.database_up = True
                    self._outage_logged = False
                    self._next_spool_check = 0.0
                return
        try:
            self.spool.append(batch)
        except CachewiseError as exc:
            self._error = exc
            log.error("ledger %s: %s; %d rows kept in memory", self.store.label, exc, len(batch))
            return
        self.stats.spooled += len(batch)
        self._durable(len(batch))

    def _durable(self, count: int) -> None:
        self.stats.durable += count
        self._pending = []
        self._error = None

    def _down(self, exc: BaseException) -> None:
        self.stats.database_up = False
        self.stats.last_error = str(exc)
        self._retry_at = time.monotonic() + self.retry_interval
        if not self._outage_logged:
            self._outage_logged = True
            log.warning(
                "ledger %s: database unavailable, spooling to %s (%s)",
                self.store.label,
                self.spool.directory,
                first_line(exc),
            )

    def _maybe_replay(self, *, force: bool) -> None:
        """Replay the spool when it has files and the database is (believed) reachable."""
        now = time.monotonic()
        if not force and now < self._next_spool_check:
            return
        if not self.stats.database_up and now < self._retry_at:
            return
        self._next_spool_check = now + self.retry_interval
        if not self.spool.pending():
            return
        try:
            self._replay()
        except (SQLAlchemyError, LedgerError) as exc:
            self._down(exc)

    def _replay(self) -> ReplayResult:
        if self.store.version == 0:
            self.store.upgrade()
        result = self.spool.replay(self._insert, self._insert_quarantined)
        self._unreported.add(result)
        self.stats.database_up = True
        self.stats.replayed += result.rows
        self.stats.replayed_files += result.files
        self.stats.skipped_spool_lines += result.skipped_lines
        return result

    def _insert(self, records: list[CallRecord]) -> int:
        """Insert (quarantining refused rows); returns how many were quarantined."""
        result = self.store.insert(records)
        self.stats.inserted += result.inserted
        self.stats.duplicates += result.duplicates
        self.stats.conflicts += result.conflicts
        self.stats.quarantined += result.quarantined
        return result.quarantined

    def _insert_quarantined(self, entries: list[QuarantinedRecord]) -> None:
        self.store.insert_quarantined(entries)
        self.stats.quarantined += len(entries)
