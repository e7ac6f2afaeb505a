"""Miss causes ranked by money: for each reason a call missed the cache, how often and what it cost.

The reasons are those on the ledger rows (docs/why.md): the local one (``miss_reason``, with the
level where the prefix changed) and the API's (``api_miss_reason``). The money of a miss is what the
tokens it could have read cost as writes and input instead of reads
(:func:`cachewise.diagnose.cost.saving`), at the rates the price book bills each call on its own day
(exact ``Decimal``). The tokens are the API's ``cache_missed_input_tokens`` when it gave them, else
the local estimate; a call the local diff saw read everything its predecessor cached costs nothing
(the API may still name a divergence, e.g. ``messages_changed`` when an earlier user turn differs
but the system was read).

One ranking, two ways to group the calls: in SQL over the ledger (:func:`ledger_miss_causes`, what
``cachewise report`` and ``why --causes`` show; :mod:`cachewise.ledger.misses`) and over records in
memory (:func:`miss_causes`, the notebooks), into the same :class:`~cachewise.ledger.misses.MissGroup`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..diagnose import missed_cost, saving, split
from ..errors import PricingError
from ..ledger.misses import MissGroup, miss_groups
from ..pricing import AppliedRates, Modifiers, PriceBook, price
from ..usage import Usage

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..ledger.query import Filter
    from ..ledger.record import CallRecord

__all__ = [
    "MissCause",
    "group_records",
    "ledger_miss_causes",
    "miss_cause_rows",
    "miss_causes",
    "miss_of",
    "rank",
]


@dataclass(frozen=True, slots=True)
class MissCause:
    """One cause: ``reason`` (with ``level`` for a changed prefix), its calls, tokens and cost."""

    reason: str
    level: str | None
    calls: int
    tokens: int
    cost: Decimal
    unpriced: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "level": self.level,
            "calls": self.calls,
            "tokens": self.tokens,
            "cost": self.cost,
            "unpriced": self.unpriced,
        }


def _tokens(record: CallRecord) -> int:
    if record.miss_reason is None:
        return 0  # the local diff saw a full read: the API's divergence cost this call nothing
    if record.api_missed_tokens is not None:
        return record.api_missed_tokens
    detail: Mapping[str, Any] = record.miss_detail or {}
    value = detail.get("tokens")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def miss_of(record: CallRecord, book: PriceBook) -> tuple[int, Decimal | None]:
    """The tokens ``record`` could have read and what not reading them cost (``None``: unpriced)."""
    tokens = _tokens(record)
    try:
        return tokens, missed_cost(
            book, record.usage, record.model, record.started_at, tokens, record.modifiers()
        )
    except PricingError:
        return tokens, None


def _group_of(record: CallRecord) -> MissGroup:
    """``record`` alone as a :class:`MissGroup` (keyed as :func:`~cachewise.ledger.misses.miss_groups`)."""
    tokens = _tokens(record)
    five, hour, plain = split(tokens, record.usage)
    mods = record.modifiers()
    level = (record.miss_detail or {}).get("level") if record.miss_reason == "prefix_changed" else None
    prompt = record.usage.prompt_tokens
    return MissGroup(
        reason=record.miss_reason or f"api:{record.api_miss_reason}",
        level=None if level is None else str(level),
        model=record.model,
        day=record.started_at.astimezone(UTC).date(),
        batch=mods.batch,
        speed=record.speed,
        inference_geo=record.inference_geo,
        calls=1,
        tokens=tokens,
        five=five,
        hour=hour,
        plain=plain,
        prompt_low=prompt,
        prompt_high=prompt,
    )


def _key(g: MissGroup) -> tuple[Any, ...]:
    return (g.reason, g.level, g.model, g.day, g.batch, g.speed, g.inference_geo)


def _merge(a: MissGroup, b: MissGroup) -> MissGroup:
    return replace(
        a,
        calls=a.calls + b.calls,
        tokens=a.tokens + b.tokens,
        five=a.five + b.five,
        hour=a.hour + b.hour,
        plain=a.plain + b.plain,
        prompt_low=min(a.prompt_low, b.prompt_low),
        prompt_high=max(a.prompt_high, b.prompt_high),
    )


def group_records(records: Iterable[CallRecord]) -> list[MissGroup]:
    """The missed calls among ``records`` summed as the ledger sums them in SQL."""
    groups: dict[tuple[Any, ...], MissGroup] = {}
    for record in records:
        if record.miss_reason is None and record.api_miss_reason is None:
            continue
        one = _group_of(record)
        key = _key(one)
        groups[key] = _merge(groups[key], one) if key in groups else one
    return list(groups.values())


def _rates(book: PriceBook, g: MissGroup, prompt: int) -> AppliedRates:
    """The rates ``book`` bills a call of ``g`` with a prompt of ``prompt`` tokens."""
    usage = Usage(
        input_tokens=prompt,
        speed=g.speed,
        inference_geo=g.inference_geo,
        service_tier="batch" if g.batch else None,
    )
    at = datetime.combine(g.day, time(), tzinfo=UTC)
    mods = Modifiers(batch=g.batch, speed=g.speed, inference_geo=g.inference_geo)
    return price(book, usage, g.model, at, mods).rates


def _cost(book: PriceBook, g: MissGroup, calls: Callable[[MissGroup], Sequence[MissGroup]]) -> Decimal | None:
    """What ``g`` lost (``None``: unpriced); a group whose prompts straddle a tier, call by call."""
    if g.five + g.hour + g.plain == 0:
        return Decimal(0)
    try:
        rates = _rates(book, g, g.prompt_low)
        if g.prompt_high == g.prompt_low or _rates(book, g, g.prompt_high) == rates:
            return saving(rates, g.five, g.hour, g.plain)
    except PricingError:
        return None
    total = Decimal(0)
    for one in calls(g):
        cost = _cost(book, one, lambda _: ())
        if cost is None:
            return None
        total += cost
    return total


def rank(
    groups: Iterable[MissGroup],
    book: PriceBook | None = None,
    calls: Callable[[MissGroup], Sequence[MissGroup]] = lambda g: (),
) -> list[MissCause]:
    """Each cause in ``groups`` with its calls, tokens and money, the costliest first (then the most
    frequent, then by name). ``calls``: a group's calls one by one (for a group that straddles a
    long-context tier)."""
    used = book if book is not None else PriceBook.default()
    causes: dict[tuple[str, str | None], list[Any]] = {}
    for g in groups:
        cause = causes.setdefault((g.reason, g.level), [0, 0, Decimal(0), 0])
        cause[0] += g.calls
        cause[1] += g.tokens
        cost = _cost(used, g, calls)
        if cost is None:
            cause[3] += g.calls
        else:
            cause[2] += cost
    out = [MissCause(r, lv, n, t, c, u) for (r, lv), (n, t, c, u) in causes.items()]
    return sorted(out, key=lambda c: (-c.cost, -c.calls, c.reason, c.level or ""))


def miss_causes(records: Iterable[CallRecord], book: PriceBook | None = None) -> list[MissCause]:
    """Every cause among ``records`` (in memory), ranked by :func:`rank`."""
    kept = [r for r in records if r.miss_reason is not None or r.api_miss_reason is not None]

    def calls(g: MissGroup) -> list[MissGroup]:
        return [one for one in map(_group_of, kept) if _key(one) == _key(g)]

    return rank(group_records(kept), book, calls)


def ledger_miss_causes(
    ledger: Ledger, flt: Filter | None = None, book: PriceBook | None = None
) -> list[MissCause]:
    """Every cause among the ledger's calls in ``flt``, summed in SQL and ranked by :func:`rank`."""
    return rank(miss_groups(ledger, flt), book, lambda g: miss_groups(ledger, flt, of=g))


def miss_cause_rows(causes: Iterable[MissCause]) -> list[dict[str, Any]]:
    """``causes`` as plain rows (the report's ``miss_causes`` section, ``why --causes --json``)."""
    return [cause.as_dict() for cause in causes]
