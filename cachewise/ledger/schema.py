"""The ledger's tables at the newest schema version (SQLAlchemy 2 Core).

``migrations.py`` builds these tables step by step; a test checks that a database
upgraded from step 0001 matches the tables here, and another that ``docs/ledger.md``
shows the SQL generated from them (``python -m cachewise.ledger.schema``).

One row of ``calls`` is one billed API request (docs/api-notes.md §8, "one row per billed
attempt"), keyed on the API's ``request-id``. Token columns keep the API's spellings
(docs/api-notes.md §3.1). Money columns are exact (:class:`~cachewise.ledger.types.Money`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.types import TypeEngine

from ..pricing.cost import COST_FIELDS
from ..usage import TOKEN_FIELDS
from .types import Money, UTCDateTime
from .units import UNITS_COLUMNS

__all__ = [
    "COST_COLUMNS",
    "MIGRATIONS_TABLE",
    "TOKEN_COLUMNS",
    "UNITS_COLUMNS",
    "call_rollups",
    "call_tags",
    "calls",
    "metadata",
    "migrations_table",
    "quarantine",
    "render_docs",
    "reprices",
    "schema_sql",
]

MIGRATIONS_TABLE = "cachewise_migrations"

#: Usage counters, with the API's names (docs/api-notes.md §3.1). All BIGINT, never NULL.
TOKEN_COLUMNS: tuple[str, ...] = TOKEN_FIELDS

#: The cost breakdown in USD; all NULL when pricing failed (see ``cost_error``).
COST_COLUMNS: tuple[str, ...] = COST_FIELDS


def id_type() -> TypeEngine[int]:
    """BIGINT on PostgreSQL, INTEGER (the rowid alias) on SQLite."""
    return BigInteger().with_variant(Integer(), "sqlite")


def json_type() -> TypeEngine[Any]:
    """JSONB on PostgreSQL, JSON text on SQLite."""
    return JSON().with_variant(postgresql.JSONB(), "postgresql")


metadata = MetaData()

migrations_table = Table(
    MIGRATIONS_TABLE,
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False, comment="step number, 1, 2, ..."),
    Column("name", Text, nullable=False, comment="step name, e.g. 0002_batch_custom_id"),
    Column("applied_at", UTCDateTime, nullable=False),
)

calls = Table(
    "calls",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("request_id", Text, nullable=False, comment="API request-id header; the idempotency key"),
    Column("recorded_at", UTCDateTime, nullable=False, comment="when the row was written"),
    Column("message_id", Text),
    Column("model", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("latency_ms", Float),
    Column("ttft_ms", Float, comment="time to first token, streams only"),
    Column("status", Text, nullable=False, comment="ok, error or incomplete"),
    Column("error_type", Text),
    Column("endpoint", Text, nullable=False, comment="messages, stream or batch"),
    Column("service_tier", Text),
    Column("inference_geo", Text),
    Column("speed", Text),
    Column("batch_id", Text),
    *(Column(name, BigInteger, nullable=False, server_default=text("0")) for name in TOKEN_COLUMNS),
    Column("code_execution_hours", Money, nullable=False, server_default=text("'0'")),
    Column("ttl_split_missing", Boolean, nullable=False, server_default=false()),
    Column("incomplete", Boolean, nullable=False, server_default=false()),
    Column("planned", Boolean, nullable=False, server_default=false()),
    Column("breakpoints", json_type(), comment="planner decisions: position, ttl, tokens, prefix_hash"),
    Column("prefix_hash", Text, comment="hash of the longest cached prefix"),
    Column("tags", json_type(), comment="copy of the call's tags; query them through call_tags"),
    Column("price_table_version", Text),
    Column("rates", json_type(), comment="the per-unit rates applied, as decimal strings"),
    *(Column(name, Money) for name in COST_COLUMNS),
    Column("cost_error", Text, comment="why pricing failed; the cost columns are then NULL"),
    Column("prompt", Text, comment="only with store_prompts=True"),
    Column("custom_id", Text, comment="batch request custom_id (step 0002)"),
    Column("raw_usage", Text, comment="usage JSON as received, kept when it cannot be trusted (step 0004)"),
    *(
        Column(name, BigInteger, comment="the money column in 10^-12 units (step 0005)")
        for name in UNITS_COLUMNS
    ),
    Column("provider", Text, comment="anthropic, bedrock or vertex; NULL before step 0006"),
    Column("miss_reason", Text, comment="local miss reason, docs/why.md (step 0007)"),
    Column("miss_detail", json_type(), comment="where the prefix differed: level, position, hashes, tokens"),
    Column("api_miss_reason", Text, comment="the API's diagnostics.cache_miss_reason type (step 0007)"),
    Column("api_missed_tokens", BigInteger, comment="the API's cache_missed_input_tokens (step 0007)"),
    Column(
        "replay",
        json_type(),
        comment="what whatif replays: prompt tokens, per position hash, tokens, level, TTL (step 0008)",
    ),
    UniqueConstraint("request_id", name="uq_calls_request_id"),
    Index("ix_calls_started_at", "started_at"),
    Index("ix_calls_model_started_at", "model", "started_at"),
    # Partial (step 0012): a call without a prefix hash or a batch id adds no entry to write.
    # Covering on PostgreSQL (step 0013): the prefix families are ranked by cost from the index
    # alone (ledger/aggregate.py, ``_top_keys``); SQLite has no INCLUDE and keeps the three keys.
    Index(
        "ix_calls_prefix_hash_started_at",
        "prefix_hash",
        "started_at",
        "id",
        sqlite_where=text("prefix_hash IS NOT NULL"),
        postgresql_where=text("prefix_hash IS NOT NULL"),
        postgresql_include=["model", "cost_error", "cost_total_units"],
    ),
    Index(
        "ix_calls_batch_id_custom_id",
        "batch_id",
        "custom_id",
        sqlite_where=text("batch_id IS NOT NULL"),
        postgresql_where=text("batch_id IS NOT NULL"),
    ),
    Index(
        "ix_calls_inexact_money",
        "started_at",
        sqlite_where=text("code_execution_hours_units IS NULL"),
        postgresql_where=text("code_execution_hours_units IS NULL"),
    ),
)

call_tags = Table(
    "call_tags",
    metadata,
    Column("call_id", id_type(), ForeignKey("calls.id", ondelete="CASCADE"), nullable=False),
    Column("key", Text, nullable=False),
    Column("value", Text, nullable=False),
    PrimaryKeyConstraint("call_id", "key", name="pk_call_tags"),
    Index("ix_call_tags_key_value", "key", "value"),
)

reprices = Table(
    "reprices",
    metadata,
    Column("request_id", Text, nullable=False),
    Column("table_version", Text, nullable=False, comment="version of the table used to reprice"),
    Column("priced_at", UTCDateTime, nullable=False),
    Column("rates", json_type()),
    *(Column(name, Money) for name in COST_COLUMNS),
    Column("cost_error", Text),
    PrimaryKeyConstraint("request_id", "table_version", name="pk_reprices"),
)


quarantine = Table(
    "quarantine",
    metadata,
    Column("id", id_type(), primary_key=True, autoincrement=True),
    Column("raw_hash", Text, nullable=False, comment="sha256 of raw_record; a record is kept once"),
    Column("quarantined_at", UTCDateTime, nullable=False),
    Column("request_id", Text, comment="the record's request id (escaped if it was not storable)"),
    Column("model", Text),
    Column("started_at", UTCDateTime, comment="the call's time; reports count it in this window"),
    Column("reason", Text, nullable=False, comment="why the database (or the ledger) refused the row"),
    Column("raw_record", Text, nullable=False, comment="the record as ASCII JSON, nothing dropped"),
    UniqueConstraint("raw_hash", name="uq_quarantine_raw_hash"),
    Index("ix_quarantine_started_at", "started_at"),
    Index("ix_quarantine_quarantined_at", "quarantined_at"),
)


#: Rollups kept on write (step 0011, :mod:`.rollups`): the calls of one UTC hour, model, tag set,
#: error, priced flag and write-waste class, summed; equal to the rows (``cachewise ledger rollups
#: check``) and rebuilt from them by ``cachewise ledger rollups rebuild``. Each money sum is two
#: BIGINTs, the sums of ``units // 10^9`` and ``units % 10^9``: exact far past 64 bits.
call_rollups = Table(
    "call_rollups",
    metadata,
    Column("bucket", UTCDateTime, nullable=False, comment="start of the UTC hour of started_at"),
    Column("model", Text, nullable=False),
    Column("tags", Text, nullable=False, comment="the call's call_tags as sorted JSON, {} for none"),
    Column("error", Text, nullable=False, comment="'' when cost_error is NULL, else '!' || cost_error"),
    Column("priced", Integer, nullable=False, comment="1: no cost_error and a cost_total"),
    Column("waste", Integer, nullable=False, comment="write-waste class bits (ledger/aggregate.py)"),
    Column("calls", BigInteger, nullable=False),
    Column("costed", BigInteger, nullable=False, comment="calls with a cost_total"),
    *(Column(name, BigInteger, nullable=False) for name in TOKEN_COLUMNS),
    *(
        Column(f"{name}_{part}", BigInteger, nullable=False, comment=f"sum of units {how} 10^9")
        for name in UNITS_COLUMNS
        for part, how in (("hi", "div"), ("lo", "mod"))
    ),
    PrimaryKeyConstraint("bucket", "model", "tags", "error", "priced", "waste", name="pk_call_rollups"),
)


def schema_sql(dialect_name: str) -> str:
    """``CREATE`` statements of the newest schema for ``sqlite`` or ``postgresql``."""
    from sqlalchemy.dialects import sqlite

    dialect = postgresql.dialect() if dialect_name == "postgresql" else sqlite.dialect()  # type: ignore[no-untyped-call]
    parts: list[str] = []
    for table in metadata.sorted_tables:
        parts.append(str(CreateTable(table).compile(dialect=dialect)).strip() + ";")
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            parts.append(str(CreateIndex(index).compile(dialect=dialect)).strip() + ";")
    text_sql = "\n\n".join(parts) + "\n"
    return "\n".join(line.rstrip() for line in text_sql.splitlines()) + "\n"


def render_docs(markdown: str) -> str:
    """``markdown`` with the blocks between ``<!-- schema:DIALECT -->`` markers regenerated."""
    import re

    for dialect in ("sqlite", "postgresql"):
        pattern = re.compile(
            rf"(<!-- schema:{dialect} -->\n```sql\n).*?(```\n<!-- /schema:{dialect} -->)", re.S
        )
        body = schema_sql(dialect)

        def fill(match: re.Match[str], body: str = body) -> str:
            return match.group(1) + body + match.group(2)

        markdown = pattern.sub(fill, markdown)
    return markdown


if __name__ == "__main__":  # pragma: no cover - regeneration entry point
    import sys
    from pathlib import Path

    if len(sys.argv) > 2 and sys.argv[1] == "--docs":
        doc = Path(sys.argv[2])
        doc.write_text(render_docs(doc.read_text()))
    else:
        print(schema_sql(sys.argv[1] if len(sys.argv) > 1 else "sqlite"), end="")
