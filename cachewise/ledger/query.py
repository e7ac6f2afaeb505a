"""Reading the ledger: filters, records, the pandas frame and exact totals.

* Totals are summed in SQL over the integer money columns (10⁻¹² units, :mod:`.units`):
  one aggregate query, no Python per row. The rare rows whose money is not a whole number
  of units (marked by ``code_execution_hours_units IS NULL``, found through a partial
  index) are added from their exact decimal columns.
* The frame is read in chunks with plain Core selects (no ORM objects). By default
  (``money="decimal"``) money is ``Decimal`` objects read from the decimal columns, digit for
  digit as written (equal amounts share one immutable object within a chunk). ``money="arrow"``
  (opt-in) gives a pyarrow ``decimal128(38, 12)`` column built from the units (numeric, exact,
  16 bytes a value); a row whose money has no exact 10⁻¹² form is a :class:`LedgerError`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from decimal import Context, Decimal
from importlib.metadata import version
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    ColumnElement,
    Connection,
    DateTime,
    Select,
    Text,
    and_,
    cast,
    exists,
    func,
    inspect,
    literal_column,
    select,
)
from sqlalchemy.exc import OperationalError
from sqlalchemy.sql import type_coerce

from ..errors import LedgerError
from .quarantine import QuarantinedRecord
from .record import CallRecord
from .rollups import floor_hour
from .schema import COST_COLUMNS, TOKEN_COLUMNS, call_rollups, call_tags, calls, quarantine
from .types import Money
from .units import EXPONENT, MONEY_COLUMNS, UNITS_COLUMNS, from_units

if TYPE_CHECKING:  # pandas, numpy and pyarrow are imported by the frame readers only, not by the wrap path
    import numpy as np
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "FRAME_COLUMNS",
    "FRAME_DTYPES",
    "Filter",
    "InexactMoneyError",
    "MoneyForm",
    "Totals",
    "arrow_frame_dtypes",
    "count_quarantined",
    "iter_frames",
    "iter_quarantined",
    "iter_records",
    "money_dtype",
    "read_frame",
    "read_totals",
]

_STR: Any = "str" if int(version("pandas").split(".")[0]) >= 3 else object
MoneyForm = Literal["arrow", "decimal"]

#: Column order and dtypes of :meth:`Ledger.to_frame` (default ``money="decimal"``): money as ``Decimal``
#: objects (documented in docs/ledger.md).
FRAME_DTYPES: dict[str, Any] = {
    "request_id": _STR,
    "message_id": _STR,
    "model": _STR,
    "started_at": "datetime64[ns, UTC]",
    "latency_ms": "float64",
    "ttft_ms": "float64",
    "status": _STR,
    "error_type": _STR,
    "endpoint": _STR,
    "service_tier": _STR,
    "inference_geo": _STR,
    "speed": _STR,
    "batch_id": _STR,
    "custom_id": _STR,
    **dict.fromkeys(TOKEN_COLUMNS, "int64"),
    "code_execution_hours": object,
    "ttl_split_missing": "bool",
    "incomplete": "bool",
    "planned": "bool",
    "prefix_hash": _STR,
    "tags": object,
    "price_table_version": _STR,
    **dict.fromkeys(COST_COLUMNS, object),
    "cost_error": _STR,
}
FRAME_COLUMNS: tuple[str, ...] = tuple(FRAME_DTYPES)


@functools.cache
def money_dtype() -> Any:
    """Money in frames: ``pd.ArrowDtype(pa.decimal128(38, 12))``, exact to the units' resolution."""
    import pandas as pd
    import pyarrow as pa

    return pd.ArrowDtype(pa.decimal128(38, EXPONENT))


@functools.cache
def arrow_frame_dtypes() -> dict[str, Any]:
    """Column order and dtypes of ``Ledger.to_frame(money="arrow")`` (documented in docs/ledger.md)."""
    money = money_dtype()
    return {name: (money if name in MONEY_COLUMNS else dtype) for name, dtype in FRAME_DTYPES.items()}


def __getattr__(name: str) -> Any:
    """``ARROW_FRAME_DTYPES`` and ``MONEY_DTYPE`` are built on first use (they need pandas and pyarrow)."""
    if name == "ARROW_FRAME_DTYPES":
        return arrow_frame_dtypes()
    if name == "MONEY_DTYPE":
        return money_dtype()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_MONEY = frozenset((*COST_COLUMNS, "code_execution_hours"))


@dataclass(frozen=True, slots=True)
class Filter:
    """Which calls: ``since`` ≤ started_at < ``until``, one model or several, all of ``tags``."""

    since: datetime | None = None
    until: datetime | None = None
    model: str | Sequence[str] | None = None
    tags: Mapping[str, str] | None = None

    def window(self, moment: ColumnElement[Any], model: ColumnElement[Any]) -> list[ColumnElement[bool]]:
        """The time window on ``moment`` and the model filter on ``model`` (any table's columns)."""
        clauses: list[ColumnElement[bool]] = []
        if self.since is not None:
            clauses.append(moment >= self.since)
        if self.until is not None:
            clauses.append(moment < self.until)
        if isinstance(self.model, str):
            clauses.append(model == self.model)
        elif self.model is not None:
            clauses.append(model.in_(list(self.model)))
        return clauses

    def where(self) -> list[ColumnElement[bool]]:
        clauses = self.window(calls.c.started_at, calls.c.model)
        for key, value in (self.tags or {}).items():
            clauses.append(
                exists().where(
                    and_(
                        call_tags.c.call_id == calls.c.id,
                        call_tags.c.key == key,
                        call_tags.c.value == str(value),
                    )
                )
            )
        return clauses

    def apply(self, stmt: Select[Any]) -> Select[Any]:
        clauses = self.where()
        return stmt.where(*clauses) if clauses else stmt


def iter_records(
    conn: Connection, flt: Filter, *, limit: int | None = None, chunk: int = 10_000
) -> Iterator[CallRecord]:
    stmt = flt.apply(select(calls)).order_by(calls.c.started_at, calls.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    result = conn.execution_options(stream_results=True, yield_per=chunk).execute(stmt)
    for row in result.mappings():
        yield CallRecord.from_row(row)


def _frame_select(dialect: str, money: MoneyForm) -> Select[Any]:
    columns: list[Any] = []
    for name in FRAME_COLUMNS:
        col = calls.c[name]
        if name in _MONEY and money == "arrow":
            columns.append(calls.c[f"{name}_units"].label(name))
        elif name in _MONEY or name == "tags":
            columns.append(cast(col, Text).label(name))
        elif name == "started_at":
            raw_type = DateTime(timezone=True) if dialect == "postgresql" else Text()
            columns.append(type_coerce(col, raw_type).label(name))
        else:
            columns.append(col)
    return select(*columns)


def _money(values: Sequence[Any]) -> np.ndarray[Any, Any]:
    import numpy as np

    memo: dict[Any, Decimal] = {}
    out = np.empty(len(values), dtype=object)
    for i, text in enumerate(values):
        if text is None:
            out[i] = None
            continue
        found = memo.get(text)
        if found is None:
            found = memo[text] = Decimal(text)
        out[i] = found
    return out


def units_array(values: Sequence[int | None]) -> pa.Array:
    """A pyarrow ``decimal128(38, 12)`` array from 10⁻¹² units: the units *are* its unscaled integers."""
    import numpy as np
    import pyarrow as pa

    count = len(values)
    valid = np.fromiter((v is not None for v in values), dtype=bool, count=count)
    units = np.fromiter((0 if v is None else v for v in values), dtype=np.int64, count=count)
    words = np.empty((count, 2), dtype=np.int64)  # little-endian 128-bit two's complement
    words[:, 0] = units
    words[:, 1] = units >> 63
    bitmap = None if valid.all() else pa.py_buffer(np.packbits(valid, bitorder="little"))
    return pa.Array.from_buffers(
        pa.decimal128(38, EXPONENT), count, [bitmap, pa.py_buffer(words)], null_count=count - int(valid.sum())
    )


class InexactMoneyError(LedgerError):
    """A call's money has no exact ``decimal128(38, 12)`` form (``money="arrow"`` cannot hold it)."""

    def __init__(self, message: str, request_id: str | None) -> None:
        super().__init__(message)
        self.request_id = request_id


def _check_units(rows: Sequence[Any], columns: Sequence[Sequence[Any]], caller: str) -> None:
    hours = columns[FRAME_COLUMNS.index("code_execution_hours")]
    for i, units in enumerate(hours):
        if units is None:
            request_id = rows[i][FRAME_COLUMNS.index("request_id")]
            raise InexactMoneyError(
                f"{caller}(money='arrow'): call {request_id}: its money has no exact "
                f"decimal128(38, {EXPONENT}) form (not a whole number of 10^-{EXPONENT} USD: finer rates "
                f"or code-execution hours); read it with {caller}(money='decimal'), the default",
                request_id,
            )


def _chunk_frame(
    rows: Sequence[Any], dialect: str, money: MoneyForm = "decimal", caller: str = "to_frame"
) -> pd.DataFrame:
    import numpy as np
    import pandas as pd

    columns = list(zip(*rows, strict=True))
    if money == "arrow":
        _check_units(rows, columns, caller)
    dtypes = arrow_frame_dtypes() if money == "arrow" else FRAME_DTYPES
    data: dict[str, Any] = {}
    for name, values in zip(FRAME_COLUMNS, columns, strict=True):
        dtype = dtypes[name]
        if name in _MONEY:
            if money == "arrow":
                data[name] = pd.Series(pd.arrays.ArrowExtensionArray(units_array(values)), copy=False)
            else:
                data[name] = _money(values)
        elif name == "tags":
            tag_col = np.empty(len(values), dtype=object)
            distinct: dict[str, dict[str, str]] = {}  # tag sets repeat: parse each distinct one once
            tag_col[:] = [
                dict(distinct[v] if v in distinct else distinct.setdefault(v, json.loads(v)))
                if v is not None
                else {}
                for v in values
            ]
            data[name] = tag_col
        elif name == "started_at":
            parsed = pd.to_datetime(list(values), utc=True, format="ISO8601" if dialect == "sqlite" else None)
            data[name] = parsed.as_unit("ns")
        elif dtype == "int64":
            data[name] = np.fromiter(values, dtype=np.int64, count=len(values))
        elif dtype == "float64":
            data[name] = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
        elif dtype == "bool":
            data[name] = np.fromiter((bool(v) for v in values), dtype=bool, count=len(values))
        else:
            data[name] = pd.array(list(values), dtype=dtype)
    return pd.DataFrame(data, columns=list(FRAME_COLUMNS))


def empty_frame(money: MoneyForm = "decimal") -> pd.DataFrame:
    import pandas as pd

    dtypes = arrow_frame_dtypes() if money == "arrow" else FRAME_DTYPES
    return pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()})


def _check_money(money: str) -> None:
    if money not in ("arrow", "decimal"):
        raise ValueError(f"money must be 'arrow' or 'decimal', got {money!r}")


def iter_frames(
    conn: Connection,
    flt: Filter,
    *,
    chunk_rows: int = 100_000,
    money: MoneyForm = "decimal",
    caller: str = "iter_frames",
) -> Iterator[pd.DataFrame]:
    """The calls matching ``flt`` as frames of at most ``chunk_rows`` rows, oldest first.

    Memory stays at one chunk whatever the window: the rows are streamed (server-side
    cursor on PostgreSQL). Dtypes as :func:`read_frame`.
    """
    _check_money(money)
    if chunk_rows < 1:
        raise ValueError(f"chunk_rows must be at least 1, got {chunk_rows}")
    dialect = conn.dialect.name
    stmt = flt.apply(_frame_select(dialect, money)).order_by(calls.c.started_at, calls.c.id)
    result = conn.execution_options(stream_results=True, yield_per=chunk_rows).execute(stmt)
    try:
        for part in result.partitions(chunk_rows):
            yield _chunk_frame(part, dialect, money, caller)
    finally:  # a chunk that raises, or a reader that stops early, closes the server-side cursor now
        result.close()


def read_frame(
    conn: Connection, flt: Filter, *, chunk: int = 100_000, money: MoneyForm = "decimal"
) -> pd.DataFrame:
    """The calls matching ``flt`` as one DataFrame, oldest first.

    Dtypes: :data:`FRAME_DTYPES` (``money="decimal"``) or :func:`arrow_frame_dtypes` (``"arrow"``).
    """
    import pandas as pd

    frames = list(iter_frames(conn, flt, chunk_rows=chunk, money=money, caller="to_frame"))
    if not frames:
        return empty_frame(money)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


@dataclass(frozen=True, slots=True)
class Totals:
    """Sums over the matching calls. Costs sum only priced calls, exactly (``Decimal``).

    ``quarantined`` counts the records the database refused in the same window (see
    :func:`count_quarantined`): calls that happened but are in no sum, so unaccounted.
    """

    calls: int
    priced_calls: int
    unpriced_calls: int
    input_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int
    output_tokens: int
    web_search_requests: int
    web_fetch_requests: int
    code_execution_hours: Decimal
    cost_input: Decimal
    cost_cache_write_5m: Decimal
    cost_cache_write_1h: Decimal
    cost_cache_read: Decimal
    cost_output: Decimal
    cost_web_search: Decimal
    cost_code_execution: Decimal
    cost_total: Decimal
    cost_no_cache: Decimal
    savings: Decimal
    quarantined: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_SPLIT = 10**9
_EXACT = Context(prec=200)  # as SQLite's decimal_sum: exact for any realistic ledger


def _units_sums(conn: Connection, flt: Filter, *, split: bool) -> dict[str, Any]:
    """Counts, token sums and units sums in one aggregate query.

    ``split``: each units column summed as ``SUM(u / 10⁹)`` and ``SUM(u % 10⁹)`` (SQLite's
    integer division truncates, so ``u = (u / 10⁹)·10⁹ + u % 10⁹`` exactly), for a sum beyond
    64 bits, where SQLite's plain ``SUM`` raises ``integer overflow``.
    """
    sums: list[Any] = []
    for name in UNITS_COLUMNS:
        col = calls.c[name]
        if split:
            sums.append(func.sum(col.op("/")(literal_column(str(_SPLIT)))).label(f"{name}_hi"))
            sums.append(func.sum(col.op("%")(literal_column(str(_SPLIT)))).label(f"{name}_lo"))
        else:
            sums.append(func.sum(col).label(name))
    stmt = select(
        func.count().label("calls"),
        func.count(calls.c.cost_total).label("priced_calls"),
        *(func.coalesce(func.sum(calls.c[name]), 0).label(name) for name in TOKEN_COLUMNS),
        *sums,
    )
    row = conn.execute(flt.apply(stmt)).mappings().one()
    out = dict(row)
    if split:
        for name in UNITS_COLUMNS:
            hi, lo = out.pop(f"{name}_hi"), out.pop(f"{name}_lo")
            out[name] = None if hi is None else int(hi) * _SPLIT + int(lo)
    return out


def _inexact_sums(conn: Connection, flt: Filter) -> dict[str, Decimal]:
    """Exact decimal sums of the rows whose money has no units (partial index; usually none)."""
    sqlite = conn.dialect.name == "sqlite"

    def money_sum(name: str) -> Any:
        col = calls.c[name]
        if sqlite:
            return type_coerce(func.decimal_sum(col), Money).label(name)
        return func.sum(col).label(name)

    stmt = select(*(money_sum(name) for name in MONEY_COLUMNS)).where(
        calls.c.code_execution_hours_units.is_(None)
    )
    row = conn.execute(flt.apply(stmt)).mappings().one()
    return {name: Decimal(str(row[name])) for name in MONEY_COLUMNS if row[name] is not None}


_HOUR = timedelta(hours=1)


def _totals_span(conn: Connection, flt: Filter) -> tuple[datetime | None, datetime | None] | None:
    """The full hours ``[low, high)`` of ``flt``'s window the rollups answer (``None``: open),
    or ``None`` when there is none (or no rollups table)."""
    low = None if flt.since is None else floor_hour(flt.since)
    if low is not None and low != flt.since:
        low += _HOUR
    high = None if flt.until is None else floor_hour(flt.until)
    if low is not None and high is not None and low >= high:
        return None
    if not inspect(conn).has_table(call_rollups.name):
        return None
    return low, high


def _rollup_sums(
    conn: Connection, flt: Filter, span: tuple[datetime | None, datetime | None]
) -> dict[str, Any]:
    """:func:`_units_sums` of the hours in ``span`` from the rollups (tag scope matched in Python
    on each rollup's tag set; money kept as two parts, ``units // 10^9`` and ``units % 10^9``)."""
    r = call_rollups.c
    plain = ("calls", "costed", *TOKEN_COLUMNS)
    parts = [f"{name}_{part}" for name in UNITS_COLUMNS for part in ("hi", "lo")]
    stmt = select(r.tags, *(func.sum(r[name]).label(name) for name in (*plain, *parts)))
    stmt = stmt.where(*Filter(model=flt.model).window(r.bucket, r.model))
    low, high = span
    if low is not None:
        stmt = stmt.where(r.bucket >= low)
    if high is not None:
        stmt = stmt.where(r.bucket < high)
    out: dict[str, Any] = dict.fromkeys((*plain, *UNITS_COLUMNS), 0)
    wanted = {k: str(v) for k, v in (flt.tags or {}).items()}
    for row in conn.execute(stmt.group_by(r.tags)).mappings():
        if wanted:
            tags = json.loads(row["tags"])
            if any(tags.get(k) != v for k, v in wanted.items()):
                continue
        for name in plain:
            out[name] += int(row[name] or 0)
        for name in UNITS_COLUMNS:
            out[name] += int(row[f"{name}_hi"] or 0) * _SPLIT + int(row[f"{name}_lo"] or 0)
    out["priced_calls"] = out.pop("costed")
    return out


def _sums(conn: Connection, flt: Filter) -> dict[str, Any]:
    try:
        return _units_sums(conn, flt, split=False)
    except OperationalError as exc:
        if "overflow" not in str(exc):
            raise
        return _units_sums(conn, flt, split=True)


def _window_sums(conn: Connection, flt: Filter, use_rollups: bool) -> dict[str, Any]:
    """:func:`_units_sums` over ``flt``: the full hours from the rollups, the edges from the rows."""
    span = _totals_span(conn, flt) if use_rollups else None
    if span is None:
        return _sums(conn, flt)
    parts = [_rollup_sums(conn, flt, span)]
    low, high = span
    if low is not None:
        parts.append(_sums(conn, Filter(flt.since, low, flt.model, flt.tags)))
    if high is not None:
        parts.append(_sums(conn, Filter(high, flt.until, flt.model, flt.tags)))
    out = parts[0]
    for part in parts[1:]:
        for name, value in part.items():
            if value is not None:
                out[name] = value if out[name] is None else int(out[name]) + int(value)
    return out


def read_totals(conn: Connection, flt: Filter, *, use_rollups: bool = True) -> Totals:
    """Sums in SQL: integer units (exact on both dialects) plus the rows without units; the full
    hours of the window read from the rollups kept on write (:mod:`.rollups`)."""
    row = _window_sums(conn, flt, use_rollups)
    values: dict[str, Any] = {"calls": int(row["calls"]), "priced_calls": int(row["priced_calls"])}
    values["unpriced_calls"] = values["calls"] - values["priced_calls"]
    for name in TOKEN_COLUMNS:
        values[name] = int(row[name])
    rest = _inexact_sums(conn, flt)
    for name, units_name in zip(MONEY_COLUMNS, UNITS_COLUMNS, strict=True):
        units = row[units_name]
        total = from_units(int(units)) if units is not None else Decimal(0)
        values[name] = _EXACT.add(total, rest[name]) if name in rest else total
    values["quarantined"] = count_quarantined(conn, flt)
    return Totals(**values)


def _quarantine_select(flt: Filter) -> Select[Any]:
    """Quarantined records in ``flt``'s window (by the call's ``started_at``, else when refused)."""
    moment = func.coalesce(quarantine.c.started_at, quarantine.c.quarantined_at)
    return select(quarantine).where(*flt.window(moment, quarantine.c.model))


def _tags_match(entry: QuarantinedRecord, tags: Mapping[str, str]) -> bool:
    try:
        found = entry.raw().get("tags")
    except ValueError:
        return False
    return isinstance(found, Mapping) and all(found.get(k) == str(v) for k, v in tags.items())


def iter_quarantined(
    conn: Connection, flt: Filter, *, limit: int | None = None
) -> Iterator[QuarantinedRecord]:
    """Quarantined records matching ``flt``, newest first (tags are matched in the raw record)."""
    stmt = _quarantine_select(flt).order_by(quarantine.c.quarantined_at.desc(), quarantine.c.id.desc())
    if limit is not None and not flt.tags:
        stmt = stmt.limit(limit)
    yielded = 0
    for row in conn.execute(stmt).mappings():
        entry = QuarantinedRecord.from_row(row)
        if flt.tags and not _tags_match(entry, flt.tags):
            continue
        yield entry
        yielded += 1
        if limit is not None and yielded >= limit:
            return


def count_quarantined(conn: Connection, flt: Filter) -> int:
    """How many quarantined records match ``flt`` (0 on a ledger older than schema step 0004)."""
    if not inspect(conn).has_table(quarantine.name):
        return 0
    if flt.tags:
        return sum(1 for _ in iter_quarantined(conn, flt))
    stmt = select(func.count()).select_from(_quarantine_select(flt).subquery())
    return int(conn.execute(stmt).scalar_one())
