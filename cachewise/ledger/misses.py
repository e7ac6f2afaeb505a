"""The ledger's cache misses summed per cause, in SQL (what ``cachewise report`` and ``why --causes`` rank).

One row per miss cause × what sets its prices: the local reason (``miss_reason``; for a changed
prefix, the level in ``miss_detail``) or, without one, the API's (``api:<api_miss_reason>``), the
model, the UTC day (prices change per day), the batch / speed / data-residency settings, and the
smallest and largest prompt of the group (a long-context tier applies above a prompt size). Per row
the tokens the call could have read: the API's ``api_missed_tokens``, else the local estimate
(``miss_detail.tokens``), none when the local diff saw a full read; and where they would have come
from, as :func:`cachewise.diagnose.cost.split` takes them: the 5m writes, then the 1h writes, then
plain input. The money is not summed here: :mod:`cachewise.reports.misses` prices each group with a
price book. Reading never writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Integer, String, case, cast, func, literal, or_, select

from .query import Filter
from .schema import calls

if TYPE_CHECKING:
    from .ledger import Ledger

__all__ = ["MissGroup", "miss_groups"]


@dataclass(frozen=True, slots=True)
class MissGroup:
    """Missed calls that share a cause and their prices: how many, and the tokens they could have read.

    ``five``, ``hour`` and ``plain`` split ``tokens`` by what the call paid for them instead (5m
    writes, 1h writes, input); ``prompt_low`` / ``prompt_high`` are the group's smallest and largest
    prompts (input + cache read + writes).
    """

    reason: str
    level: str | None
    model: str
    day: date
    batch: bool
    speed: str | None
    inference_geo: str | None
    calls: int
    tokens: int
    five: int
    hour: int
    plain: int
    prompt_low: int
    prompt_high: int


def _least(a: ColumnElement[Any], b: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((a < b, a), else_=b)


def _day(dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", calls.c.started_at), "YYYY-MM-DD")
    return func.substr(calls.c.started_at, 1, 10)  # SQLite keeps UTC text "YYYY-MM-DD HH:MM:SS..."


def _detail(key: str, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return calls.c.miss_detail.op("->>")(literal(key))
    return func.json_extract(calls.c.miss_detail, f"$.{key}")


def _same(column: ColumnElement[Any], value: Any) -> ColumnElement[bool]:
    return column.is_(None) if value is None else column == value


def miss_groups(ledger: Ledger, flt: Filter | None = None, *, of: MissGroup | None = None) -> list[MissGroup]:
    """The missed calls in ``flt`` (all by default), summed per cause and price setting.

    ``of``: the calls of that group one by one (a group whose prompts straddle a long-context tier is
    priced call by call).
    """
    store = ledger._store
    dialect = store.dialect
    c = calls.c
    reason = func.coalesce(c.miss_reason, literal("api:") + c.api_miss_reason)
    level = case((c.miss_reason == "prefix_changed", cast(_detail("level", dialect), String)), else_=None)
    estimate = cast(_detail("tokens", dialect), Integer)
    tokens = case(
        (c.miss_reason.is_(None), literal(0)),
        (c.api_missed_tokens.is_not(None), c.api_missed_tokens),
        else_=func.coalesce(estimate, 0),
    )
    wanted = case((tokens > 0, tokens), else_=literal(0))
    five = _least(wanted, c.ephemeral_5m_input_tokens)
    hour = _least(wanted - five, c.ephemeral_1h_input_tokens)
    plain = _least(wanted - five - hour, c.input_tokens)
    prompt = (
        c.input_tokens + c.cache_read_input_tokens + c.ephemeral_5m_input_tokens + c.ephemeral_1h_input_tokens
    )
    batch = case((or_(c.endpoint == "batch", func.coalesce(c.service_tier, "") == "batch"), 1), else_=0)
    day = _day(dialect)
    keys: list[ColumnElement[Any]] = [reason, level, c.model, day, batch, c.speed, c.inference_geo]
    names = ("reason", "level", "model", "day", "batch", "speed", "inference_geo")
    where = [*(flt or Filter()).where(), or_(c.miss_reason.is_not(None), c.api_miss_reason.is_not(None))]
    grouping = list(keys)
    if of is not None:
        values = (
            of.reason,
            of.level,
            of.model,
            of.day.isoformat(),
            int(of.batch),
            of.speed,
            of.inference_geo,
        )
        where += [_same(k, v) for k, v in zip(keys, values, strict=True)]
        grouping.append(c.id)
    stmt = (
        select(
            *(k.label(n) for k, n in zip(keys, names, strict=True)),
            func.count().label("calls"),
            func.sum(tokens).label("tokens"),
            func.sum(five).label("five"),
            func.sum(hour).label("hour"),
            func.sum(plain).label("plain"),
            func.min(prompt).label("prompt_low"),
            func.max(prompt).label("prompt_high"),
        )
        .where(*where)
        .group_by(*grouping)
    )
    with store.read() as conn:
        rows = conn.execute(stmt).mappings().all()
    return [_group(row) for row in rows]


def _group(row: Any) -> MissGroup:
    return MissGroup(
        reason=str(row["reason"]),
        level=None if row["level"] is None else str(row["level"]),
        model=str(row["model"]),
        day=date.fromisoformat(str(row["day"])),
        batch=bool(row["batch"]),
        speed=row["speed"],
        inference_geo=row["inference_geo"],
        calls=int(row["calls"]),
        tokens=int(row["tokens"] or 0),
        five=int(row["five"] or 0),
        hour=int(row["hour"] or 0),
        plain=int(row["plain"] or 0),
        prompt_low=int(row["prompt_low"] or 0),
        prompt_high=int(row["prompt_high"] or 0),
    )
