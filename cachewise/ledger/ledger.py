"""The :class:`Ledger`: record every call off the caller's path, read it back exactly.

Guarantees (docs/ledger.md has the full contract):

* ``record()`` only enqueues; a background thread batches rows into the database.
* ``flush()`` returns once every row recorded before it is durable: committed to the
  database, or appended and fsync'd to the local spool when the database is down.
  A row acknowledged by ``flush()`` is never lost; spooled rows are replayed on the
  next successful write, when a ledger opens, or by ``cachewise ledger replay``.
* One row per ``request_id``: the first record wins, repeats are dropped (never doubled).
* A row the database refuses (its values: out of range, unencodable text) never blocks
  the others: it is kept in the ``quarantine`` table with its reason and raw record,
  and counted by :meth:`Ledger.quarantine_count` / ``Totals.quarantined``.
* SIGTERM and SIGINT flush every open ledger before the process stops (:mod:`.signals`).
* Opening upgrades an older schema in place; a newer one raises :class:`SchemaTooNew`.
  An unreachable database does **not** raise on open: rows spool until it is back,
  and reading raises :class:`LedgerUnavailable`. ``create=False`` (:meth:`Ledger.open_existing`)
  never creates a database: a missing SQLite file or an empty database raises :class:`LedgerError`.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import platformdirs
from sqlalchemy.engine import URL, Connection
from sqlalchemy.exc import SQLAlchemyError

from ..errors import LedgerError, LedgerUnavailable, SchemaTooNew
from ..pricing import PriceBook
from . import migrations, signals
from . import reprice as _reprice
from . import rollups as _rollups
from .leases import Lease, take_lease
from .quarantine import QuarantinedRecord
from .query import (
    Filter,
    MoneyForm,
    Totals,
    count_quarantined,
    iter_frames,
    iter_quarantined,
    iter_records,
    read_frame,
    read_totals,
)
from .record import CallRecord
from .rollups import RollupCheck
from .spool import ReplayResult, Spool
from .store import Store
from .writer import Writer, WriterStats

if TYPE_CHECKING:  # frames are built by .query, which imports pandas when it builds one
    import pandas as pd

__all__ = ["Ledger"]

log = logging.getLogger("cachewise.ledger")

_OPEN: weakref.WeakSet[Ledger] = weakref.WeakSet()
_OPEN_LOCK = threading.RLock()  # re-entered by the signal handler if it interrupts an open/close


def default_spool_dir(key: str) -> Path:
    """``<user data dir>/cachewise/spool/<hash of the database URL>``."""
    return platformdirs.user_data_path("cachewise", appauthor=False) / "spool" / key


def flush_open_ledgers(timeout: float) -> None:
    """Flush every open ledger of this process, each within ``timeout`` seconds (signal handler)."""
    with _OPEN_LOCK:
        ledgers = [led for led in _OPEN if not led._closed and led._pid == os.getpid()]
    for ledger in ledgers:
        try:
            ledger._writer.flush(timeout, urgent=True)
        except Exception as exc:
            log.error("ledger %s: flush before exit failed: %s", ledger.label, exc)


@atexit.register
def _close_all() -> None:
    with _OPEN_LOCK:
        ledgers = list(_OPEN)
    for ledger in ledgers:
        try:
            ledger.close(timeout=30)
        except Exception:  # pragma: no cover - never raise at interpreter exit
            log.exception("ledger %s: close at exit failed", ledger.label)


class Ledger:
    """A call ledger in SQLite (default) or PostgreSQL.

    ``url``: a file path, a SQLAlchemy URL (``sqlite:///...``,
    ``postgresql+psycopg://user@host/db``), else ``$CACHEWISE_DB``, else
    ``<user data dir>/cachewise/ledger.db``; ``":memory:"`` (or ``sqlite://``) is an in-memory
    SQLite ledger that lives as long as this object. ``spool_dir`` defaults to a directory per
    database under the user data dir. Prompt text is kept only with ``store_prompts=True``.
    ``create=False`` opens an existing ledger only (see :meth:`open_existing`).
    ``flush_on_signal`` installs the SIGTERM/SIGINT flush (:mod:`cachewise.ledger.signals`).
    """

    def __init__(
        self,
        url: str | Path | URL | None = None,
        *,
        spool_dir: str | Path | None = None,
        store_prompts: bool = False,
        batch_size: int = 5000,
        flush_interval: float = 1.0,
        retry_interval: float = 5.0,
        busy_timeout: float = 30.0,
        upgrade: bool = True,
        create: bool = True,
        flush_on_signal: bool = True,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.store_prompts = store_prompts
        self._store = Store(url, busy_timeout=busy_timeout, create=create)
        self.label = self._store.label
        self.dialect = self._store.dialect
        self.spool_dir = Path(spool_dir) if spool_dir is not None else default_spool_dir(self._store.key)
        self._spool = Spool(self.spool_dir, self._store.key, self.label)
        database_up = True
        try:
            if not create:
                self._require_ledger()
            if upgrade:
                self._store.upgrade()
            else:
                self._store.version = self._store.schema_version()
                if self._store.version > migrations.latest_version():
                    raise SchemaTooNew(self.label, self._store.version, migrations.latest_version())
        except LedgerUnavailable as exc:
            database_up = False
            log.warning("%s; recording to the spool %s until it is back", exc, self.spool_dir)
        except BaseException:
            self._store.dispose()
            raise
        self._pid = os.getpid()
        self._closed = False
        self._writer = Writer(
            self._store,
            self._spool,
            batch_size=batch_size,
            flush_interval=flush_interval,
            retry_interval=retry_interval,
            database_up=database_up,
        )
        with _OPEN_LOCK:
            _OPEN.add(self)
        if flush_on_signal:
            signals.install(flush_open_ledgers)

    @classmethod
    def open_existing(cls, url: str | Path | URL | None = None, **options: Any) -> Ledger:
        """Open a ledger that already exists; never create a file, a directory or tables.

        For read-only commands (``ledger info``, reports, budget checks): a SQLite path that
        does not exist, or a database without ledger tables, raises :class:`LedgerError`
        naming it. An unreachable database still opens (reads raise ``LedgerUnavailable``).
        """
        return cls(url, create=False, **options)

    def _require_ledger(self) -> None:
        if self._store.schema_version() == 0:  # LedgerUnavailable when unreachable: handled by caller
            raise LedgerError(
                f"no cachewise ledger in {self.label}: the database has no ledger tables; "
                "check --db / $CACHEWISE_DB (read-only commands never create one)"
            )

    def __repr__(self) -> str:
        return f"Ledger({self.label!r})"

    # -- writing -----------------------------------------------------------------------------

    def record(self, record: CallRecord) -> None:
        """Queue ``record`` for writing and return at once (the caller's path costs ~1 µs)."""
        if self._closed:
            raise LedgerError(f"ledger {self.label} is closed")
        if os.getpid() != self._pid:
            raise LedgerError(
                f"ledger {self.label} was opened in process {self._pid}; open a new one after fork"
            )
        if not isinstance(record, CallRecord):
            raise TypeError(f"record() takes a CallRecord, got {type(record).__name__}")
        if record.prompt is not None and not self.store_prompts:
            record = record.without_prompt()
        self._writer.submit(record)

    def flush(self, timeout: float | None = None) -> int:
        """Block until every row recorded before this call is durable; return how many became so.

        Raises :class:`TimeoutError` after ``timeout`` seconds, or the
        :class:`~cachewise.errors.SpoolError` when neither the database nor the spool
        could take the rows (they stay queued in memory and are retried).
        """
        return self._writer.flush(timeout)

    def close(self, timeout: float | None = 30.0) -> None:
        """Flush, stop the writer and release the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if os.getpid() == self._pid:
            self._writer.close(timeout)
        self._store.dispose()
        with _OPEN_LOCK:
            _OPEN.discard(self)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def stats(self) -> WriterStats:
        """Counters since open: durable, inserted, duplicates, conflicts, spooled, replayed."""
        return self._writer.stats

    # -- maintenance -------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        """Apply any missing schema steps now; returns their names."""
        return self._store.upgrade()

    def schema_version(self) -> int:
        return self._store.schema_version()

    def replay(self) -> ReplayResult:
        """Write what is queued, then replay every claimable spool file of this database now.

        The result counts the rows restored since the ledger opened or the previous
        ``replay()``: those replayed on open (or after an outage) as well as this pass.
        Raises :class:`LedgerUnavailable` when the database is still down (the files stay).
        """
        return self._writer.replay(None)

    # -- reading -----------------------------------------------------------------------------

    def calls(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        limit: int | None = None,
    ) -> list[CallRecord]:
        """Recorded calls with ``since`` ≤ started_at < ``until``, oldest first."""
        flt = Filter(since, until, model, tags)
        with self._store.read() as conn:
            return list(iter_records(conn, flt, limit=limit))

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """One read transaction (a consistent snapshot) for the query functions of
        :mod:`cachewise.ledger.aggregate`; :class:`~cachewise.errors.LedgerUnavailable` if unreachable."""
        with self._store.read() as conn:
            yield conn

    def to_frame(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        money: MoneyForm = "decimal",
    ) -> pd.DataFrame:
        """The calls as a DataFrame; columns and dtypes are listed in docs/ledger.md.

        ``money="decimal"`` (default): money columns hold ``Decimal`` objects, digit for digit as
        written (every ledger reads this way). ``money="arrow"`` (opt-in): exact pyarrow
        ``decimal128(38, 12)`` columns; a call whose money has no exact 10⁻¹² form (finer rates,
        code-execution hours) raises :class:`~cachewise.errors.LedgerError` naming it.
        """
        with self._store.read() as conn:
            return read_frame(conn, Filter(since, until, model, tags), money=money)

    def iter_frames(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        chunk_rows: int = 100_000,
        money: MoneyForm = "decimal",
    ) -> Iterator[pd.DataFrame]:
        """The calls as frames of at most ``chunk_rows`` rows (same columns as :meth:`to_frame`).

        Streams one read transaction: memory stays at one chunk however large the window.
        """
        with self._store.read() as conn:
            yield from iter_frames(
                conn, Filter(since, until, model, tags), chunk_rows=chunk_rows, money=money
            )

    def totals(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Totals:
        """Summed tokens and exact Decimal costs of the matching calls, aggregated in SQL."""
        with self._store.read() as conn:
            return read_totals(conn, Filter(since, until, model, tags))

    def check_rollups(self) -> RollupCheck:
        """Compare the rollups kept on write with the rows (:mod:`.rollups`); reads only."""
        with self._store.read() as conn:
            return _rollups.check(conn)

    def rebuild_rollups(self) -> int:
        """Recompute the rollups from the rows in one write transaction; returns their row count."""
        self.flush()
        with self._store.write() as conn:
            return _rollups.rebuild(conn)

    def lease(
        self,
        *,
        budget: str,
        holder: str,
        limit: Decimal,
        window: Filter,
        held: Decimal,
        now: datetime,
        held_seconds: float,
        share_seconds: float,
        shares: int = 1,
        need: Decimal = Decimal(0),
    ) -> Lease:
        """Take ``holder``'s lease of a gateway budget (:func:`.leases.take_lease`, one locked write)."""
        try:
            with self._store.write() as conn:
                return take_lease(
                    conn,
                    budget=budget,
                    holder=holder,
                    limit=limit,
                    window=window,
                    held=held,
                    now=now,
                    held_seconds=held_seconds,
                    share_seconds=share_seconds,
                    shares=shares,
                    need=need,
                )
        except SQLAlchemyError as exc:
            raise self._store.unavailable(exc) from exc

    def reprice(
        self,
        table: PriceBook | str | Path,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        store: bool = False,
    ) -> pd.DataFrame:
        """Costs under ``table`` (a book, or a table/overlay file) beside the recorded ones.

        The recorded costs are never changed. With ``store=True`` the repriced costs are also
        kept in the ``reprices`` table, keyed by request id and table version.
        """
        book = _reprice.load_book(table)
        with self._store.read() as conn:
            rows = list(_reprice.reprice_rows(iter_records(conn, Filter(since, until, model, tags)), book))
        if store:
            try:
                with self._store.write() as conn:
                    _reprice.store_reprices(conn, rows)
            except Exception as exc:
                raise self._store.unavailable(exc) from exc
        return _reprice.to_frame(rows)

    def quarantined(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        limit: int | None = None,
    ) -> list[QuarantinedRecord]:
        """Records the database refused, newest first: reason, raw record (ASCII JSON), call time.

        The window applies to the call's ``started_at`` (the time it was refused when the
        record had none); ``tags`` are matched in the raw record.
        """
        with self._store.read() as conn:
            return list(iter_quarantined(conn, Filter(since, until, model, tags), limit=limit))

    def quarantine_count(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> int:
        """How many refused records fall in the window: calls that are in no total (unaccounted)."""
        with self._store.read() as conn:
            return count_quarantined(conn, Filter(since, until, model, tags))

    def info(self, *, latest: int = 5) -> dict[str, Any]:
        """Where the ledger is, its schema version, row count, quarantine and pending spool files."""
        with self._store.read() as conn:
            from sqlalchemy import func, select

            from .schema import calls

            count = conn.execute(select(func.count()).select_from(calls)).scalar_one()
            every = Filter()
            quarantined = count_quarantined(conn, every)
            recent = list(iter_quarantined(conn, every, limit=latest)) if quarantined else []
        return {
            "url": self.label,
            "dialect": self.dialect,
            "schema_version": self._store.version,
            "calls": int(count),
            "quarantined": quarantined,
            "quarantine_latest": [
                {
                    "request_id": q.request_id,
                    "started_at": q.started_at.isoformat() if q.started_at else None,
                    "quarantined_at": q.quarantined_at.isoformat(),
                    "reason": q.reason,
                }
                for q in recent
            ],
            "spool_dir": str(self.spool_dir),
            "spool_files": [str(p) for p in self._spool.files()],
        }
