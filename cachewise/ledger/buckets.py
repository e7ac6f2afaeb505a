"""The ledger summed per time bucket and model (and, optionally, a tag), in SQL.

What ``cachewise reconcile`` compares with the Admin API's usage and cost reports
(docs/api-notes.md §11): one row per UTC bucket (``1m``, ``1h`` or ``1d``) × model × the value of
one tag (e.g. the tag that holds the workspace), with the API's token counters and the exact
``Decimal`` total cost. Costs are summed as integer units (:mod:`.units`); the rare row whose
money has no units is added as an exact decimal. Reading never writes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Context, Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, func, literal, select

from .schema import call_tags, calls
from .units import from_units

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = ["BUCKET_WIDTHS", "BucketSums", "read_buckets"]

#: bucket width -> length of the ``YYYY-MM-DD HH:MM`` text prefix that names its bucket.
BUCKET_WIDTHS: dict[str, int] = {"1d": 10, "1h": 13, "1m": 16}
#: The counters compared with the usage report (the ledger's names, the API's meaning: §11.1).
BUCKET_TOKENS: tuple[str, ...] = (
    "input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
_EXACT = Context(prec=200)


@dataclass(frozen=True, slots=True)
class BucketSums:
    """One bucket × model × group of the ledger."""

    starting_at: datetime
    model: str
    group: str | None
    calls: int
    input_tokens: int
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int
    cache_read_input_tokens: int
    output_tokens: int
    cost: Decimal
    unpriced_calls: int


def _bucket_text(dialect: str, width: str) -> ColumnElement[Any]:
    """The bucket's start as ``YYYY-MM-DD HH:MM`` text, cut to the width's prefix."""
    if dialect == "postgresql":
        text: ColumnElement[Any] = func.to_char(
            func.timezone("UTC", calls.c.started_at), "YYYY-MM-DD HH24:MI"
        )
    else:  # SQLite keeps UTC text, fixed width: "YYYY-MM-DD HH:MM:SS.ffffff" (types.UTCDateTime)
        text = calls.c.started_at
    return func.substr(text, 1, BUCKET_WIDTHS[width])


def _start(text: str, width: str) -> datetime:
    suffix = {"1d": " 00:00", "1h": ":00", "1m": ""}[width]
    return datetime.fromisoformat(text + suffix).replace(tzinfo=UTC)


def read_buckets(
    ledger: Ledger,
    *,
    since: datetime,
    until: datetime,
    width: str = "1d",
    group_tag: str | None = None,
    models: Sequence[str] | None = None,
) -> list[BucketSums]:
    """The ledger's calls started in ``[since, until)``, summed per bucket × model (× tag value)."""
    if width not in BUCKET_WIDTHS:
        raise ValueError(f"bucket width: expected one of {', '.join(BUCKET_WIDTHS)}, not {width!r}")
    store = ledger._store
    dialect = store.dialect
    bucket = _bucket_text(dialect, width).label("bucket")
    group: ColumnElement[Any] = call_tags.c.value if group_tag is not None else literal(None)
    keys = (bucket, calls.c.model, group.label("grp"))
    where = [calls.c.started_at >= since, calls.c.started_at < until]
    if models:
        where.append(calls.c.model.in_(list(models)))
    source: Any = calls
    if group_tag is not None:
        source = calls.outerjoin(
            call_tags, and_(call_tags.c.call_id == calls.c.id, call_tags.c.key == group_tag)
        )
    stmt = (
        select(
            *keys,
            func.count().label("calls"),
            func.count(calls.c.cost_total).label("priced"),
            *(func.coalesce(func.sum(calls.c[name]), 0).label(name) for name in BUCKET_TOKENS),
            func.sum(calls.c.cost_total_units).label("units"),
        )
        .select_from(source)
        .where(*where)
        .group_by(*keys)
    )
    # Priced rows whose money has no integer units (usually none): summed as exact decimals.
    inexact = (
        select(*keys, calls.c.cost_total)
        .select_from(source)
        .where(*where, calls.c.cost_total.is_not(None), calls.c.cost_total_units.is_(None))
    )
    with store.read() as conn:
        rows = conn.execute(stmt).mappings().all()
        extra: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        for row in conn.execute(inexact).mappings():
            key = (row["bucket"], row["model"], row["grp"])
            extra[key] = _EXACT.add(extra[key], row["cost_total"])
    out = []
    for row in rows:
        key = (row["bucket"], row["model"], row["grp"])
        cost = from_units(int(row["units"])) if row["units"] is not None else Decimal(0)
        if key in extra:
            cost = _EXACT.add(cost, extra[key])
        out.append(
            BucketSums(
                starting_at=_start(str(row["bucket"]), width),
                model=str(row["model"]),
                group=None if row["grp"] is None else str(row["grp"]),
                calls=int(row["calls"]),
                **{name: int(row[name]) for name in BUCKET_TOKENS},
                cost=cost,
                unpriced_calls=int(row["calls"]) - int(row["priced"]),
            )
        )
    out.sort(key=lambda b: (b.starting_at, b.model, b.group or ""))
    return out
