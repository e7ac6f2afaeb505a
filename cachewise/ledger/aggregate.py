"""Sums grouped in SQL: what reports and budget checks read instead of the rows.

One aggregate query per table a report shows, on SQLite and PostgreSQL alike; memory follows
the number of groups, never the number of calls.

* **Keys**: ``model``, ``day`` (UTC, a :class:`~datetime.date`), ``month`` (``"YYYY-MM"``),
  ``tag:NAME`` (through ``call_tags``, one outer join per tag on its primary key
  ``(call_id, key)``; ``None`` when the call has no such tag) or any plain column of ``calls``
  (``None`` when it is NULL).
* **Money** is summed over *priced* calls only (no ``cost_error`` and a ``cost_total``), as
  integer 10⁻¹² units (:mod:`.units`): exact on both dialects. SQLite raises ``integer
  overflow`` rather than round past 64 bits; the sums are then taken as a high and a low part
  and recombined in Python. The rare rows without units (finer rates than 10⁻¹², marked by
  ``code_execution_hours_units IS NULL``, found through a partial index) are added from their
  exact decimal columns.
* **Write waste** (docs/reports.md, "Write waste"): a window function finds, for each call, the
  start of the first later call of its prefix family (same ``prefix_hash``, ordered by
  ``started_at`` then ``id``) that read the cache; a 5-minute write is wasted unless that read
  came strictly after and at most 5 minutes after it, a 1-hour write likewise with one hour.
  Calls without a ``prefix_hash`` count their writes as unattributed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    FromClause,
    Select,
    Text,
    and_,
    case,
    cast,
    func,
    literal,
    literal_column,
    or_,
    select,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import type_coerce

from .query import Filter, _chunk_frame, _frame_select, empty_frame
from .schema import COST_COLUMNS, TOKEN_COLUMNS, call_tags, calls
from .units import from_units

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DERIVED_TOKENS",
    "KEYS",
    "GroupSums",
    "family_labels",
    "group_sums",
    "read_page",
    "rollup",
]

#: The named keys; any other key is ``tag:NAME`` or a column of ``calls``.
KEYS = ("model", "day", "month")
#: Token sums beside the API's counters: write waste and the unpriced calls' tokens.
DERIVED_TOKENS = (
    "wasted_5m_tokens",
    "wasted_1h_tokens",
    "unattributed_write_tokens",
    "unpriced_prompt_tokens",
    "unpriced_output_tokens",
)
_NOT_KEYS = frozenset(("id", "tags", "breakpoints", "rates", "prompt", "raw_usage"))
_SPLIT = 10**9
_ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class GroupSums:
    """One group: its key values (in the order of the keys asked for), counts and exact sums.

    ``tokens``: every column of :data:`~cachewise.ledger.schema.TOKEN_COLUMNS` and
    :data:`DERIVED_TOKENS`; ``money``: every cost column (priced calls only) and
    ``wasted_write_cost``, as ``Decimal``.
    """

    key: tuple[Any, ...]
    calls: int
    unpriced_calls: int
    tokens: Mapping[str, int] = field(default_factory=dict)
    money: Mapping[str, Decimal] = field(default_factory=dict)

    def __add__(self, other: GroupSums) -> GroupSums:
        return GroupSums(
            self.key,
            self.calls + other.calls,
            self.unpriced_calls + other.unpriced_calls,
            {name: value + other.tokens[name] for name, value in self.tokens.items()},
            {name: value + other.money[name] for name, value in self.money.items()},
        )


def rollup(groups: Iterable[GroupSums], positions: Sequence[int]) -> list[GroupSums]:
    """``groups`` summed onto the key values at ``positions`` (``()``: one group for all), in
    order of first appearance."""
    out: dict[tuple[Any, ...], GroupSums] = {}
    for group in groups:
        key = tuple(group.key[i] for i in positions)
        moved = GroupSums(key, group.calls, group.unpriced_calls, group.tokens, group.money)
        out[key] = out[key] + moved if key in out else moved
    return list(out.values())


# -- the rows a group query reads -----------------------------------------------------------------


def _key_columns(keys: Sequence[str], dialect: str) -> tuple[FromClause, list[ColumnElement[Any]]]:
    source: FromClause = calls
    columns: list[ColumnElement[Any]] = []
    started = calls.c.started_at
    for i, key in enumerate(keys):
        if key in ("day", "month"):
            width = 10 if key == "day" else 7
            if dialect == "postgresql":
                utc = func.timezone("UTC", type_coerce(started, DateTime(timezone=True)))
                column: ColumnElement[Any] = func.to_char(utc, "YYYY-MM-DD" if key == "day" else "YYYY-MM")
            else:
                column = func.substr(type_coerce(started, Text()), 1, width)
        elif key.startswith("tag:"):
            name = key.removeprefix("tag:")
            if not name:
                raise ValueError("'tag:' needs a tag name, e.g. tag:feature")
            tag = call_tags.alias(f"tag_{i}")
            source = source.outerjoin(tag, and_(tag.c.call_id == calls.c.id, tag.c.key == name))
            column = tag.c.value
        elif key in calls.c and key not in _NOT_KEYS and not key.endswith("_units"):
            column = calls.c[key]
        else:
            raise ValueError(f"cannot group by {key!r}: use day, month, tag:NAME or a ledger column")
        columns.append(column.label(f"k{i}"))
    return source, columns


def _later(dialect: str, moment: ColumnElement[Any], seconds: int) -> ColumnElement[Any]:
    """``moment`` + ``seconds`` in the stored form (fixed-width UTC text on SQLite)."""
    if dialect == "postgresql":
        return moment + literal_column(f"INTERVAL '{seconds} seconds'")
    whole = func.strftime("%Y-%m-%d %H:%M:%S", moment, f"+{seconds} seconds")
    return whole.op("||")(func.substr(moment, 20))  # the microseconds are unchanged


def _next_reads(flt: Filter, dialect: str, extra: Sequence[ColumnElement[bool]]) -> Any:
    """For each matching call of a family that wrote or read the cache: the start of the first
    later call of its family that read it (a window over those calls only)."""
    moment = type_coerce(calls.c.started_at, DateTime(timezone=True) if dialect == "postgresql" else Text())
    read = case((calls.c.cache_read_input_tokens > 0, moment))
    next_read = func.min(read).over(
        partition_by=calls.c.prefix_hash, order_by=(calls.c.started_at, calls.c.id), rows=(1, None)
    )
    cached = or_(
        calls.c.cache_read_input_tokens > 0,
        calls.c.ephemeral_5m_input_tokens > 0,
        calls.c.ephemeral_1h_input_tokens > 0,
    )
    stmt = select(calls.c.id, next_read.label("next_read")).where(calls.c.prefix_hash.is_not(None), cached)
    return flt.apply(stmt).where(*extra).subquery("w")


def _rows(flt: Filter, keys: Sequence[str], dialect: str, extra: Sequence[ColumnElement[bool]] = ()) -> Any:
    """One row per matching call: its keys, priced flag, tokens, units and next cache read."""
    source, key_columns = _key_columns(keys, dialect)
    moment = type_coerce(calls.c.started_at, DateTime(timezone=True) if dialect == "postgresql" else Text())
    reads = _next_reads(flt, dialect, extra)
    source = source.outerjoin(reads, reads.c.id == calls.c.id)
    priced = and_(calls.c.cost_error.is_(None), calls.c.cost_total.is_not(None))
    stmt = select(
        *key_columns,
        calls.c.id,
        case((priced, 1), else_=0).label("priced"),
        case((calls.c.code_execution_hours_units.is_(None), 0), else_=1).label("exact"),
        calls.c.prefix_hash,
        moment.label("at"),
        reads.c.next_read,
        *(calls.c[name] for name in TOKEN_COLUMNS),
        *(calls.c[f"{name}_units"] for name in COST_COLUMNS),
    ).select_from(source)
    return flt.apply(stmt).where(*extra).subquery("r")


def _wasted(r: Any, tokens: str, seconds: int, dialect: str) -> ColumnElement[Any]:
    """``tokens`` written by the row and not read back in time (the lifetime end is computed
    only for rows that wrote: CASE is lazy)."""
    until = _later(dialect, r.c.at, seconds)
    missed = or_(r.c.next_read.is_(None), r.c.next_read <= r.c.at, r.c.next_read > until)
    return case((and_(r.c[tokens] > 0, r.c.prefix_hash.is_not(None), missed), r.c[tokens]), else_=0)


def _measures(r: Any, dialect: str) -> dict[str, ColumnElement[Any]]:
    """Per-row expressions over ``r`` summed by a group query: tokens, then money in units."""
    unpriced = r.c.priced == 0
    w5 = _wasted(r, "ephemeral_5m_input_tokens", 300, dialect)
    w1 = _wasted(r, "ephemeral_1h_input_tokens", 3600, dialect)
    writes = r.c.ephemeral_5m_input_tokens + r.c.ephemeral_1h_input_tokens
    prompt = r.c.input_tokens + r.c.cache_creation_input_tokens + r.c.cache_read_input_tokens
    out: dict[str, ColumnElement[Any]] = {name: r.c[name] for name in TOKEN_COLUMNS}
    out |= {
        "wasted_5m_tokens": w5,
        "wasted_1h_tokens": w1,
        "unattributed_write_tokens": case((r.c.prefix_hash.is_(None), writes), else_=0),
        "unpriced_prompt_tokens": case((unpriced, prompt), else_=0),
        "unpriced_output_tokens": case((unpriced, r.c.output_tokens), else_=0),
    }
    priced = r.c.priced == 1
    for name in COST_COLUMNS:
        out[f"${name}"] = case((priced, r.c[f"{name}_units"]), else_=0)
    out["$wasted_write_cost"] = case((and_(priced, w5 > 0), r.c.cost_cache_write_5m_units), else_=0) + case(
        (and_(priced, w1 > 0), r.c.cost_cache_write_1h_units), else_=0
    )
    return out


def _group_select(
    flt: Filter,
    keys: Sequence[str],
    dialect: str,
    *,
    split: bool,
    prefixed: bool,
    top: int | None,
    extra: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    r = _rows(flt, keys, dialect, extra)
    key_columns = [r.c[f"k{i}"] for i in range(len(keys))]
    sums: list[ColumnElement[Any]] = [
        func.count().label("calls"),
        func.coalesce(func.sum(1 - r.c.priced), 0).label("unpriced_calls"),
    ]
    for name, expr in _measures(r, dialect).items():
        if split and name.startswith("$"):
            sums.append(func.sum(expr.op("/")(literal_column(str(_SPLIT)))).label(f"{name}_hi"))
            sums.append(func.sum(expr.op("%")(literal_column(str(_SPLIT)))).label(f"{name}_lo"))
        else:
            sums.append(func.coalesce(func.sum(expr), 0).label(name))
    stmt = select(*key_columns, *sums).group_by(*key_columns)
    if prefixed:
        stmt = stmt.where(r.c.prefix_hash.is_not(None))
    if top is not None:
        stmt = stmt.order_by(*_ranking(r.c.priced, r.c.cost_total_units, key_columns, dialect)).limit(top)
    return stmt


def _ranking(
    priced: ColumnElement[Any], units: ColumnElement[Any], keys: Sequence[ColumnElement[Any]], dialect: str
) -> list[ColumnElement[Any]]:
    """Costliest first (a group with nothing priced last), then by key (code point order)."""
    rank = case((func.sum(priced) == 0, literal(-1)), else_=func.coalesce(func.sum(units), 0))
    return [rank.desc(), *(key.collate("C") if dialect == "postgresql" else key for key in keys)]


def _top_keys(conn: Connection, flt: Filter, column: ColumnElement[Any], top: int) -> list[Any]:
    """The ``top`` costliest values of ``column`` (not NULL), ranked without write waste (it
    does not change the cost), so that waste is then computed for those groups only."""
    priced = case((and_(calls.c.cost_error.is_(None), calls.c.cost_total.is_not(None)), 1), else_=0)
    stmt = flt.apply(select(column).where(column.is_not(None))).group_by(column)
    stmt = stmt.order_by(*_ranking(priced, calls.c.cost_total_units, [column], conn.dialect.name))
    return [row[0] for row in conn.execute(stmt.limit(top))]


def _inexact(conn: Connection, flt: Filter) -> bool:
    stmt = flt.apply(select(literal(1)).where(calls.c.code_execution_hours_units.is_(None))).limit(1)
    return conn.execute(stmt).first() is not None


def _inexact_rows(conn: Connection, flt: Filter, keys: Sequence[str], dialect: str) -> list[Any]:
    """The rows without units, with their keys, waste flags and exact decimal money."""
    r = _rows(flt, keys, dialect)
    inner = select(r).where(r.c.exact == 0).subquery("e")
    money = [cast(calls.c[name], Text).label(f"${name}") for name in COST_COLUMNS]
    stmt = select(
        *(inner.c[f"k{i}"] for i in range(len(keys))),
        inner.c.priced,
        (_wasted(inner, "ephemeral_5m_input_tokens", 300, dialect) > 0).label("w5"),
        (_wasted(inner, "ephemeral_1h_input_tokens", 3600, dialect) > 0).label("w1"),
        *money,
    ).join_from(inner, calls, calls.c.id == inner.c.id)
    return list(conn.execute(stmt))


def _money(units: int) -> Decimal:
    """The exact amount of ``units`` without trailing zeros (``0.1359``, not ``0.135900000000``;
    ``12``, not ``1.2E+1``): what a sum of the stored decimals shows."""
    value = from_units(units)
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _key_value(value: Any, key: str) -> Any:
    if value is not None and key == "day":
        return date.fromisoformat(str(value)[:10])
    return value


def group_sums(
    conn: Connection,
    flt: Filter,
    keys: Sequence[str] = (),
    *,
    prefixed: bool = False,
    top: int | None = None,
) -> list[GroupSums]:
    """The matching calls grouped by ``keys`` (no keys: one group, none if no call matched).

    ``prefixed``: only calls with a ``prefix_hash`` (write waste is still decided among all
    matching calls of the family). ``top``: only the ``top`` groups of highest priced cost
    (groups with nothing priced last, ties by key), costliest first; otherwise in no set order.
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":  # compiling the ~40 sum expressions costs more than it saves
        conn.exec_driver_sql("SET LOCAL jit = off")
    inexact = _inexact(conn, flt)
    limit = None if inexact else top  # rows without units change the ranking: rank in Python
    extra: list[ColumnElement[bool]] = []
    plain = len(keys) == 1 and keys[0] in calls.c and keys[0] not in _NOT_KEYS
    if limit is not None and prefixed and plain:
        column = calls.c[keys[0]]
        chosen = _top_keys(conn, flt, column, limit)
        if not chosen:
            return []
        extra.append(column.in_(chosen))

    def run(split: bool) -> list[Any]:
        stmt = _group_select(flt, keys, dialect, split=split, prefixed=prefixed, top=limit, extra=extra)
        return list(conn.execute(stmt).mappings())

    try:
        rows = run(split=False)
    except OperationalError as exc:
        if "overflow" not in str(exc):
            raise
        rows = run(split=True)
    derived = (*TOKEN_COLUMNS, *DERIVED_TOKENS)
    money_names = (*COST_COLUMNS, "wasted_write_cost")
    groups: dict[tuple[Any, ...], GroupSums] = {}
    for row in rows:
        key = tuple(_key_value(row[f"k{i}"], k) for i, k in enumerate(keys))
        money: dict[str, Decimal] = {}
        for name in money_names:
            if f"${name}_hi" in row:
                hi, lo = row[f"${name}_hi"], row[f"${name}_lo"]
                units = int(hi or 0) * _SPLIT + int(lo or 0)
            else:
                units = int(row[f"${name}"])
            money[name] = _money(units)
        groups[key] = GroupSums(
            key,
            int(row["calls"]),
            int(row["unpriced_calls"]),
            {name: int(row[name]) for name in derived},
            money,
        )
    if inexact:
        _add_inexact(conn, flt, keys, dialect, groups)
    out = list(groups.values())
    if top is not None and inexact:
        out.sort(key=lambda g: (g.calls == g.unpriced_calls, -g.money["cost_total"], g.key))
        out = out[:top]
    return out


def _add_inexact(
    conn: Connection,
    flt: Filter,
    keys: Sequence[str],
    dialect: str,
    groups: dict[tuple[Any, ...], GroupSums],
) -> None:
    for row in _inexact_rows(conn, flt, keys, dialect):
        key = tuple(_key_value(row[i], k) for i, k in enumerate(keys))
        if key not in groups or not row.priced:
            continue
        group = groups[key]
        money = dict(group.money)
        values = {name: Decimal(str(getattr(row, f"${name}"))) for name in COST_COLUMNS}
        for name, value in values.items():
            money[name] += value
        if row.w5:
            money["wasted_write_cost"] += values["cost_cache_write_5m"]
        if row.w1:
            money["wasted_write_cost"] += values["cost_cache_write_1h"]
        groups[key] = GroupSums(key, group.calls, group.unpriced_calls, group.tokens, money)


# -- what a report shows of a few prefix families and a few calls ---------------------------------


def family_labels(
    conn: Connection, flt: Filter, prefixes: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """For each of ``prefixes``: its most common model and its most common tag as ``key=value``
    (``None`` without tags) among the matching calls; ties go to the smallest text."""
    if not prefixes:
        return {}
    scope = [*flt.where(), calls.c.prefix_hash.in_(list(prefixes))]
    count = func.count().label("n")
    models = select(calls.c.prefix_hash, calls.c.model, count).where(*scope)
    models = models.group_by(calls.c.prefix_hash, calls.c.model)
    tag = call_tags.alias("tag")  # not the table a tag filter's EXISTS reads
    pairs = (
        select(calls.c.prefix_hash, tag.c.key, tag.c.value, count)
        .join_from(calls, tag, tag.c.call_id == calls.c.id)
        .where(*scope)
        .group_by(calls.c.prefix_hash, tag.c.key, tag.c.value)
    )
    best_model: dict[str, tuple[int, str]] = {}
    for prefix, model, n in conn.execute(models):
        found = best_model.get(prefix)
        if found is None or (-n, model) < (-found[0], found[1]):
            best_model[prefix] = (n, model)
    best_tag: dict[str, tuple[int, str]] = {}
    for prefix, key, value, n in conn.execute(pairs):
        text = f"{key}={value}"
        found = best_tag.get(prefix)
        if found is None or (-n, text) < (-found[0], found[1]):
            best_tag[prefix] = (n, text)
    return {
        prefix: (model, best_tag[prefix][1] if prefix in best_tag else None)
        for prefix, (_, model) in best_model.items()
    }


def read_page(conn: Connection, flt: Filter, limit: int, offset: int = 0) -> tuple[pd.DataFrame, list[str]]:
    """One page of calls, newest first (ties: oldest id first), for a listing.

    Returns a ledger frame (oldest first) of the page's calls *and* the other matching calls of
    their prefix families (the write waste of a call depends on them), and the page's request
    ids in listing order.
    """
    page = (
        flt.apply(select(calls.c.id, calls.c.request_id, calls.c.prefix_hash))
        .order_by(calls.c.started_at.desc(), calls.c.id)
        .limit(limit)
        .offset(offset)
    )
    listed = list(conn.execute(page))
    if not listed:
        return empty_frame("decimal"), []
    ids = [row.id for row in listed]
    prefixes = sorted({row.prefix_hash for row in listed if row.prefix_hash is not None})
    wanted: ColumnElement[bool] = calls.c.id.in_(ids)
    if prefixes:
        wanted = or_(wanted, calls.c.prefix_hash.in_(prefixes))
    dialect = conn.dialect.name
    stmt = flt.apply(_frame_select(dialect, "decimal")).where(wanted)
    found = list(conn.execute(stmt.order_by(calls.c.started_at, calls.c.id)))
    frame = _chunk_frame(found, dialect) if found else empty_frame("decimal")
    return frame, [row.request_id for row in listed]
