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

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
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
    inspect,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import type_coerce
from sqlalchemy.sql.util import ClauseAdapter

from .query import Filter, _chunk_frame, _frame_select, empty_frame
from .rollups import floor_hour
from .schema import COST_COLUMNS, TOKEN_COLUMNS, call_rollups, call_tags, calls
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


# -- one scan: each call's keys, whether it is priced and which of its writes were wasted --------

#: Bits of a call's waste class: its 5-minute write was wasted, its 1-hour write was, or it wrote
#: the cache without a prefix hash (unattributed). Most calls are class 0.
_W5, _W1, _UNATTRIBUTED = 1, 2, 4
_LONGEST_TTL = 3600  # seconds: a read later than this after a write saves no write


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


def _moment(table: Any, dialect: str) -> ColumnElement[Any]:
    """``table.started_at`` as the database holds it (fixed-width UTC text on SQLite)."""
    return type_coerce(table.c.started_at, DateTime(timezone=True) if dialect == "postgresql" else Text())


def _later(dialect: str, moment: ColumnElement[Any], seconds: int) -> ColumnElement[Any]:
    """``moment`` + ``seconds`` in the stored form (fixed-width UTC text on SQLite)."""
    if dialect == "postgresql":
        return moment + literal_column(f"INTERVAL '{seconds} seconds'")
    whole = func.strftime("%Y-%m-%d %H:%M:%S", moment, f"+{seconds} seconds")
    return whole.op("||")(func.substr(moment, 20))  # the microseconds are unchanged


def _number(value: int) -> ColumnElement[Any]:
    """An integer constant written into the SQL (not a parameter: the same text on every call)."""
    return literal_column(str(int(value)))


def _priced() -> ColumnElement[bool]:
    return and_(calls.c.cost_error.is_(None), calls.c.cost_total.is_not(None))


def hour_text(moment: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    """The UTC hour of ``moment`` as ``YYYY-MM-DD HH`` text."""
    if dialect == "postgresql":
        utc = func.timezone("UTC", type_coerce(moment, DateTime(timezone=True)))
        return func.to_char(utc, "YYYY-MM-DD HH24")
    return func.substr(type_coerce(moment, Text()), 1, 13)


def waste_class(scope: Sequence[ColumnElement[bool]], dialect: str) -> ColumnElement[Any]:
    """Each call's waste class (bits :data:`_W5`, :data:`_W1`, :data:`_UNATTRIBUTED`).

    For a call that wrote the cache under a prefix hash, one seek in
    ``ix_calls_prefix_hash_started_at`` finds the first later call of its family among the calls
    in ``scope`` that read the cache, looking no further than the longest lifetime (a read after
    that saves neither write, as no read at all). ``CASE`` is lazy: a call that wrote nothing
    costs two comparisons.
    """
    n = calls.alias("n")
    adapt = ClauseAdapter(n).traverse
    at, then = _moment(calls, dialect), _moment(n, dialect)
    e5, e1 = calls.c.ephemeral_5m_input_tokens, calls.c.ephemeral_1h_input_tokens

    def missed(seconds: int) -> ColumnElement[bool]:
        return or_(then <= at, then > _later(dialect, at, seconds))

    w5, w1, none = _number(_W5), _number(_W1), _number(0)
    bits = case((and_(e5 > 0, missed(300)), w5), else_=none) + case(
        (and_(e1 > 0, missed(3600)), w1), else_=none
    )
    first_read = (
        select(bits)
        .where(
            n.c.prefix_hash == calls.c.prefix_hash,
            tuple_(n.c.started_at, n.c.id) > tuple_(calls.c.started_at, calls.c.id),
            then <= _later(dialect, at, _LONGEST_TTL),
            n.c.cache_read_input_tokens > 0,
            *(adapt(clause) for clause in scope),
        )
        .order_by(n.c.started_at, n.c.id)
        .limit(1)
        .correlate(calls)
        .scalar_subquery()
    )
    never_read = case((e5 > 0, w5), else_=none) + case((e1 > 0, w1), else_=none)
    attributed = func.coalesce(first_read, never_read)
    wrote = or_(e5 > 0, e1 > 0)
    unattributed = _number(_UNATTRIBUTED)
    return case((wrote, case((calls.c.prefix_hash.is_(None), unattributed), else_=attributed)), else_=none)


def _group_select(
    flt: Filter,
    keys: Sequence[str],
    dialect: str,
    *,
    split: bool,
    prefixed: bool,
    extra: Sequence[ColumnElement[bool]] = (),
    only: Sequence[ColumnElement[bool]] = (),
) -> Select[Any]:
    """One pass over the matching calls: sums by the keys, the priced flag and the waste class
    (plain column sums, no per-row arithmetic; :func:`group_sums` combines the classes).

    ``only``: read only these of the matching calls (the edges of a window the rollups cover),
    their write waste still decided among all matching calls.
    """
    source, key_columns = _key_columns(keys, dialect)
    scope = [*flt.where(), *extra]
    flags = [
        case((_priced(), _number(1)), else_=_number(0)).label("priced"),
        waste_class(scope, dialect).label("waste"),
    ]
    sums: list[ColumnElement[Any]] = [func.count().label("calls")]
    sums += [func.sum(calls.c[name]).label(name) for name in TOKEN_COLUMNS]
    for name in COST_COLUMNS:
        units = calls.c[f"{name}_units"]
        if split:
            sums.append(func.sum(units.op("/")(literal_column(str(_SPLIT)))).label(f"${name}_hi"))
            sums.append(func.sum(units.op("%")(literal_column(str(_SPLIT)))).label(f"${name}_lo"))
        else:
            sums.append(func.sum(units).label(f"${name}"))
    stmt = select(*key_columns, *flags, *sums).select_from(source).where(*scope, *only)
    if prefixed:
        stmt = stmt.where(calls.c.prefix_hash.is_not(None))
    # by position: the waste class is computed once per call, not again for the grouping
    positions = range(1, len(key_columns) + len(flags) + 1)
    return stmt.group_by(*(literal_column(str(i)) for i in positions))


def _ranking(
    priced: ColumnElement[Any], units: ColumnElement[Any], keys: Sequence[ColumnElement[Any]], dialect: str
) -> list[ColumnElement[Any]]:
    """Costliest first (a group with nothing priced last), then by key (code point order)."""
    rank = case((func.sum(priced) == 0, literal(-1)), else_=func.coalesce(func.sum(units), 0))
    return [rank.desc(), *(key.collate("C") if dialect == "postgresql" else key for key in keys)]


def _top_keys(conn: Connection, flt: Filter, column: ColumnElement[Any], top: int) -> list[Any]:
    """The ``top`` costliest values of ``column`` (not NULL), ranked without write waste (it
    does not change the cost), so that waste is then computed for those groups only.

    Only called when every matching row has its units (no inexact row), so ``cost_total_units``
    is NULL exactly where ``cost_total`` is: the ranking reads only the key, ``started_at``,
    ``id``, ``model``, ``cost_error`` and ``cost_total_units``, which PostgreSQL's
    ``ix_calls_prefix_hash_started_at`` holds (step 0013), so ranking the prefix families is an
    index-only scan in family order (no sort, no hash of every family).
    """
    units = calls.c.cost_total_units
    priced = case((and_(calls.c.cost_error.is_(None), units.is_not(None)), 1), else_=0)
    stmt = flt.apply(select(column).where(column.is_not(None))).group_by(column)
    stmt = stmt.order_by(*_ranking(priced, units, [column], conn.dialect.name))
    return [row[0] for row in conn.execute(stmt.limit(top))]


def _inexact(conn: Connection, flt: Filter) -> bool:
    stmt = flt.apply(select(literal(1)).where(calls.c.code_execution_hours_units.is_(None))).limit(1)
    return conn.execute(stmt).first() is not None


def _inexact_rows(
    conn: Connection,
    flt: Filter,
    keys: Sequence[str],
    dialect: str,
    prefixed: bool,
    extra: Sequence[ColumnElement[bool]],
) -> list[Any]:
    """The priced rows without units (partial index), with their keys, waste class and exact
    decimal money."""
    source, key_columns = _key_columns(keys, dialect)
    scope = [*flt.where(), *extra]
    money = [cast(calls.c[name], Text).label(f"${name}") for name in COST_COLUMNS]
    stmt = (
        select(*key_columns, waste_class(scope, dialect).label("waste"), *money)
        .select_from(source)
        .where(*scope, calls.c.code_execution_hours_units.is_(None), _priced())
    )
    if prefixed:
        stmt = stmt.where(calls.c.prefix_hash.is_not(None))
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


_TOKEN_NAMES = (*TOKEN_COLUMNS, *DERIVED_TOKENS)
_MONEY_NAMES = (*COST_COLUMNS, "wasted_write_cost")


@dataclass(slots=True)
class _Adder:
    """One group's counts and sums while the classes of :func:`_group_select` are added up."""

    calls: int = 0
    unpriced_calls: int = 0
    tokens: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_TOKEN_NAMES, 0))
    units: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_MONEY_NAMES, 0))
    extra: dict[str, Decimal] = field(default_factory=dict)

    def add(self, row: Mapping[str, Any]) -> None:
        count, waste = int(row["calls"]), int(row["waste"])
        got = {name: int(row[name] or 0) for name in TOKEN_COLUMNS}
        self.calls += count
        tokens = self.tokens
        for name, value in got.items():
            tokens[name] += value
        e5, e1 = got["ephemeral_5m_input_tokens"], got["ephemeral_1h_input_tokens"]
        tokens["wasted_5m_tokens"] += e5 if waste & _W5 else 0
        tokens["wasted_1h_tokens"] += e1 if waste & _W1 else 0
        tokens["unattributed_write_tokens"] += e5 + e1 if waste & _UNATTRIBUTED else 0
        if not row["priced"]:
            self.unpriced_calls += count
            prompt = got["input_tokens"] + got["cache_creation_input_tokens"] + got["cache_read_input_tokens"]
            tokens["unpriced_prompt_tokens"] += prompt
            tokens["unpriced_output_tokens"] += got["output_tokens"]
            return
        units = self.units
        for name in COST_COLUMNS:
            if f"${name}_hi" in row:
                value = int(row[f"${name}_hi"] or 0) * _SPLIT + int(row[f"${name}_lo"] or 0)
            else:
                value = int(row[f"${name}"] or 0)
            units[name] += value
        units["wasted_write_cost"] += units_of_waste(waste, row)

    def add_exact(self, waste: int, values: Mapping[str, Decimal]) -> None:
        """A priced row without units, from its exact decimal columns."""
        wasted = dict(values)
        wasted["wasted_write_cost"] = (values["cost_cache_write_5m"] if waste & _W5 else _ZERO) + (
            values["cost_cache_write_1h"] if waste & _W1 else _ZERO
        )
        for name, value in wasted.items():
            self.extra[name] = self.extra.get(name, _ZERO) + value

    def sums(self, key: tuple[Any, ...]) -> GroupSums:
        money = {name: _money(self.units[name]) for name in _MONEY_NAMES}
        for name, value in self.extra.items():
            money[name] += value
        return GroupSums(key, self.calls, self.unpriced_calls, self.tokens, money)


def units_of_waste(waste: int, row: Mapping[str, Any]) -> int:
    """The write cost (units) of a priced class row whose writes were wasted."""
    total = 0
    for bit, name in ((_W5, "cost_cache_write_5m"), (_W1, "cost_cache_write_1h")):
        if waste & bit:
            if f"${name}_hi" in row:
                total += int(row[f"${name}_hi"] or 0) * _SPLIT + int(row[f"${name}_lo"] or 0)
            else:
                total += int(row[f"${name}"] or 0)
    return total


def _order(groups: Sequence[GroupSums]) -> list[GroupSums]:
    """Costliest first (nothing priced last), ties by key in code point order."""
    return sorted(
        groups,
        key=lambda g: (
            g.calls == g.unpriced_calls,
            -g.money["cost_total"],
            tuple(NONE_KEY if v is None else v for v in g.key),
        ),
    )


NONE_KEY = "(none)"


def group_sums(
    conn: Connection,
    flt: Filter,
    keys: Sequence[str] = (),
    *,
    prefixed: bool = False,
    top: int | None = None,
    use_rollups: bool = True,
) -> list[GroupSums]:
    """The matching calls grouped by ``keys`` (no keys: one group, none if no call matched).

    One scan of the matching calls (:func:`_group_select`). ``prefixed``: only calls with a
    ``prefix_hash`` (write waste is still decided among all matching calls of the family).
    ``top``: only the ``top`` groups of highest priced cost (groups with nothing priced last,
    ties by key), costliest first; otherwise in no set order. The full hours of the window
    come from the rollups when they hold the keys and scope (:func:`_rollup_span`; the same
    sums as the rows, which ``use_rollups=False`` reads instead).
    """
    dialect = conn.dialect.name
    if dialect == "postgresql":  # compiling the sum expressions costs more than it saves
        conn.exec_driver_sql("SET LOCAL jit = off")
    inexact = _inexact(conn, flt)
    extra: list[ColumnElement[bool]] = []
    plain = len(keys) == 1 and keys[0] in calls.c and keys[0] not in _NOT_KEYS
    if top is not None and prefixed and plain and not inexact:  # rows without units change the ranking
        column = calls.c[keys[0]]
        chosen = _top_keys(conn, flt, column, top)
        if not chosen:
            return []
        extra.append(column.in_(chosen))

    def execute(stmt: Select[Any]) -> list[Any]:
        if dialect != "postgresql":
            return list(conn.execute(stmt).mappings())
        # PostgreSQL cannot estimate the groups of the flag expressions and would sort every
        # call for them; the groups are few, so hash them (sorting stays possible where needed)
        conn.exec_driver_sql("SET LOCAL enable_sort = off")
        try:
            return list(conn.execute(stmt).mappings())
        finally:
            conn.exec_driver_sql("SET LOCAL enable_sort = on")

    span = _rollup_span(conn, flt, keys) if use_rollups and top is None and not prefixed else None

    def run(split: bool) -> list[Any]:
        if span is None:
            return execute(_group_select(flt, keys, dialect, split=split, prefixed=prefixed, extra=extra))
        rows = _rollup_rows(conn, keys, span, execute)
        edges = _edges(span)
        if edges is not None:
            stmt = _group_select(flt, keys, dialect, split=split, prefixed=prefixed, only=[edges])
            rows += execute(stmt)
        return rows

    try:
        rows = run(split=False)
    except OperationalError as exc:
        if "overflow" not in str(exc):
            raise
        rows = run(split=True)
    adders: dict[tuple[Any, ...], _Adder] = {}
    for row in rows:
        key = tuple(_key_value(row[f"k{i}"], k) for i, k in enumerate(keys))
        adders.setdefault(key, _Adder()).add(row)
    if inexact:
        for found in _inexact_rows(conn, flt, keys, dialect, prefixed, extra):
            key = tuple(_key_value(found[i], k) for i, k in enumerate(keys))
            values = {name: Decimal(str(getattr(found, f"${name}"))) for name in COST_COLUMNS}
            adders.setdefault(key, _Adder()).add_exact(int(found.waste), values)
    out = [adder.sums(key) for key, adder in adders.items()]
    return out if top is None else _order(out)[:top]


# -- the full hours of a window, from the rollups kept on write (:mod:`.rollups`) ---------------------

#: Keys the rollups hold (``tag:NAME`` too); any other key reads the rows.
_ROLLUP_KEYS = frozenset(("model", "day", "month", "cost_error"))
_HOUR = timedelta(hours=1)


def _rollup_span(
    conn: Connection, flt: Filter, keys: Sequence[str]
) -> tuple[datetime | None, datetime | None] | None:
    """The full hours ``[low, high)`` of ``flt``'s window that the rollups answer (``None``: an
    open end), or ``None`` when the rows must be read: a model or tag scope (write waste is then
    decided among the scope's calls only), a key the rollups do not hold, or no full hour.

    ``high`` stops an hour before ``until``: a call's write waste looks up to an hour ahead, and
    a report's window cuts that look at ``until``, which the rollups (kept over the whole
    ledger) do not.
    """
    if flt.model is not None or flt.tags:
        return None
    if not all(key in _ROLLUP_KEYS or (key.startswith("tag:") and len(key) > 4) for key in keys):
        return None
    low = None if flt.since is None else _ceil_hour(flt.since)
    high = None if flt.until is None else floor_hour(flt.until - _HOUR)
    if low is not None and high is not None and low >= high:
        return None
    if not inspect(conn).has_table(call_rollups.name):
        return None
    return low, high


def _ceil_hour(moment: datetime) -> datetime:
    floor = floor_hour(moment)
    return floor if floor == moment else floor + _HOUR


def _edges(span: tuple[datetime | None, datetime | None]) -> ColumnElement[bool] | None:
    """The calls outside the rollups' hours (within the window's own bounds)."""
    low, high = span
    parts = []
    if low is not None:
        parts.append(calls.c.started_at < low)
    if high is not None:
        parts.append(calls.c.started_at >= high)
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else or_(*parts)


def _bucket_key(key: str, dialect: str) -> ColumnElement[Any]:
    width = 10 if key == "day" else 7
    bucket = call_rollups.c.bucket
    if dialect == "postgresql":
        utc = func.timezone("UTC", type_coerce(bucket, DateTime(timezone=True)))
        return func.to_char(utc, "YYYY-MM-DD" if key == "day" else "YYYY-MM")
    return func.substr(type_coerce(bucket, Text()), 1, width)


def _rollup_rows(
    conn: Connection,
    keys: Sequence[str],
    span: tuple[datetime | None, datetime | None],
    execute: Callable[[Select[Any]], list[Any]],
) -> list[dict[str, Any]]:
    """The rollups of the hours in ``span`` grouped by ``keys``, as rows of :func:`_group_select`
    (``execute`` runs the grouping: on PostgreSQL with sorting off, so the few groups are hashed
    rather than every rollup row sorted, which spilled to disk at a million calls)."""
    dialect = conn.dialect.name
    r = call_rollups.c
    group: list[ColumnElement[Any]] = []
    named: dict[str, int] = {}
    for key in dict.fromkeys(k if not k.startswith("tag:") else "tags" for k in keys):
        named[key] = len(group)
        if key in ("day", "month"):
            group.append(_bucket_key(key, dialect))
        else:
            group.append({"model": r.model, "cost_error": r.error, "tags": r.tags}[key])
    group += [r.priced, r.waste]
    sums: list[ColumnElement[Any]] = [func.sum(r.calls).label("calls")]
    sums += [func.sum(r[name]).label(name) for name in TOKEN_COLUMNS]
    for name in COST_COLUMNS:  # kept in two parts (units // 10^9, units % 10^9): no 64-bit sum
        sums.append(func.sum(r[f"{name}_units_hi"]).label(f"${name}_hi"))
        sums.append(func.sum(r[f"{name}_units_lo"]).label(f"${name}_lo"))
    stmt = select(*(c.label(f"g{i}") for i, c in enumerate(group)), *sums)
    low, high = span
    if low is not None:
        stmt = stmt.where(r.bucket >= low)
    if high is not None:
        stmt = stmt.where(r.bucket < high)
    stmt = stmt.group_by(*(literal_column(str(i)) for i in range(1, len(group) + 1)))
    out: list[dict[str, Any]] = []
    parsed: dict[str, dict[str, str]] = {}
    for row in execute(stmt):
        found = dict(row)
        found["priced"], found["waste"] = row[f"g{len(group) - 2}"], row[f"g{len(group) - 1}"]
        tags: dict[str, str] = {}
        if "tags" in named:
            text = row[f"g{named['tags']}"]
            tags = parsed[text] if text in parsed else parsed.setdefault(text, json.loads(text))
        for i, key in enumerate(keys):
            if key.startswith("tag:"):
                found[f"k{i}"] = tags.get(key.removeprefix("tag:"))
            elif key == "cost_error":
                error = row[f"g{named[key]}"]
                found[f"k{i}"] = error[1:] if error else None
            else:
                found[f"k{i}"] = row[f"g{named[key]}"]
        out.append(found)
    return out


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
