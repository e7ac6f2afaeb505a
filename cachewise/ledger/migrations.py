"""Ordered, named schema steps, recorded in the ``cachewise_migrations`` table.

Each step's DDL is frozen here as it was when the step shipped; never edit a shipped
step, add a new one. :func:`upgrade` applies the missing steps in one transaction,
under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so
several processes opening a new ledger at once apply each step exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Float,
    ForeignKey,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    inspect,
    select,
    text,
)

from ..errors import LedgerError, SchemaTooNew
from .schema import id_type, json_type, migrations_table
from .types import Money, UTCDateTime
from .units import EXPONENT, INT64_MAX, MONEY_COLUMNS, to_units

__all__ = [
    "MIGRATIONS",
    "Migration",
    "ProgressCallback",
    "current_version",
    "latest_version",
    "progress_callback",
    "upgrade",
]

#: ``(step name, rows done, rows in all)``, called while a step converts rows.
ProgressCallback = Callable[[str, int, int], None]
#: Set by a caller that shows progress (``cachewise ledger upgrade`` on a terminal).
progress_callback: ContextVar[ProgressCallback | None] = ContextVar("progress_callback", default=None)

_ADVISORY_LOCK_KEY = 0x6361636865776973  # "cachewis"


@dataclass(frozen=True, slots=True)
class Migration:
    id: int
    name: str
    apply: Callable[[Connection], None]


_V1_TOKENS = (
    "input_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "output_tokens",
    "web_search_requests",
    "web_fetch_requests",
)
_V1_COSTS = (
    "cost_input",
    "cost_cache_write_5m",
    "cost_cache_write_1h",
    "cost_cache_read",
    "cost_output",
    "cost_web_search",
    "cost_code_execution",
    "cost_total",
    "cost_no_cache",
    "savings",
)


def _0001_initial(conn: Connection) -> None:
    md = MetaData()
    Table(
        "calls",
        md,
        Column("id", id_type(), primary_key=True, autoincrement=True),
        Column("request_id", Text, nullable=False),
        Column("recorded_at", UTCDateTime, nullable=False),
        Column("message_id", Text),
        Column("model", Text, nullable=False),
        Column("started_at", UTCDateTime, nullable=False),
        Column("latency_ms", Float),
        Column("ttft_ms", Float),
        Column("status", Text, nullable=False),
        Column("error_type", Text),
        Column("endpoint", Text, nullable=False),
        Column("service_tier", Text),
        Column("inference_geo", Text),
        Column("speed", Text),
        Column("batch_id", Text),
        *(Column(name, BigInteger, nullable=False, server_default=text("0")) for name in _V1_TOKENS),
        Column("code_execution_hours", Money, nullable=False, server_default=text("'0'")),
        Column("ttl_split_missing", Boolean, nullable=False, server_default=false()),
        Column("incomplete", Boolean, nullable=False, server_default=false()),
        Column("planned", Boolean, nullable=False, server_default=false()),
        Column("breakpoints", json_type()),
        Column("prefix_hash", Text),
        Column("tags", json_type()),
        Column("price_table_version", Text),
        Column("rates", json_type()),
        *(Column(name, Money) for name in _V1_COSTS),
        Column("cost_error", Text),
        Column("prompt", Text),
        UniqueConstraint("request_id", name="uq_calls_request_id"),
        Index("ix_calls_started_at", "started_at"),
        Index("ix_calls_model_started_at", "model", "started_at"),
        Index("ix_calls_prefix_hash", "prefix_hash"),
    )
    Table(
        "call_tags",
        md,
        Column("call_id", id_type(), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
        Column("key", Text, nullable=False),
        Column("value", Text, nullable=False),
        PrimaryKeyConstraint("call_id", "key", name="pk_call_tags"),
    )
    md.create_all(conn)


def _0002_batch_custom_id(conn: Connection) -> None:
    """Batch results are matched on custom_id (docs/api-notes.md §3.3); tags looked up by key, value."""
    conn.execute(text("ALTER TABLE calls ADD COLUMN custom_id TEXT"))
    conn.execute(text("CREATE INDEX ix_calls_batch_id_custom_id ON calls (batch_id, custom_id)"))
    conn.execute(text("CREATE INDEX ix_call_tags_key_value ON call_tags (key, value)"))


def _0003_reprices(conn: Connection) -> None:
    md = MetaData()
    Table(
        "reprices",
        md,
        Column("request_id", Text, nullable=False),
        Column("table_version", Text, nullable=False),
        Column("priced_at", UTCDateTime, nullable=False),
        Column("rates", json_type()),
        *(Column(name, Money) for name in _V1_COSTS),
        Column("cost_error", Text),
        PrimaryKeyConstraint("request_id", "table_version", name="pk_reprices"),
    )
    md.create_all(conn)


def _0004_quarantine_raw_usage(conn: Connection) -> None:
    """Rows the database refused are kept in ``quarantine``; ``calls.raw_usage`` keeps untrusted usage."""
    conn.execute(text("ALTER TABLE calls ADD COLUMN raw_usage TEXT"))
    md = MetaData()
    Table(
        "quarantine",
        md,
        Column("id", id_type(), primary_key=True, autoincrement=True),
        Column("raw_hash", Text, nullable=False),
        Column("quarantined_at", UTCDateTime, nullable=False),
        Column("request_id", Text),
        Column("model", Text),
        Column("started_at", UTCDateTime),
        Column("reason", Text, nullable=False),
        Column("raw_record", Text, nullable=False),
        UniqueConstraint("raw_hash", name="uq_quarantine_raw_hash"),
        Index("ix_quarantine_started_at", "started_at"),
        Index("ix_quarantine_quarantined_at", "quarantined_at"),
    )
    md.create_all(conn)


_0005_CHUNK = 50_000
_0005_NAME = "0005_money_units"


def _sqlite_units(value: object) -> int | None:
    """SQLite function ``cachewise_units(text)`` for step 0005: decimal text to 10⁻¹² units."""
    if value is None:
        return None
    from decimal import Decimal, InvalidOperation

    try:
        return to_units(Decimal(str(value)))
    except InvalidOperation:
        return None


def _0005_money_units(conn: Connection) -> None:
    """Integer twins of the money columns (10⁻¹² units, :mod:`.units`) so SQL sums them exactly.

    Existing rows are converted in place, in chunks of ids. A row whose money is not a whole
    number of units keeps NULL in every units column (``code_execution_hours_units`` marks it).
    """
    for name in MONEY_COLUMNS:
        conn.execute(text(f"ALTER TABLE calls ADD COLUMN {name}_units BIGINT"))
    sqlite = conn.dialect.name == "sqlite"
    scale = 10**EXPONENT
    if sqlite:
        raw = conn.connection.driver_connection
        assert raw is not None
        raw.create_function("cachewise_units", 1, _sqlite_units, deterministic=True)
        convert = {name: f"cachewise_units({name})" for name in MONEY_COLUMNS}
    else:
        convert = {
            name: (
                f"CASE WHEN {name} * {scale} = trunc({name} * {scale}) "
                f"AND abs({name} * {scale}) <= {INT64_MAX} THEN ({name} * {scale})::bigint END"
            )
            for name in MONEY_COLUMNS
        }
    assignments = ", ".join(f"{name}_units = {convert[name]}" for name in MONEY_COLUMNS)
    inexact = " OR ".join(f"({name} IS NOT NULL AND {name}_units IS NULL)" for name in MONEY_COLUMNS)
    clear = ", ".join(f"{name}_units = NULL" for name in MONEY_COLUMNS)
    low, high, total = conn.execute(text("SELECT min(id), max(id), count(*) FROM calls")).one()
    report = progress_callback.get()
    done = 0
    if total:
        for start in range(int(low) - 1, int(high), _0005_CHUNK):
            window = {"lo": start, "hi": start + _0005_CHUNK}
            where = "id > :lo AND id <= :hi"
            result = conn.execute(text(f"UPDATE calls SET {assignments} WHERE {where}"), window)
            conn.execute(text(f"UPDATE calls SET {clear} WHERE {where} AND ({inexact})"), window)
            done += result.rowcount
            if report is not None:
                report(_0005_NAME, min(done, int(total)), int(total))
    conn.execute(
        text(
            "CREATE INDEX ix_calls_inexact_money ON calls (started_at) "
            "WHERE code_execution_hours_units IS NULL"
        )
    )


_0006_NAME = "0006_calls_provider"


def _0006_calls_provider(conn: Connection) -> None:
    """``calls.provider``: the platform that served the call (anthropic, bedrock, vertex); NULL before."""
    conn.execute(text("ALTER TABLE calls ADD COLUMN provider TEXT"))


_MISS_REASONS = "0007_miss_reasons"


def _0007_miss_reasons(conn: Connection) -> None:
    """Why a call missed the cache (docs/why.md): the local reason and detail, the API's reason."""
    detail = "JSONB" if conn.dialect.name == "postgresql" else "JSON"
    conn.execute(text("ALTER TABLE calls ADD COLUMN miss_reason TEXT"))
    conn.execute(text(f"ALTER TABLE calls ADD COLUMN miss_detail {detail}"))
    conn.execute(text("ALTER TABLE calls ADD COLUMN api_miss_reason TEXT"))
    conn.execute(text("ALTER TABLE calls ADD COLUMN api_missed_tokens BIGINT"))


_REPLAY = "0008_calls_replay"


def _0008_calls_replay(conn: Connection) -> None:
    """``calls.replay``: what ``cachewise whatif --since`` replays (docs/why.md); NULL before."""
    kind = "JSONB" if conn.dialect.name == "postgresql" else "JSON"
    conn.execute(text(f"ALTER TABLE calls ADD COLUMN replay {kind}"))


def _0009_gateway_leases(conn: Connection) -> None:
    """``gateway_leases``: the headroom of each budget each gateway process holds (ledger/leases.py)."""
    moment = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "TIMESTAMP"
    conn.execute(
        text(
            "CREATE TABLE gateway_leases (budget TEXT NOT NULL, holder TEXT NOT NULL, "
            f"window_start {moment} NOT NULL, held_units BIGINT NOT NULL, share_units BIGINT NOT NULL, "
            f"held_expires {moment} NOT NULL, share_expires {moment} NOT NULL, "
            "PRIMARY KEY (budget, holder))"
        )
    )


_PREFIX_TIME = "0010_prefix_hash_started_at_index"


def _0010_prefix_hash_started_at_index(conn: Connection) -> None:
    """``ix_calls_prefix_hash_started_at`` replaces ``ix_calls_prefix_hash``: a family's calls in
    time order, so a report finds the first read after each cache write with one seek."""
    conn.execute(text("DROP INDEX ix_calls_prefix_hash"))
    conn.execute(text("CREATE INDEX ix_calls_prefix_hash_started_at ON calls (prefix_hash, started_at, id)"))


_ROLLUPS = "0011_rollups"
#: The step from which the writer keeps ``call_rollups``.
ROLLUPS_STEP = 11


def _0011_rollups(conn: Connection) -> None:
    """``call_rollups``: the calls summed per UTC hour × model × tag set × error × waste class,
    kept on write (ledger/rollups.py); built here from the rows already stored."""
    from .rollups import rebuild

    moment = "TIMESTAMP WITH TIME ZONE" if conn.dialect.name == "postgresql" else "TEXT"
    money = [f"{name}_units_{part}" for name in ("code_execution_hours", *_V1_COSTS) for part in ("hi", "lo")]
    columns = ", ".join(f"{name} BIGINT NOT NULL" for name in (*_V1_TOKENS, *money))
    conn.execute(
        text(
            f"CREATE TABLE call_rollups (bucket {moment} NOT NULL, model TEXT NOT NULL, "
            "tags TEXT NOT NULL, error TEXT NOT NULL, priced INTEGER NOT NULL, waste INTEGER NOT NULL, "
            f"calls BIGINT NOT NULL, costed BIGINT NOT NULL, {columns}, "
            "CONSTRAINT pk_call_rollups PRIMARY KEY (bucket, model, tags, error, priced, waste))"
        )
    )
    rebuild(conn)


_PARTIAL_INDEXES = "0012_partial_write_indexes"


def _0012_partial_write_indexes(conn: Connection) -> None:
    """The prefix-hash and batch indexes become partial (``... IS NOT NULL``): a call without a
    prefix hash (unplanned traffic) or a batch id (most calls) writes no entry in them, and every
    query that reads them compares the column with ``=`` or ``IN``, which implies the predicate."""
    conn.execute(text("DROP INDEX ix_calls_prefix_hash_started_at"))
    conn.execute(
        text(
            "CREATE INDEX ix_calls_prefix_hash_started_at ON calls (prefix_hash, started_at, id) "
            "WHERE prefix_hash IS NOT NULL"
        )
    )
    conn.execute(text("DROP INDEX ix_calls_batch_id_custom_id"))
    conn.execute(
        text(
            "CREATE INDEX ix_calls_batch_id_custom_id ON calls (batch_id, custom_id) "
            "WHERE batch_id IS NOT NULL"
        )
    )


_COVERING_PREFIX = "0013_covering_prefix_index"


def _0013_covering_prefix_index(conn: Connection) -> None:
    """On PostgreSQL ``ix_calls_prefix_hash_started_at`` also holds ``model``, ``cost_error``
    and ``cost_total_units`` (``INCLUDE``, not keys: the order and the seeks are unchanged), so
    a report ranks the prefix families by cost with an index-only scan in family order instead
    of reading and sorting every row. SQLite has no ``INCLUDE``; its index stays as it is."""
    if conn.dialect.name != "postgresql":
        return
    conn.execute(text("DROP INDEX ix_calls_prefix_hash_started_at"))
    conn.execute(
        text(
            "CREATE INDEX ix_calls_prefix_hash_started_at ON calls (prefix_hash, started_at, id) "
            "INCLUDE (model, cost_error, cost_total_units) WHERE prefix_hash IS NOT NULL"
        )
    )


_PORTABLE_SOURCE = "0014_portable_rates_source"


def _portable_source(source: str) -> str:
    """``source`` as :class:`~cachewise.pricing.PriceBook` names tables in applied rates now: each
    file by its name, the shipped table (``anthropic.yaml`` in a ``pricing`` folder, in the wheel
    or a checkout) as ``cachewise:anthropic.yaml``."""
    names = []
    for path in source.split(", "):
        parts = path.replace("\\", "/").split("/")
        shipped = parts[-1] == "anthropic.yaml" and len(parts) > 1 and parts[-2] == "pricing"
        names.append("cachewise:anthropic.yaml" if shipped else parts[-1])
    return ", ".join(names)


def _0014_portable_rates_source(conn: Connection) -> None:
    """The applied rates of each call and reprice named the price table by its full path on the
    machine that priced it (a home directory, a virtualenv); they now name it by file name only
    (:func:`_portable_source`). One ``UPDATE`` per distinct source (a ledger holds a handful);
    nothing else in the rates changes. Refused records in ``quarantine`` keep their raw text."""
    postgres = conn.dialect.name == "postgresql"
    for table in ("calls", "reprices"):
        source = "rates->>'source'" if postgres else "json_extract(rates, '$.source')"
        found = conn.execute(text(f"SELECT DISTINCT {source} FROM {table} WHERE rates IS NOT NULL"))
        for (old,) in list(found):
            if not isinstance(old, str) or ("/" not in old and "\\" not in old):
                continue
            new = _portable_source(old)
            if postgres:
                change = "jsonb_set(rates, '{source}', to_jsonb(CAST(:new AS text)))"
            else:
                change = "json_set(rates, '$.source', :new)"
            conn.execute(
                text(f"UPDATE {table} SET rates = {change} WHERE {source} = :old"), {"new": new, "old": old}
            )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "0001_initial", _0001_initial),
    Migration(2, "0002_batch_custom_id", _0002_batch_custom_id),
    Migration(3, "0003_reprices", _0003_reprices),
    Migration(4, "0004_quarantine_raw_usage", _0004_quarantine_raw_usage),
    Migration(5, _0005_NAME, _0005_money_units),
    Migration(6, _0006_NAME, _0006_calls_provider),
    Migration(7, _MISS_REASONS, _0007_miss_reasons),
    Migration(8, _REPLAY, _0008_calls_replay),
    Migration(9, "0009_gateway_leases", _0009_gateway_leases),
    Migration(10, _PREFIX_TIME, _0010_prefix_hash_started_at_index),
    Migration(ROLLUPS_STEP, _ROLLUPS, _0011_rollups),
    Migration(12, _PARTIAL_INDEXES, _0012_partial_write_indexes),
    Migration(13, _COVERING_PREFIX, _0013_covering_prefix_index),
    Migration(14, _PORTABLE_SOURCE, _0014_portable_rates_source),
)


def latest_version() -> int:
    return MIGRATIONS[-1].id


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_ADVISORY_LOCK_KEY)))


def current_version(conn: Connection) -> int:
    """The highest step applied (0 for an empty database)."""
    if not inspect(conn).has_table(migrations_table.name):
        return 0
    found = conn.execute(select(func.max(migrations_table.c.id))).scalar()
    return int(found or 0)


def _check_names(conn: Connection, where: str) -> None:
    known = {m.id: m.name for m in MIGRATIONS}
    for step_id, name in conn.execute(select(migrations_table.c.id, migrations_table.c.name)):
        if step_id in known and known[step_id] != name:
            raise LedgerError(
                f"ledger {where}: step {step_id} is recorded as {name!r} but this cachewise calls it "
                f"{known[step_id]!r}; the database was created by a diverging build"
            )


def upgrade(conn: Connection, where: str, target: int | None = None) -> list[str]:
    """Apply the missing steps up to ``target`` (default: all) inside the caller's transaction.

    Returns the names applied. Raises :class:`SchemaTooNew` when the database is ahead of us.
    The caller commits (SQLite: the transaction must have been opened with ``BEGIN IMMEDIATE``).
    """
    goal = latest_version() if target is None else target
    _lock(conn)
    migrations_table.create(conn, checkfirst=True)
    found = current_version(conn)
    if found > latest_version():
        raise SchemaTooNew(where, found, latest_version())
    _check_names(conn, where)
    applied: list[str] = []
    for step in MIGRATIONS:
        if found < step.id <= goal:
            step.apply(conn)
            conn.execute(
                migrations_table.insert().values(id=step.id, name=step.name, applied_at=datetime.now(UTC))
            )
            applied.append(step.name)
    return applied
