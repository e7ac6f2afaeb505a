"""The database side of the ledger: where it is, how to connect, and the idempotent insert.

* SQLite: WAL journal, ``synchronous=FULL`` (a committed batch survives a crash),
  a busy timeout, write transactions opened with ``BEGIN IMMEDIATE``.
* PostgreSQL through psycopg 3 (``postgresql+psycopg://``; ``postgres://`` and
  ``postgresql://`` are rewritten to it), pre-ping on checkout, a connect timeout.
* Inserts are ``INSERT ... ON CONFLICT (request_id) DO NOTHING`` on both dialects: the
  first record of a request id wins; later ones (retries of the write, replayed spool
  lines, a second instrumentation layer) are dropped, and a *different* later record is
  counted as a conflict and logged.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import operator
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from pathlib import Path
from typing import Any

import platformdirs
from sqlalchemy import Connection, Engine, create_engine, event, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from ..errors import LedgerError, LedgerUnavailable
from . import migrations, rollups
from .multirow import execute_in_sizes
from .privacy import redact
from .quarantine import QuarantinedRecord, first_line, is_refusal
from .record import CallRecord
from .schema import COST_COLUMNS, calls
from .schema import quarantine as quarantine_table
from .types import format_utc, money_text
from .units import EXPONENT, INT64_MAX, UNITS_COLUMNS, row_units

__all__ = [
    "ENV_DB",
    "MEMORY",
    "InsertResult",
    "Store",
    "call_row",
    "default_db_path",
    "insert_for",
    "is_memory",
    "label_of",
    "record_values",
    "resolve_url",
    "spool_key",
]

log = logging.getLogger("cachewise.ledger")

ENV_DB = "CACHEWISE_DB"
#: SQLite's page cache of a connection while it writes, KiB (SQLite's default, 2,000, while it
#: reads): a batch's index pages stay in memory until commit instead of spilling to the WAL
#: mid-transaction, and are not read again by the next batch; filled only as pages are used.
SQLITE_CACHE_KIB = 65_536
SUM_PRECISION = 200  # digits kept when summing money on SQLite: exact for any realistic ledger


def default_db_path() -> Path:
    """``<user data dir>/cachewise/ledger.db`` (platformdirs)."""
    return platformdirs.user_data_path("cachewise", appauthor=False) / "ledger.db"


MEMORY = ":memory:"


def is_memory(url: URL) -> bool:
    """An in-memory SQLite URL (``sqlite://``, ``sqlite:///:memory:``)."""
    return url.get_backend_name() == "sqlite" and url.database in (None, "", MEMORY)


def resolve_url(url: str | Path | URL | None) -> URL:
    """A SQLAlchemy URL from a path, a URL string, ``$CACHEWISE_DB`` or the default file.

    ``":memory:"`` is an in-memory SQLite database, never a file of that name.
    """
    if url is None:
        url = os.environ.get(ENV_DB) or default_db_path()
    if str(url) == MEMORY:
        return URL.create("sqlite", database=MEMORY)
    if isinstance(url, URL):
        parsed = url
    elif isinstance(url, Path) or "://" not in url:
        path = Path(url).expanduser().resolve()
        return URL.create("sqlite", database=str(path))
    else:
        try:
            parsed = make_url(url)
        except ArgumentError as exc:
            raise LedgerError(f"ledger URL {url!r} is not a database URL or path: {exc}") from exc
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if is_memory(parsed):
            return URL.create("sqlite", database=MEMORY)
    elif backend != "postgresql":
        raise LedgerError(f"ledger URL {parsed.render_as_string()}: only sqlite and postgresql are supported")
    return parsed


_SUM_CONTEXT = Context(prec=SUM_PRECISION)


class _DecimalSum:
    """SQLite aggregate ``decimal_sum(text)``: an exact sum of decimal strings, returned as text."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: object) -> None:
        if value is None:
            return
        amount = Decimal(value) if isinstance(value, str) else Decimal(str(value))
        # Context.add instead of a localcontext per row: the same exact sum, many times faster.
        self.total = amount if self.total is None else _SUM_CONTEXT.add(self.total, amount)

    def finalize(self) -> str | None:
        return None if self.total is None else str(self.total)


@dataclass(frozen=True, slots=True)
class InsertResult:
    inserted: int
    duplicates: int
    conflicts: int
    quarantined: int = 0


_INSERT_COLUMNS: tuple[str, ...] = tuple(c.name for c in calls.columns if c.name != "id")
_INSERT_SQL_COLUMNS = ", ".join(_INSERT_COLUMNS)
_ROW_MARKS = {m: "(" + ", ".join([m] * len(_INSERT_COLUMNS)) + ")" for m in ("?", "%s")}
_SQLITE_ROW = f"(?, {_ROW_MARKS['?'][1:]}"
_SQLITE_ROWS_PER_STATEMENT = 32_000 // (len(_INSERT_COLUMNS) + 1)  # SQLite binds at most 32,766


@functools.cache
def _sqlite_insert(rows: int) -> str:
    """``INSERT INTO calls (id, ...) VALUES (...), ...`` for ``rows`` rows, ids given."""
    return f"INSERT INTO calls (id, {_INSERT_SQL_COLUMNS}) VALUES {', '.join([_SQLITE_ROW] * rows)}"


#: A row's NULL pattern: the positions of its ``None`` values in :data:`_INSERT_COLUMNS` order.
NullPattern = tuple[int, ...]
#: The positions of the nullable columns: only these are looked at to find a row's pattern. A
#: ``None`` anywhere else (a refused row: the column is ``NOT NULL``) is bound, and refused as before.
_NULLABLE: tuple[int, ...] = tuple(i for i, name in enumerate(_INSERT_COLUMNS) if calls.c[name].nullable)
#: NULL patterns a SQLite store writes with ``NULL`` in the statement text; rows of any other
#: pattern bind their ``None`` values. Live traffic has a few; the bound keeps the prepared
#: statements (patterns x :data:`_NULL_PATTERN_SIZES`) within ``sqlite3``'s statement cache.
MAX_NULL_PATTERNS = 16
_NULL_PATTERN_SIZES = (_SQLITE_ROWS_PER_STATEMENT, 50, 5, 1)


@functools.lru_cache(maxsize=8 * MAX_NULL_PATTERNS)  # statement texts of up to ~100 kB: bounded
def _sqlite_pattern_insert(pattern: NullPattern, rows: int) -> str:
    """:func:`_sqlite_insert` with ``NULL`` written where ``pattern`` has its ``None`` values."""
    nulls = set(pattern)
    row = "(?, " + ", ".join("NULL" if i in nulls else "?" for i in range(len(_INSERT_COLUMNS))) + ")"
    return f"INSERT INTO calls (id, {_INSERT_SQL_COLUMNS}) VALUES {', '.join([row] * rows)}"


@functools.lru_cache(maxsize=8 * MAX_NULL_PATTERNS)
def _bound_of(pattern: NullPattern) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """The values of a row of ``pattern`` that are bound (all but its ``None`` values), as a tuple."""
    nulls = set(pattern)
    kept = [i for i in range(len(_INSERT_COLUMNS)) if i not in nulls]
    getter = operator.itemgetter(*kept)
    if len(kept) == 1:
        return lambda row: (getter(row),)
    return getter


#: Rows per multi-row ``call_tags`` statement on SQLite: full ones, then the rest in a few sizes.
_TAG_STATEMENT_SIZES = (2000, 250, 30, 1)


@functools.cache
def _sqlite_tags_insert(rows: int) -> str:
    """``INSERT INTO call_tags (call_id, key, value) VALUES (?, ?, ?), ...`` for ``rows`` rows."""
    return f"INSERT INTO call_tags (call_id, key, value) VALUES {', '.join(['(?, ?, ?)'] * rows)}"


#: Rows built (and written) at a time inside one batch's transaction; see ``Store._pipelined``.
PIPELINE_CHUNK = 1000
_IN_CHUNK = 900  # bound parameters per IN list (SQLite's historical limit is 999)
_JSON_COLUMNS = frozenset(("breakpoints", "tags", "rates", "miss_detail", "replay"))
_MONEY_COLUMNS = frozenset((*COST_COLUMNS, "code_execution_hours"))
_TIME_COLUMNS = frozenset(("started_at", "recorded_at"))


def _json_text(value: Any) -> str:
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _converters(sqlite: bool) -> tuple[tuple[int, Callable[[Any], Any]], ...]:
    out: list[tuple[int, Callable[[Any], Any]]] = []
    for index, name in enumerate(_INSERT_COLUMNS):
        if sqlite and name in _MONEY_COLUMNS:
            out.append((index, money_text))
        elif sqlite and name in _TIME_COLUMNS:
            out.append((index, format_utc))
        elif name in _JSON_COLUMNS:
            out.append((index, _json_text))
    return tuple(out)


_CONVERTERS = {True: _converters(True), False: _converters(False)}
_GET_ROW = operator.itemgetter(*_INSERT_COLUMNS)


def _driver_values(row: dict[str, Any], sqlite: bool) -> list[Any]:
    """Driver values for one row, in :data:`_INSERT_COLUMNS` order (matches :mod:`.types`)."""
    values = list(_GET_ROW(row))
    for index, convert in _CONVERTERS[sqlite]:
        value = values[index]
        if value is not None:
            values[index] = convert(value)
    return values


#: The order :func:`record_values` writes; a schema change that moves a column must update both.
_VALUES_ORDER: tuple[str, ...] = (
    "request_id", "recorded_at", "message_id", "model", "started_at", "latency_ms", "ttft_ms",
    "status", "error_type", "endpoint", "service_tier", "inference_geo", "speed", "batch_id",
    "input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
    "ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens", "output_tokens",
    "web_search_requests", "web_fetch_requests", "code_execution_hours", "ttl_split_missing",
    "incomplete", "planned", "breakpoints", "prefix_hash", "tags", "price_table_version", "rates",
    *COST_COLUMNS, "cost_error", "prompt", "custom_id", "raw_usage", *UNITS_COLUMNS, "provider",
    "miss_reason", "miss_detail", "api_miss_reason", "api_missed_tokens", "replay",
)  # fmt: skip
if _VALUES_ORDER != _INSERT_COLUMNS:  # pragma: no cover - caught by every test run
    raise ImportError("cachewise.ledger.store.record_values is out of step with the calls table")

_NO_COSTS: tuple[None, ...] = (None,) * len(COST_COLUMNS)
Prepared = tuple[tuple[Any, ...], dict[str, Any]]


class _Memo:
    """A bounded memo of pure conversions the write path repeats row after row.

    Tags, error texts and applied rates repeat across calls; their redacted JSON text is
    computed once. Cleared when full, so memory stays bounded whatever the traffic.
    """

    __slots__ = ("limit", "rates", "tags", "texts")

    def __init__(self, limit: int = 4096) -> None:
        self.limit = limit
        self.texts: dict[str, str | None] = {}
        self.tags: dict[tuple[tuple[str, str], ...], tuple[dict[str, Any], str]] = {}
        self.rates: dict[tuple[Any, ...], tuple[dict[str, Any], str]] = {}

    def redact(self, text: str | None) -> str | None:
        if text is None:
            return None
        texts = self.texts
        try:
            return texts[text]
        except KeyError:
            if len(texts) >= self.limit:
                texts.clear()
            out = texts[text] = redact(text)
            return out

    def tags_of(self, tags: Mapping[str, str]) -> tuple[dict[str, Any], str]:
        if not tags:
            return _NO_TAGS
        key = tuple(tags.items())
        try:
            return self.tags[key]
        except KeyError:
            if len(self.tags) >= self.limit:
                self.tags.clear()
            redacted = {k: redact(v) for k, v in key}
            out = self.tags[key] = (redacted, _json_text(redacted))
            return out

    def rates_text(self, rates: Mapping[str, Any]) -> str:
        # The key only finds the bucket; the stored mapping must equal ``rates`` to be reused.
        key = (len(rates), rates.get("model"), rates.get("period_from"), rates.get("multiplier"))
        try:
            known, text = self.rates[key]
        except (KeyError, TypeError):
            known, text = {}, ""
        if text and known == rates:
            return text
        text = _json_text(dict(rates))
        try:
            if len(self.rates) >= self.limit:
                self.rates.clear()
            self.rates[key] = (dict(rates), text)
        except TypeError:  # an unhashable value in the key: not memoised
            pass
        return text


_NO_TAGS: tuple[dict[str, Any], str] = ({}, "{}")
_DECIMAL = Decimal


def _money(money: Sequence[Any], sqlite: bool) -> tuple[list[Any], list[int | None]]:
    """Driver values and units of one row's money (the checks of ``money_text`` and ``units_of``)."""
    texts: list[Any] = []
    units: list[int | None] = []
    text = texts.append
    unit = units.append
    exact = True
    for value in money:
        if value is None:
            text(None)
            unit(None)
            continue
        if value.__class__ is not _DECIMAL:
            money_text(value)  # raises TypeError for what is not a Decimal
            if not isinstance(value, _DECIMAL):  # pragma: no cover - money_text raised
                raise TypeError(value)
        if not value:
            text(str(value) if sqlite else value)  # zero, in any exponent
            unit(0)
            continue
        if not value.is_finite():
            money_text(value)  # raises ValueError
        text(str(value) if sqlite else value)
        if exact:
            scaled = value.scaleb(EXPONENT)
            # Whole when it equals its integral value: a Decimal comparison, cheaper than int vs Decimal.
            if scaled != scaled.to_integral_value():
                exact = False
                continue
            whole = int(scaled)
            if -INT64_MAX <= whole <= INT64_MAX:
                unit(whole)
            else:
                exact = False
    if not exact:
        return texts, [None] * len(money)
    return texts, units


def record_values(
    record: CallRecord, recorded_at: datetime | str, sqlite: bool, memo: _Memo | None = None
) -> Prepared:
    """Driver values of ``record``'s row in :data:`_INSERT_COLUMNS` order, and its (redacted) tags.

    The write path's hot loop: the same values as ``_driver_values(call_row(record, at), sqlite)``
    (a test holds them equal), built without the intermediate dict; ``recorded_at`` may be
    given already as its driver value (one per batch), and ``memo`` reuses the redacted text
    of tags, error texts and rates across a batch. Raises what binding would
    (``TypeError`` for money that is not a ``Decimal``, ``ValueError`` for a naive time):
    refusals, handled by :meth:`Store.insert`.
    """
    if memo is None:
        memo = _Memo()
    u = record.usage
    cost = record.cost
    money: tuple[Any, ...] = (
        (u.code_execution_hours, *_NO_COSTS)
        if cost is None
        else (
            u.code_execution_hours, cost.cost_input, cost.cost_cache_write_5m, cost.cost_cache_write_1h,
            cost.cost_cache_read, cost.cost_output, cost.cost_web_search, cost.cost_code_execution,
            cost.cost_total, cost.cost_no_cache, cost.savings,
        )
    )  # fmt: skip
    texts, units = _money(money, sqlite)
    tags, tags_text = memo.tags_of(record.tags)
    started: Any = record.started_at
    recorded: Any = recorded_at
    split: int | bool = u.ttl_split_missing
    incomplete: int | bool = record.incomplete
    planned: int | bool = record.planned
    if sqlite:
        started = format_utc(started)
        if not isinstance(recorded, str):
            recorded = format_utc(recorded)
        # SQLite stores a bool as its int; an int binds directly, a bool through the adapter protocol.
        split, incomplete, planned = int(split), int(incomplete), int(planned)
    rates = record.rates
    points = record.breakpoints
    values = (
        record.request_id, recorded, record.message_id, record.model, started,
        record.latency_ms, record.ttft_ms, record.status, memo.redact(record.error_type), record.endpoint,
        record.service_tier, record.inference_geo, record.speed, record.batch_id,
        u.input_tokens, u.cache_creation_input_tokens, u.cache_read_input_tokens,
        u.ephemeral_5m_input_tokens, u.ephemeral_1h_input_tokens, u.output_tokens,
        u.web_search_requests, u.web_fetch_requests, texts[0], split,
        incomplete, planned, _json_text([b.as_dict() for b in points]) if points else "[]",
        record.prefix_hash, tags_text, record.price_table_version,
        None if rates is None else memo.rates_text(rates),
        *texts[1:], memo.redact(record.cost_error), redact(record.prompt), record.custom_id,
        redact(record.raw_usage), *units, record.provider,
        record.miss_reason, None if record.miss_detail is None else _json_text(dict(record.miss_detail)),
        record.api_miss_reason, record.api_missed_tokens,
        None if record.replay is None else _json_text(dict(record.replay)),
    )  # fmt: skip
    return values, tags


def call_row(record: CallRecord, recorded_at: datetime) -> dict[str, Any]:
    """The ``calls`` row of ``record``: its columns, ``recorded_at`` and the money in units (step 0005)."""
    row = record.to_row()
    row["recorded_at"] = recorded_at
    row.update(zip(UNITS_COLUMNS, row_units(row), strict=True))
    return row


def label_of(url: URL) -> str:
    """How a ledger is named in messages: its URL without the password."""
    return f"sqlite:///{MEMORY}" if is_memory(url) else url.render_as_string(hide_password=True)


def spool_key(url: URL) -> str:
    """The name of the database's spool directory: a hash of its label (fresh for in-memory ledgers)."""
    label = label_of(url)
    # Each in-memory ledger is its own database: give it its own spool key.
    seed = f"{label}#{uuid.uuid4().hex}" if is_memory(url) else label
    return hashlib.sha256(seed.encode()).hexdigest()[:16]


def insert_for(dialect: str) -> Any:
    return pg_insert if dialect == "postgresql" else sqlite_insert


class Store:
    """One ledger database: engine, schema upgrade and the batched idempotent insert."""

    def __init__(
        self, url: str | Path | URL | None, *, busy_timeout: float = 30.0, create: bool = True
    ) -> None:
        self.url = resolve_url(url)
        self.dialect = self.url.get_backend_name()
        self.memory = is_memory(self.url)
        self.label = label_of(self.url)
        self.key = spool_key(self.url)
        self.create = create
        if not create:
            self._check_exists()
        self._serial = threading.RLock() if self.memory else None
        self.engine = self._engine(busy_timeout)
        self.version = 0
        self._keeps_rollups: bool | None = None  # the schema has call_rollups (step 0011); asked once
        self._memo = _Memo()  # used by the one writer thread
        self._io: ThreadPoolExecutor | None = None  # writes chunks while the next is built
        self._sequence: str | None = None  # PostgreSQL: the calls.id sequence, named on first use
        self._null_patterns: set[NullPattern] = set()  # SQLite: written with NULL in the SQL text

    def _check_exists(self) -> None:
        if self.memory:
            raise LedgerError("an in-memory ledger is always new; create=False needs a file or a server")
        if self.dialect == "sqlite":
            assert self.url.database is not None
            path = Path(self.url.database)
            if not path.is_file():
                what = "is not a file" if path.exists() else "does not exist"
                raise LedgerError(
                    f"no ledger at {path}: the file {what}; check --db / ${ENV_DB} "
                    "(read-only commands never create one)"
                )

    # -- engine ------------------------------------------------------------------------------

    def _engine(self, busy_timeout: float) -> Engine:
        if self.dialect == "sqlite":
            assert self.url.database is not None
            if self.memory:
                # One connection, shared by the writer thread and readers, one user at a time.
                engine = create_engine(
                    "sqlite://", connect_args={"check_same_thread": False}, poolclass=StaticPool
                )
            else:
                if self.create:
                    try:
                        Path(self.url.database).parent.mkdir(parents=True, exist_ok=True)
                    except OSError:
                        pass  # connecting reports it as LedgerUnavailable; rows spool meanwhile
                engine = create_engine(
                    self.url,
                    connect_args={"timeout": busy_timeout, "check_same_thread": False},
                    pool_size=4,
                    max_overflow=8,
                )
            timeout_ms = int(busy_timeout * 1000)

            @event.listens_for(engine, "connect")
            def _on_connect(dbapi_conn: Any, _record: Any) -> None:
                dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
                cursor = dbapi_conn.cursor()
                cursor.execute(f"PRAGMA busy_timeout = {timeout_ms}")
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = FULL")
                cursor.execute("PRAGMA foreign_keys = ON")
                cursor.close()
                dbapi_conn.create_aggregate("decimal_sum", 1, _DecimalSum)

            @event.listens_for(engine, "begin")
            def _on_begin(conn: Connection) -> None:
                write = conn.get_execution_options().get("cachewise_write")
                # A write keeps its batch's index pages cached (no spill to the WAL mid-transaction,
                # no re-reads next batch); a read gives the pages back (memory stays SQLite's default).
                conn.exec_driver_sql(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB if write else 2000}")
                conn.exec_driver_sql(f"BEGIN {'IMMEDIATE' if write else 'DEFERRED'}")

            return engine
        try:
            return create_engine(
                self.url,
                connect_args={"connect_timeout": 5, "application_name": "cachewise"},
                pool_pre_ping=True,
                pool_size=4,
                max_overflow=8,
            )
        except (ImportError, NoSuchModuleError) as exc:
            raise LedgerError(
                f"ledger {self.label}: PostgreSQL needs psycopg 3 (pip install 'cachewise[postgres]'): {exc}"
            ) from exc

    @contextmanager
    def _serialised(self) -> Iterator[None]:
        if self._serial is None:
            yield
            return
        with self._serial:
            yield

    @contextmanager
    def write(self) -> Iterator[Connection]:
        """A write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on success."""
        with self._serialised(), self.engine.connect() as conn:
            conn = conn.execution_options(cachewise_write=True)
            with conn.begin():
                yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A read transaction (one consistent snapshot); :class:`LedgerUnavailable` if unreachable."""
        try:
            with self._serialised(), self.engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise self.unavailable(exc) from exc

    def unavailable(self, exc: BaseException) -> LedgerUnavailable:
        return LedgerUnavailable(self.label, first_line(exc))

    # -- schema ------------------------------------------------------------------------------

    def upgrade(self, target: int | None = None) -> list[str]:
        """Bring the schema up to date (or to ``target``); raises ``SchemaTooNew`` / ``LedgerUnavailable``."""
        try:
            with self.write() as conn:
                applied = migrations.upgrade(conn, self.label, target)
                self.version = migrations.current_version(conn)
                self._keeps_rollups = None
        except SQLAlchemyError as exc:
            raise self.unavailable(exc) from exc
        if applied:
            log.info("ledger %s: applied %s", self.label, ", ".join(applied))
        return applied

    def schema_version(self) -> int:
        with self.read() as conn:
            return migrations.current_version(conn)

    # -- insert ------------------------------------------------------------------------------

    def insert(self, records: Sequence[CallRecord]) -> InsertResult:
        """Insert ``records`` in one transaction, skipping request ids already present.

        When the database refuses the batch because of a row's values (see
        :func:`~.quarantine.is_refusal`), the batch is written again in one transaction,
        by halves under savepoints, down to single rows (:meth:`_insert_isolated`): the
        refused rows go to ``quarantine`` with their reason, the others are written.
        Errors of an unreachable database propagate (the writer spools the batch).
        """
        if not records:
            return InsertResult(0, 0, 0)
        try:
            return self._insert_batch(records)
        except Exception as exc:
            if not is_refusal(exc):
                raise
            log.info(
                "ledger %s: a batch of %d rows was refused (%s); writing row by row",
                self.label,
                len(records),
                exc.__class__.__name__,
            )
        return self._insert_isolated(records)

    def _insert_batch(self, records: Sequence[CallRecord]) -> InsertResult:
        unique: dict[str, CallRecord] = {}
        in_batch_dupes: list[CallRecord] = []
        for record in records:
            if record.request_id in unique:
                in_batch_dupes.append(record)
            else:
                unique[record.request_id] = record
        with self.write() as conn:
            inserted = self._pipelined(conn, list(unique.values()))
            existing = [r for rid, r in unique.items() if rid not in inserted] + in_batch_dupes
            conflicts = self._conflicts(conn, existing, unique) if existing else 0
        return InsertResult(len(inserted), len(records) - len(inserted), conflicts)

    def _pipelined(self, conn: Connection, records: list[CallRecord]) -> dict[str, int]:
        """Write ``records`` in chunks; the next chunk's rows are built while the last one is written.

        Building rows is Python; writing them waits on the database (the PostgreSQL server, or
        SQLite's own code, which runs without the GIL): one I/O thread per store writes chunk
        ``k`` on ``conn`` while this thread builds chunk ``k + 1``. The connection is used by
        one thread at a time (each chunk is handed over after the previous one finished), all
        in the caller's one transaction. The first error (a refused row while building, or
        the database's) propagates once the chunk in flight has finished.
        """
        now = datetime.now(UTC)
        sqlite = self.dialect == "sqlite"
        at: datetime | str = format_utc(now) if sqlite else now
        memo = self._memo
        if len(records) <= PIPELINE_CHUNK:
            return self._write_rows(conn, [record_values(r, at, sqlite, memo) for r in records], bulk=True)
        inserted: dict[str, int] = {}
        io = self._io_thread()
        flight: Future[dict[str, int]] | None = None
        try:
            for start in range(0, len(records), PIPELINE_CHUNK):
                chunk = records[start : start + PIPELINE_CHUNK]
                rows = [record_values(r, at, sqlite, memo) for r in chunk]
                if flight is not None:
                    inserted.update(flight.result())
                    flight = None
                try:
                    flight = io.submit(self._write_rows, conn, rows, bulk=True)
                except RuntimeError:  # the interpreter is exiting (atexit flush): no new threads
                    inserted.update(self._write_rows(conn, rows, bulk=True))
            if flight is not None:
                inserted.update(flight.result())
        finally:
            if flight is not None and not flight.done():
                flight.exception()  # wait: the transaction is rolled back only once it is idle
        return inserted

    def _io_thread(self) -> ThreadPoolExecutor:
        if self._io is None:
            self._io = ThreadPoolExecutor(1, thread_name_prefix=f"cachewise-ledger-io-{self.key}")
        return self._io

    def _insert_isolated(self, records: Sequence[CallRecord]) -> InsertResult:
        """Write a refused batch again, halving each refused part under a savepoint down to one row.

        A batch of ``n`` rows with ``k`` refused ones takes about ``2·k·log2(n)`` savepoints
        instead of ``n``; the rows that are written keep their order; a refused single row is
        quarantined.
        """
        now = datetime.now(UTC)
        inserted: set[str] = set()
        existing: list[CallRecord] = []
        refused: list[QuarantinedRecord] = []
        with self.write() as conn:

            def attempt(chunk: Sequence[CallRecord]) -> None:
                try:
                    rows = [record_values(record, now, self.dialect == "sqlite") for record in chunk]
                    with conn.begin_nested():
                        written = self._write_rows(conn, rows, bulk=len(rows) > 1)
                except Exception as exc:
                    if not is_refusal(exc):
                        raise
                    if len(chunk) == 1:
                        refused.append(QuarantinedRecord.of(chunk[0], exc, now))
                        return
                    half = len(chunk) // 2
                    attempt(chunk[:half])
                    attempt(chunk[half:])
                    return
                for record in chunk:
                    if record.request_id in written:
                        inserted.add(record.request_id)
                    else:
                        existing.append(record)

            pending: list[CallRecord] = list(records)
            while pending:  # one record per request id a round: a repeat waits for the first's fate
                chunk: list[CallRecord] = []
                later: list[CallRecord] = []
                seen: set[str] = set()
                for record in pending:
                    if record.request_id in inserted:
                        existing.append(record)
                    elif record.request_id in seen:
                        later.append(record)
                    else:
                        seen.add(record.request_id)
                        chunk.append(record)
                if chunk:
                    attempt(chunk)
                pending = later
            conflicts = self._conflicts(conn, existing, {}) if existing else 0
            self.quarantine(conn, refused)
        for entry in refused[:5]:
            log.warning(
                "ledger %s: quarantined request_id %s: %s", self.label, entry.request_id, entry.reason
            )
        if len(refused) > 5:
            log.warning("ledger %s: quarantined %d more rows", self.label, len(refused) - 5)
        duplicates = len(records) - len(inserted) - len(refused)
        return InsertResult(len(inserted), duplicates, conflicts, quarantined=len(refused))

    def quarantine(self, conn: Connection, entries: Sequence[QuarantinedRecord]) -> None:
        """Keep ``entries`` in the ``quarantine`` table, one per call.

        A record already there is kept once, and so is a refused call: an entry whose request id
        is already quarantined is that call refused again (the same reply recorded twice), not
        another unaccounted call.
        """
        ids = sorted({e.request_id for e in entries if e.request_id is not None})
        known: set[str] = set()
        column = quarantine_table.c.request_id
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            known.update(conn.execute(select(column).where(column.in_(chunk))).scalars())
        kept: list[QuarantinedRecord] = []
        for entry in entries:
            if entry.request_id is not None:
                if entry.request_id in known:
                    continue
                known.add(entry.request_id)
            kept.append(entry)
        if not kept:
            return
        stmt = insert_for(self.dialect)(quarantine_table).on_conflict_do_nothing(index_elements=["raw_hash"])
        conn.execute(stmt, [entry.to_row() for entry in kept])

    def insert_quarantined(self, entries: Sequence[QuarantinedRecord]) -> None:
        """Write quarantined entries that waited in the spool while the database was down."""
        if entries:
            with self.write() as conn:
                self.quarantine(conn, entries)

    def _write_rows(self, conn: Connection, rows: list[Prepared], *, bulk: bool) -> dict[str, int]:
        """Insert ``rows`` (:func:`record_values`) and their tags; returns {request_id: id} inserted."""
        inserted = self._insert_rows(conn, rows, bulk=bulk)
        if self._keeps_rollups is None:
            self._keeps_rollups = migrations.current_version(conn) >= migrations.ROLLUPS_STEP
        if self._keeps_rollups:  # a ledger opened at an older step without upgrading has none yet:
            # step 0011 builds them from every row there when it is applied
            rollups.record_inserted(conn, rows, inserted)  # the same transaction (or savepoint)
        tags_of = {values[0]: tags for values, tags in rows if tags}
        tag_rows = [
            (call_id, key, value)
            for request_id, call_id in inserted.items()
            for key, value in tags_of.get(request_id, {}).items()
        ]
        if not tag_rows:
            return inserted
        if self.dialect == "sqlite":  # multi-row statements, like the calls
            execute_in_sizes(conn.exec_driver_sql, tag_rows, _TAG_STATEMENT_SIZES, _sqlite_tags_insert)
        elif not bulk:
            conn.exec_driver_sql("INSERT INTO call_tags (call_id, key, value) VALUES (%s, %s, %s)", tag_rows)
        else:  # PostgreSQL: COPY, instead of a pipelined statement per tag
            statement = "COPY call_tags (call_id, key, value) FROM STDIN"
            raw = conn.connection.driver_connection
            assert raw is not None
            dbapi = conn.dialect.loaded_dbapi
            try:
                with raw.cursor() as cursor, cursor.copy(statement) as copy:
                    for tag_row in tag_rows:
                        copy.write_row(tag_row)
            except dbapi.Error as exc:
                raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        return inserted

    def _insert_rows(self, conn: Connection, rows: list[Prepared], *, bulk: bool) -> dict[str, int]:
        """Multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``; returns {request_id: id} inserted.

        Values are driver values already (:func:`record_values`, once per row, instead of
        per-row type processors; the conversions match :mod:`.types`). With ``bulk``
        PostgreSQL goes through COPY.
        """
        sqlite = self.dialect == "sqlite"
        if bulk and not sqlite:
            return self._copy_rows(conn, rows)
        if bulk:
            return self._sqlite_rows(conn, rows)
        mark = "?" if sqlite else "%s"
        per_statement = 600
        inserted: dict[str, int] = {}
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            values = ", ".join([_ROW_MARKS[mark]] * len(chunk))
            sql = (
                f"INSERT INTO calls ({_INSERT_SQL_COLUMNS}) VALUES {values} "
                "ON CONFLICT (request_id) DO NOTHING RETURNING id, request_id"
            )
            params: list[Any] = []
            for values_, _tags in chunk:
                params.extend(values_)
            for call_id, request_id in conn.exec_driver_sql(sql, tuple(params)):
                inserted[request_id] = call_id
        return inserted

    def _sqlite_rows(self, conn: Connection, rows: list[Prepared]) -> dict[str, int]:
        """SQLite: multi-row ``INSERT`` statements of the rows not stored yet, ids given.

        The transaction holds SQLite's write lock (``BEGIN IMMEDIATE``), so the request ids
        already stored and ``max(id)`` read first stay true until commit: the rows not yet
        stored are inserted with the next ids, without ``RETURNING`` (which costs a round
        trip into Python per row). Any constraint the check did not foresee raises, and
        :meth:`insert` writes the batch again by halves.
        """
        raw = conn.connection.driver_connection
        assert raw is not None
        dbapi = conn.dialect.loaded_dbapi
        statement = "SELECT request_id FROM calls WHERE request_id IN (...)"
        try:
            cursor = raw.cursor()
            try:
                ids = [values[0] for values, _tags in rows]
                stored: set[str] = set()
                for start in range(0, len(ids), _IN_CHUNK):
                    chunk = ids[start : start + _IN_CHUNK]
                    marks = ", ".join(["?"] * len(chunk))
                    cursor.execute(f"SELECT request_id FROM calls WHERE request_id IN ({marks})", chunk)
                    stored.update(request_id for (request_id,) in cursor.fetchall())
                statement = "SELECT max(id) FROM calls"
                (top,) = cursor.execute("SELECT coalesce(max(id), 0) FROM calls").fetchone()
                inserted: dict[str, int] = {}
                known = self._null_patterns
                nullable = _NULLABLE
                groups: dict[NullPattern, list[tuple[int, tuple[Any, ...]]]] = {}
                others: list[tuple[int, tuple[Any, ...]]] = []
                for values, _tags in rows:
                    if values[0] in stored:
                        continue
                    top += 1
                    inserted[values[0]] = top
                    pattern = tuple([i for i in nullable if values[i] is None])
                    group = groups.get(pattern)
                    if group is None:
                        if pattern not in known and len(known) >= MAX_NULL_PATTERNS:
                            others.append((top, values))
                            continue
                        known.add(pattern)
                        group = groups[pattern] = []
                    group.append((top, values))
                # Multi-row statements: SQLite runs each in one step without the GIL (executemany
                # would take the GIL back after every row, and wait for it behind the builder).
                # NULLs are written in the statement's text, per NULL pattern: a bound None costs
                # a failed adapter lookup in sqlite3 (about 0.5 µs a value), a literal nothing.
                statement = "INSERT INTO calls"
                for pattern, group in groups.items():
                    bound = _bound_of(pattern)
                    execute_in_sizes(
                        cursor.execute,
                        [(call_id, *bound(values)) for call_id, values in group],
                        _NULL_PATTERN_SIZES,
                        functools.partial(_sqlite_pattern_insert, pattern),
                    )
                # rows of any other pattern bind their None values
                rest = [(call_id, *values) for call_id, values in others]
                execute_in_sizes(cursor.execute, rest, _NULL_PATTERN_SIZES, _sqlite_insert)
            finally:
                cursor.close()
        except dbapi.Error as exc:
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        return inserted

    def _copy_rows(self, conn: Connection, rows: list[Prepared]) -> dict[str, int]:
        """PostgreSQL: the new rows straight into ``calls`` by COPY, with ids drawn beforehand.

        The request ids already stored are read first and skipped; the rest take ids from the
        ``calls.id`` sequence and are copied in. A row another writer stored in between makes
        COPY fail on the unique request id, and :meth:`insert` writes the batch again by halves
        (down to single ``INSERT ... ON CONFLICT DO NOTHING`` rows), so nothing is doubled.
        Errors of the raw driver cursor are raised as SQLAlchemy's own (``DataError``,
        ``OperationalError``, ...) so refusals and outages are told apart as on every other path.
        """
        raw = conn.connection.driver_connection
        assert raw is not None
        dbapi = conn.dialect.loaded_dbapi
        statement = "SELECT request_id FROM calls WHERE request_id = ANY(%s)"
        try:
            with raw.cursor() as cursor:
                cursor.execute(statement, ([values[0] for values, _tags in rows],))
                stored = {request_id for (request_id,) in cursor.fetchall()}
                new = [values for values, _tags in rows if values[0] not in stored]
                if not new:
                    return {}
                statement = "SELECT pg_get_serial_sequence('calls', 'id')"
                if self._sequence is None:
                    # Named once: evaluated per row, the lookup would cost more than nextval itself.
                    cursor.execute(statement)
                    (self._sequence,) = cursor.fetchone() or (None,)
                statement = "SELECT nextval(%s::regclass) FROM generate_series(1, %s)"
                cursor.execute(statement, (self._sequence, len(new)), binary=True)
                ids = [call_id for (call_id,) in cursor.fetchall()]
                statement = f"COPY calls (id, {_INSERT_SQL_COLUMNS}) FROM STDIN"
                with cursor.copy(statement) as copy:
                    write = copy.write_row
                    for call_id, values in zip(ids, new, strict=True):
                        write((call_id, *values))
        except dbapi.Error as exc:
            raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc
        return {values[0]: call_id for call_id, values in zip(ids, new, strict=True)}

    def _conflicts(self, conn: Connection, existing: list[CallRecord], batch: dict[str, CallRecord]) -> int:
        ids = sorted({r.request_id for r in existing})
        stored: dict[str, CallRecord] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for row in conn.execute(select(calls).where(calls.c.request_id.in_(chunk))).mappings():
                stored[row["request_id"]] = CallRecord.from_row(row)
        conflicts = 0
        for record in existing:
            first = stored.get(record.request_id) or batch.get(record.request_id)
            if first is None or first is record:
                continue
            if first.content_hash() != record.content_hash():
                conflicts += 1
                if conflicts <= 5:
                    log.warning(
                        "ledger %s: request_id %s recorded again with different content; "
                        "kept the first record (status %s), dropped the new one (status %s)",
                        self.label,
                        record.request_id,
                        first.status,
                        record.status,
                    )
        return conflicts

    def dispose(self) -> None:
        if self._io is not None:
            self._io.shutdown(wait=True)
            self._io = None
        self.engine.dispose()
