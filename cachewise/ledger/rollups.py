"""Rollups kept on write: the calls summed per UTC hour × model × tag set × error × waste class.

What reports, ``totals()`` and budget checks read instead of the rows for every *full* hour of
their window (:mod:`.aggregate`, :mod:`.query`); the partial hours at the window's edges are
read from the rows. The guarantees:

* **Equal to the rows, exactly.** ``call_rollups`` holds integer sums only (counts, tokens,
  money as 10⁻¹² units, NULL units added as 0 exactly as SQL ``SUM`` skips them), keyed by
  the hour of ``started_at``, ``model``, the call's ``call_tags`` as sorted JSON, its
  ``cost_error``, whether it is priced, and its write-waste class (:mod:`.aggregate`).
* **Kept in the write's transaction.** :func:`record_inserted` runs inside the transaction
  (or savepoint) that inserted the rows: it adds the new rows and moves the earlier calls of
  their prefix families whose waste class the new rows changed (a write read back by a new
  call is no longer wasted). Inserts are the only writer of ``calls``; nothing updates or
  deletes a call (reprices go to ``reprices``, refused rows to ``quarantine``).
* **One writer at a time.** SQLite's write lock serialises writers; on PostgreSQL a
  transaction-level advisory lock does, so each writer sees every committed row of the
  families it touches.
* **Checked and rebuilt from the rows.** :func:`compute` sums the rows in SQL with the same
  waste class the reports use; :func:`check` compares, :func:`rebuild` replaces
  (``cachewise ledger rollups check|rebuild``, schema step 0011 builds them).

Each money sum is kept as two BIGINT sums, of ``units // 10⁹`` and of ``units % 10⁹`` (a call's
units are at most 2⁶³ − 1): a rollup row stays exact up to about 10⁹ calls of the largest cost,
and readers add the parts in Python, so no sum of money meets SQLite's 64-bit bound. On SQLite the
write path splits in SQL, whose ``/`` truncates and whose ``%`` keeps the sign: a negative amount
(``savings``) has other parts than ``divmod`` gives, with the same ``hi·10⁹ + lo``, and the same
bound (``|lo| < 10⁹``); readers only ever add the two parts.
"""

from __future__ import annotations

import functools
import json
import operator
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, Text, and_, case, cast, delete, func, literal_column, not_, or_, select
from sqlalchemy.exc import DBAPIError

from .multirow import execute_in_sizes
from .schema import TOKEN_COLUMNS, call_rollups, call_tags, calls
from .types import format_utc
from .units import UNITS_COLUMNS

__all__ = [
    "MEASURES",
    "RollupCheck",
    "Sums",
    "check",
    "compute",
    "error_key",
    "floor_hour",
    "rebuild",
    "record_inserted",
    "tags_key",
]

HOUR = timedelta(hours=1)
#: The summed columns of ``call_rollups``, in this order in every :data:`Sums` list.
MEASURES: tuple[str, ...] = ("calls", "costed", *TOKEN_COLUMNS, *UNITS_COLUMNS)
#: (bucket, model, tags, error, priced, waste)
Key = tuple[Any, str, str, str, int, int]  # the bucket: a datetime, or its driver value on write
Sums = dict[Key, list[int]]

_W5, _W1, _UNATTRIBUTED = 1, 2, 4  # the bits of aggregate._waste_class
_5M, _1H = timedelta(minutes=5), timedelta(hours=1)
_LOCK_KEY = 0x63772D726F6C6C75  # "cw-rollu": serialises rollup upkeep on PostgreSQL
_IN_CHUNK = 500
#: Families whose last full read held at least :data:`_WIDE_MEMBERS` stored writes and reads: read
#: from their last read before the new calls from then on (:func:`_family_members`). A hint of this
#: process only (any family may be read either way: both give the same classes); emptied when full.
_WIDE: set[str] = set()
_WIDE_MEMBERS = 64
_WIDE_MAX = 4096
_SPLIT = 10**9
_KEYS = ("bucket", "model", "tags", "error", "priced", "waste")
_PLAIN = ("calls", "costed", *TOKEN_COLUMNS)
_PARTS = tuple(f"{name}_{part}" for name in UNITS_COLUMNS for part in ("hi", "lo"))

# Positions in the driver values :func:`cachewise.ledger.store.record_values` builds (the
# columns of ``calls`` without ``id``, in table order).
_COLUMNS = tuple(c.name for c in calls.columns if c.name != "id")
_AT = {name: i for i, name in enumerate(_COLUMNS)}
_TOKENS_OF = operator.itemgetter(*(_AT[name] for name in TOKEN_COLUMNS))
_UNITS_OF = operator.itemgetter(*(_AT[name] for name in UNITS_COLUMNS))


def floor_hour(moment: datetime) -> datetime:
    """The start of ``moment``'s UTC hour (aware UTC)."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def tags_key(tags: Mapping[str, Any]) -> str:
    """A tag set as the rollups key it: sorted JSON, ``{}`` for none."""
    if not tags:
        return "{}"
    return json.dumps({k: str(tags[k]) for k in sorted(tags)}, separators=(",", ":"), ensure_ascii=False)


def error_key(cost_error: str | None) -> str:
    """``cost_error`` as a non-NULL key: ``''`` for none, else ``'!'`` and the text."""
    return "" if cost_error is None else "!" + cost_error


def _driver_bucket(moment: datetime, sqlite: bool) -> Any:
    """The start of ``moment``'s hour as the driver takes it (SQLite: its fixed-width UTC text)."""
    hour = floor_hour(moment)
    return format_utc(hour) if sqlite else hour


_HOUR_TEXT = ":00:00.000000"  # what format_utc writes after the hour, at its start


def _text_bucket(started: str) -> str:
    """The start of the hour of a SQLite ``started_at`` (fixed-width UTC text), as the same text:
    :func:`_driver_bucket` without parsing the time, when ``started`` has ``format_utc``'s form."""
    if len(started) == 26 and started[13] == ":" and started[19] == ".":
        return started[:13] + _HOUR_TEXT
    return format_utc(floor_hour(_moment(started)))


def _moment(value: Any) -> datetime:
    """A ``started_at`` driver value (SQLite's fixed-width UTC text, or a datetime) as aware UTC."""
    if isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    assert isinstance(value, datetime)
    return value.astimezone(UTC)


def _class(e5: int, e1: int, prefixed: bool, at: datetime, first_read: datetime | None) -> int:
    """The waste class of one call (docs/reports.md, "Write waste"); ``first_read``: the start of
    the first later call of its family that read the cache, at most an hour after ``at``."""
    if e5 <= 0 and e1 <= 0:
        return 0
    if not prefixed:
        return _UNATTRIBUTED
    bits = 0
    if e5 > 0 and (first_read is None or not at < first_read <= at + _5M):
        bits |= _W5
    if e1 > 0 and (first_read is None or not at < first_read <= at + _1H):
        bits |= _W1
    return bits


class _Member(NamedTuple):  # a tuple: built once per call of a family, cheaper than a frozen dataclass
    id: int
    at: datetime
    e5: int
    e1: int
    reads: bool


def _family_classes(members: Sequence[_Member], until: datetime) -> dict[int, int]:
    """Waste classes of the family's writers started up to ``until`` (their next hour is in
    ``members``)."""
    ordered = sorted(members, key=lambda m: (m.at, m.id))
    out: dict[int, int] = {}
    for i, member in enumerate(ordered):
        if (member.e5 <= 0 and member.e1 <= 0) or member.at > until:
            continue
        first: datetime | None = None
        for later in ordered[i + 1 :]:
            if later.at > member.at + _1H:
                break
            if later.reads:
                first = later.at
                break
        out[member.id] = _class(member.e5, member.e1, True, member.at, first)
    return out


def _add(sums: Sums, key: Key, measures: Sequence[int], sign: Literal[1, -1] = 1) -> None:
    """Add ``measures`` (or take them away, ``sign=-1``) onto the sums under ``key``."""
    found = sums.get(key)
    if found is None:
        sums[key] = list(measures) if sign == 1 else [-v for v in measures]
    elif sign == 1:  # the write path's case, once per call: no product per value
        for i, value in enumerate(measures):
            found[i] += value
    else:
        for i, value in enumerate(measures):
            found[i] -= value


def _lock(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_LOCK_KEY)))


def record_inserted(
    conn: Connection, rows: Sequence[tuple[Sequence[Any], Mapping[str, Any]]], inserted: Mapping[str, int]
) -> None:
    """Keep the rollups right for rows just inserted in this transaction.

    ``rows``: the driver values and tags of the rows written (``Store`` prepared rows);
    ``inserted``: request id → id of those actually inserted (the others were already there).
    """
    if not inserted:
        return
    _lock(conn)
    new: list[tuple[int, Sequence[Any], Mapping[str, Any]]] = []
    for values, tags in rows:
        call_id = inserted.get(values[0])
        if call_id is not None:
            new.append((call_id, values, tags))
    if not new:
        return
    families: dict[str, list[datetime]] = {}
    joining: dict[str, list[_Member]] = {}  # the new calls that decide a class, by family
    prefix_at, started_at = _AT["prefix_hash"], _AT["started_at"]
    e5_at, e1_at, read_at = (
        _AT["ephemeral_5m_input_tokens"],
        _AT["ephemeral_1h_input_tokens"],
        _AT["cache_read_input_tokens"],
    )
    for call_id, values, _tags in new:
        prefix = values[prefix_at]
        if prefix is not None:
            at = _moment(values[started_at])
            families.setdefault(prefix, []).append(at)
            e5, e1, read = values[e5_at], values[e1_at], values[read_at] > 0
            if read or e5 > 0 or e1 > 0:
                joining.setdefault(prefix, []).append(_Member(call_id, at, e5, e1, read))
    ids = sorted(call_id for call_id, _v, _t in new)
    before: dict[int, int] = {}
    after: dict[int, int] = {}
    if families:
        for prefix, earlier, until in _family_members(conn, families, ids):
            members = earlier + joining.get(prefix, [])
            after.update(_family_classes(members, until))
            before.update(_family_classes(earlier, until))
    deltas: Sums = {}
    tag_keys: dict[int, str] = {}
    hours: dict[Any, Any] = {}
    model_at, error_at, total_at = _AT["model"], _AT["cost_error"], _AT["cost_total"]
    tokens_of, units_of = _TOKENS_OF, _UNITS_OF
    get_delta, add = deltas.get, operator.add
    for call_id, values, tags in new:
        waste = after.get(call_id)
        if waste is None:  # not a writer under a prefix hash: its class is its own (see _class)
            waste = 0 if values[e5_at] <= 0 and values[e1_at] <= 0 else _UNATTRIBUTED
        tags_text = tag_keys.get(id(tags))
        if tags_text is None:
            tags_text = tag_keys[id(tags)] = tags_key(tags)
        started = values[started_at]
        if isinstance(started, str):  # SQLite: fixed-width UTC text, the hour its first 13 characters
            hour_of = started[:13]
            bucket = hours.get(hour_of)
            if bucket is None:  # once per hour of the batch
                bucket = hours[hour_of] = _text_bucket(started)
        else:  # PostgreSQL: an aware datetime
            hour_of = started.replace(minute=0, second=0, microsecond=0)
            bucket = hours.get(hour_of)
            if bucket is None:
                bucket = hours[hour_of] = _driver_bucket(_moment(started), False)
        error = values[error_at]
        costed = values[total_at] is not None
        key = (
            bucket,
            values[model_at],
            tags_text,
            "" if error is None else "!" + error,  # error_key
            1 if error is None and costed else 0,
            waste,
        )
        units = units_of(values)
        if None in units:  # unpriced, or money without exact units: those count as 0, as SQL SUM skips NULL
            units = [u or 0 for u in units]
        measures = [1, 1 if costed else 0, *tokens_of(values), *units]
        found = get_delta(key)
        if found is None:  # the write path's _add, inlined: once per call
            deltas[key] = measures
        else:
            deltas[key] = list(map(add, found, measures))
    moved = {call_id: (was, after[call_id]) for call_id, was in before.items() if after[call_id] != was}
    if moved:
        for key_of, measures in _stored_calls(conn, list(moved)):
            was, now = moved[key_of[0]]
            base = key_of[1]
            _add(deltas, (*base, was), measures, -1)
            _add(deltas, (*base, now), measures)
    _apply(conn, deltas, prune=bool(moved))


def _family_members(
    conn: Connection, families: Mapping[str, Sequence[datetime]], new: Sequence[int]
) -> Iterable[tuple[str, list[_Member], datetime]]:
    """Each family's stored calls whose waste class a new call can change, and what decides them,
    without the calls ``new`` (sorted ids) just inserted, which the caller knows:
    ``(prefix, members, last new time)``.

    That is the family's writes and reads from an hour before its first new call to an hour after
    its last. A family met wide before (:data:`_WIDE`: one prefix read by every call, a busy system
    prompt) is read from its last read before its first new call instead, when that is later: a
    writer before that read has its first read there or earlier (or none within its hour, and then
    a new call, later still, is out of its reach too), so no new call changes its class, and every
    member after it in time is read, so the classes of those after it are worked out in full.
    """
    names = sorted(families)
    fresh = set(new)
    # Consecutive new ids (the bulk path) are left out in SQL, not read back to be dropped here.
    leave_out = (
        not_(calls.c.id.between(new[0], new[-1])) if new and new[-1] - new[0] + 1 == len(new) else None
    )
    wide = [prefix for prefix in names if prefix in _WIDE]
    narrow = [prefix for prefix in names if prefix not in _WIDE]
    for start in range(0, len(narrow), _IN_CHUNK):
        chunk = narrow[start : start + _IN_CHUNK]
        low = min(min(families[p]) for p in chunk) - _1H
        high = max(max(families[p]) for p in chunk)
        found = _members(conn, chunk, low, high + _1H, leave_out, fresh)
        for prefix, members in found.items():
            if len(members) >= _WIDE_MEMBERS:
                _mark_wide(prefix)
            yield prefix, members, max(families[prefix])
    for prefix in wide:
        first = min(families[prefix])
        low = _last_read_before(conn, prefix, first) or first - _1H
        found = _members(conn, [prefix], low, max(families[prefix]) + _1H, leave_out, fresh)
        yield prefix, found[prefix], max(families[prefix])


def _members(
    conn: Connection,
    prefixes: Sequence[str],
    low: datetime,
    high: datetime,
    leave_out: Any,
    fresh: set[int],
) -> dict[str, list[_Member]]:
    """The stored writes and reads of ``prefixes`` started from ``low`` to ``high``, not ``fresh``."""
    reads = case((calls.c.cache_read_input_tokens > 0, 1), else_=0)
    stmt = select(
        calls.c.prefix_hash,
        calls.c.id,
        calls.c.started_at,
        calls.c.ephemeral_5m_input_tokens,
        calls.c.ephemeral_1h_input_tokens,
        reads,
    ).where(
        calls.c.prefix_hash.in_(prefixes),
        calls.c.started_at >= low,
        calls.c.started_at <= high,
        or_(  # only writes and reads decide a class
            calls.c.cache_read_input_tokens > 0,
            calls.c.ephemeral_5m_input_tokens > 0,
            calls.c.ephemeral_1h_input_tokens > 0,
        ),
    )
    if leave_out is not None:
        stmt = stmt.where(leave_out)
    found: dict[str, list[_Member]] = {prefix: [] for prefix in prefixes}
    for prefix, call_id, at, e5, e1, read in conn.execute(stmt):
        if call_id not in fresh:
            found[prefix].append(_Member(call_id, _moment(at), e5, e1, bool(read)))
    return found


def _last_read_before(conn: Connection, prefix: str, first: datetime) -> datetime | None:
    """The start of the family's last stored read strictly before ``first``, within the hour before."""
    stmt = (
        select(calls.c.started_at)
        .where(
            calls.c.prefix_hash == prefix,
            calls.c.started_at < first,
            calls.c.started_at >= first - _1H,
            calls.c.cache_read_input_tokens > 0,
        )
        .order_by(calls.c.started_at.desc())
        .limit(1)
    )
    at = conn.execute(stmt).scalar()
    return None if at is None else _moment(at)


def _mark_wide(prefix: str) -> None:
    if len(_WIDE) >= _WIDE_MAX:
        _WIDE.clear()
    _WIDE.add(prefix)


def _stored_calls(
    conn: Connection, ids: Sequence[int]
) -> Iterable[tuple[tuple[int, tuple[Any, ...]], list[int]]]:
    """``((id, (bucket, model, tags, error, priced)), measures)`` of stored calls."""
    columns = [calls.c[name] for name in (*TOKEN_COLUMNS, *UNITS_COLUMNS)]
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = list(ids[start : start + _IN_CHUNK])
        tags: dict[int, dict[str, str]] = {}
        tag_stmt = select(call_tags.c.call_id, call_tags.c.key, call_tags.c.value).where(
            call_tags.c.call_id.in_(chunk)
        )
        for call_id, key, value in conn.execute(tag_stmt):
            tags.setdefault(call_id, {})[key] = value
        stmt = select(
            calls.c.id, calls.c.started_at, calls.c.model, calls.c.cost_error, calls.c.cost_total, *columns
        )
        for row in conn.execute(stmt.where(calls.c.id.in_(chunk))):
            call_id, at, model, error, total, *measures = row
            costed = total is not None
            bucket = _driver_bucket(_moment(at), conn.dialect.name == "sqlite")
            base = (bucket, model, tags_key(tags.get(call_id, {})), error_key(error))
            yield (
                (call_id, (*base, int(error is None and costed))),
                [1, int(costed), *(v or 0 for v in measures)],
            )


def _driver_row(key: tuple[Any, ...], sums: Sequence[int]) -> tuple[Any, ...]:
    """A ``call_rollups`` row's driver values: the key, the plain sums, each units sum in two parts."""
    plain, split = len(_PLAIN), _SPLIT
    return (
        *key,
        *sums[:plain],
        *[part for value in sums[plain:] for part in (value // split, value % split)],
    )


_COLUMNS_SQL = ", ".join((*_KEYS, *_PLAIN, *_PARTS))
_ADD_SQL = ", ".join(f"{name} = call_rollups.{name} + excluded.{name}" for name in (*_PLAIN, *_PARTS))


def _upsert_sql(mark: str) -> str:
    marks = ", ".join([mark] * (len(_KEYS) + len(_PLAIN) + len(_PARTS)))
    return (
        f"INSERT INTO call_rollups ({_COLUMNS_SQL}) VALUES ({marks}) "
        f"ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET {_ADD_SQL}"
    )


_UPSERT = {"sqlite": _upsert_sql("?"), "postgresql": _upsert_sql("%s")}
_WIDTH = len(_KEYS) + len(_PLAIN) + len(_PARTS)
#: Rollup rows per multi-row upsert on SQLite: full statements, then the rest in a few sizes (few
#: distinct statements, so they stay prepared; SQLite binds at most 32,766 values a statement).
_SQLITE_UPSERT_SIZES = (min(500, 32_000 // _WIDTH), 50, 5, 1)


#: SQLite binds a rollup row as its key, plain sums and whole units sums (SQL splits the units).
_SQLITE_BOUND = len(_KEYS) + len(_PLAIN) + len(UNITS_COLUMNS)


def _sqlite_split() -> str:
    """The ``SELECT`` list over a ``VALUES`` row of :data:`_SQLITE_BOUND` columns: the key and plain
    sums as given, each units sum as ``u / 10⁹`` and ``u % 10⁹`` (SQLite's integer division
    truncates and ``%`` keeps the sign, so ``hi·10⁹ + lo = u`` as with ``divmod``)."""
    plain = [f"column{i}" for i in range(1, len(_KEYS) + len(_PLAIN) + 1)]
    first = len(_KEYS) + len(_PLAIN) + 1
    parts = [f"column{i} / {_SPLIT}, column{i} % {_SPLIT}" for i in range(first, first + len(UNITS_COLUMNS))]
    return ", ".join([*plain, *parts])


@functools.cache
def _sqlite_upsert(rows: int) -> str:
    """:func:`_upsert_sql` for ``rows`` rows in one ``VALUES`` list (SQLite), units split in SQL
    (``WHERE true``: an upsert after ``INSERT ... SELECT`` needs a ``WHERE`` to parse)."""
    row = "(" + ", ".join(["?"] * _SQLITE_BOUND) + ")"
    return (
        f"INSERT INTO call_rollups ({_COLUMNS_SQL}) SELECT {_sqlite_split()} "
        f"FROM (VALUES {', '.join([row] * rows)}) WHERE true "
        f"ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET {_ADD_SQL}"
    )


#: PostgreSQL: from this many rollup rows, the deltas are copied into a temporary table and added
#: from it in one statement (an executemany adapts and sends every row as its own statement).
_PG_COPY_FROM = 50
_PG_DELTAS = "cachewise_rollup_deltas"
_PG_CREATE_DELTAS = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_PG_DELTAS} (LIKE call_rollups) ON COMMIT DELETE ROWS"
)
_NO_PRIVILEGE = "42501"  # insufficient_privilege


def _pg_copy_upsert(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """``COPY`` the rows into this session's temporary deltas table, then one upsert from it."""
    raw = conn.connection.driver_connection
    assert raw is not None
    dbapi = conn.dialect.loaded_dbapi
    statement = _PG_CREATE_DELTAS
    try:
        with raw.cursor() as cursor:
            cursor.execute(statement)
            statement = f"COPY {_PG_DELTAS} ({_COLUMNS_SQL}) FROM STDIN"
            with cursor.copy(statement) as copy:
                for row in rows:
                    copy.write_row(row)
            statement = (
                f"INSERT INTO call_rollups ({_COLUMNS_SQL}) SELECT {_COLUMNS_SQL} FROM {_PG_DELTAS} "
                f"ON CONFLICT ({', '.join(_KEYS)}) DO UPDATE SET {_ADD_SQL}"
            )
            cursor.execute(statement)
            statement = f"TRUNCATE {_PG_DELTAS}"  # the next batch of this transaction starts empty
            cursor.execute(statement)
    except dbapi.Error as exc:
        raise DBAPIError.instance(statement, None, exc, dbapi.Error) from exc


def _apply(conn: Connection, deltas: Mapping[tuple[Any, ...], Sequence[int]], *, prune: bool) -> None:
    """Add ``deltas`` (keys with driver-form buckets) onto the stored rollups with
    ``INSERT ... ON CONFLICT DO UPDATE SET x = x + excluded.x`` (multi-row statements on SQLite;
    on PostgreSQL a driver ``executemany``, or from :data:`_PG_COPY_FROM` rows a ``COPY`` into a
    temporary table and one upsert from it); then drop the rows left with no calls."""
    if not deltas:
        return
    dialect = conn.dialect.name
    if dialect == "sqlite":  # multi-row upserts (the keys of one batch are unique), units split in SQL
        bound = [(*key, *sums) for key, sums in deltas.items()]
        execute_in_sizes(conn.exec_driver_sql, bound, _SQLITE_UPSERT_SIZES, _sqlite_upsert)
    elif len(deltas) < _PG_COPY_FROM:
        conn.exec_driver_sql(_UPSERT[dialect], [_driver_row(key, sums) for key, sums in deltas.items()])
    else:
        rows = [_driver_row(key, sums) for key, sums in deltas.items()]
        try:
            with conn.begin_nested():
                _pg_copy_upsert(conn, rows)
        except DBAPIError as exc:
            if getattr(exc.orig, "sqlstate", None) != _NO_PRIVILEGE:
                raise
            # A role without the TEMPORARY privilege (revoked from PUBLIC on a hardened server).
            conn.exec_driver_sql(_UPSERT[dialect], rows)
    if prune:
        buckets = sorted({key[0] for key in deltas})
        mark = "?" if dialect == "sqlite" else "%s"
        for start in range(0, len(buckets), _IN_CHUNK):
            chunk = buckets[start : start + _IN_CHUNK]
            marks = ", ".join([mark] * len(chunk))
            conn.exec_driver_sql(
                f"DELETE FROM call_rollups WHERE calls = 0 AND bucket IN ({marks})", tuple(chunk)
            )


# -- from the rows: compute, check, rebuild ---------------------------------------------------------


def _tag_json(dialect: str) -> Any:
    """Each call's ``call_tags`` as one JSON object text (``NULL`` without tags)."""
    if dialect == "postgresql":
        agg: Any = cast(func.jsonb_object_agg(call_tags.c.key, call_tags.c.value), Text)
    else:
        agg = func.json_group_object(call_tags.c.key, call_tags.c.value)
    return select(agg).where(call_tags.c.call_id == calls.c.id)


def compute(conn: Connection, since: datetime | None = None, until: datetime | None = None) -> Sums:
    """The rollups of the stored calls (those started in ``[since, until)``), summed in SQL.

    The waste class is the reports' own SQL (:func:`.aggregate.waste_class` over every call);
    the hour is cut from ``started_at`` in SQL, and each call's tag set is aggregated from
    ``call_tags`` and keyed in Python (several SQL groups may name one tag set).
    """
    from .aggregate import hour_text, waste_class

    dialect = conn.dialect.name
    tags = _tag_json(dialect).scalar_subquery().label("tags")
    priced = case((and_(calls.c.cost_error.is_(None), calls.c.cost_total.is_not(None)), 1), else_=0)
    keys = [
        hour_text(calls.c.started_at, dialect).label("bucket"),
        calls.c.model,
        tags,
        calls.c.cost_error,
        priced.label("priced"),
        waste_class([], dialect).label("waste"),
    ]
    sums = [func.count().label("calls"), func.count(calls.c.cost_total).label("costed")]
    sums += [func.coalesce(func.sum(calls.c[name]), 0).label(name) for name in TOKEN_COLUMNS]
    split: Any = literal_column(str(_SPLIT))
    for name in UNITS_COLUMNS:  # SQLite's / truncates and its % keeps the sign: u = hi·10⁹ + lo
        sums.append(func.coalesce(func.sum(calls.c[name].op("/")(split)), 0).label(f"{name}_hi"))
        sums.append(func.coalesce(func.sum(calls.c[name].op("%")(split)), 0).label(f"{name}_lo"))
    stmt = select(*keys, *sums)
    if since is not None:
        stmt = stmt.where(calls.c.started_at >= since)
    if until is not None:
        stmt = stmt.where(calls.c.started_at < until)
    stmt = stmt.group_by(*(literal_column(str(i)) for i in range(1, len(keys) + 1)))
    if dialect == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
    out: Sums = {}
    parsed: dict[str | None, str] = {}
    hours: dict[str, datetime] = {}
    for row in conn.execute(stmt):
        bucket, model, tag_text, error, priced_flag, waste, *measures = row
        tags_text = parsed.get(tag_text)
        if tags_text is None:
            tags_text = parsed[tag_text] = tags_key(json.loads(tag_text) if tag_text else {})
        at = hours.get(bucket)
        if at is None:
            at = hours[bucket] = datetime.fromisoformat(str(bucket)[:13] + ":00:00").replace(tzinfo=UTC)
        key = (at, model, tags_text, error_key(error), int(priced_flag), int(waste))
        _add(out, key, _joined(measures))
    return out


def _joined(measures: Sequence[Any]) -> list[int]:
    """Plain sums, then each units sum from its two parts."""
    plain = [int(v) for v in measures[: len(_PLAIN)]]
    parts = [int(v) for v in measures[len(_PLAIN) :]]
    return plain + [parts[i] * _SPLIT + parts[i + 1] for i in range(0, len(parts), 2)]


def stored(conn: Connection) -> Sums:
    """The rollups as stored."""
    out: Sums = {}
    columns = [call_rollups.c[name] for name in (*_PLAIN, *_PARTS)]
    keys = [call_rollups.c[name] for name in _KEYS]
    for row in conn.execute(select(*keys, *columns).where(call_rollups.c.calls != 0)):
        bucket, model, tags, error, priced, waste, *measures = row
        out[(floor_hour(bucket), model, tags, error, int(priced), int(waste))] = _joined(measures)
    return out


@dataclass(frozen=True, slots=True)
class RollupCheck:
    """What :func:`check` found: rollup rows that differ from the rows, missing or extra."""

    rows: int
    differ: tuple[Key, ...]
    missing: tuple[Key, ...]
    extra: tuple[Key, ...]

    @property
    def ok(self) -> bool:
        return not (self.differ or self.missing or self.extra)


def check(conn: Connection) -> RollupCheck:
    """Compare the stored rollups with the rollups of the rows."""
    want, have = compute(conn), stored(conn)
    differ = tuple(sorted(k for k in want.keys() & have.keys() if want[k] != have[k]))
    missing = tuple(sorted(want.keys() - have.keys()))
    extra = tuple(sorted(have.keys() - want.keys()))
    return RollupCheck(len(have), differ, missing, extra)


def rebuild(conn: Connection) -> int:
    """Replace the rollups by those of the rows (in the caller's write transaction); returns
    how many rollup rows there are."""
    _lock(conn)
    sums = compute(conn)
    conn.execute(delete(call_rollups))
    sqlite = conn.dialect.name == "sqlite"
    rows = {(_driver_bucket(key[0], sqlite), *key[1:]): sums for key, sums in sums.items()}
    _apply(conn, rows, prune=False)
    return len(rows)
