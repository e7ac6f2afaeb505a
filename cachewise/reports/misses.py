"""Miss causes ranked by money: for each reason a call missed the cache, how often and what it cost.

The reasons are those on the ledger rows (docs/why.md): the local one (``miss_reason``, with the
level where the prefix changed) and the API's (``api_miss_reason``). The money of one miss is
:func:`cachewise.diagnose.missed_cost`: the call's bill minus its bill had the missed tokens been
read from the cache, priced with the price book at the call's own time (exact ``Decimal``). The
tokens are the API's ``cache_missed_input_tokens`` when it gave them, else the local estimate; a call
the local diff saw read everything its predecessor cached costs nothing (the API may still name a
divergence, e.g. ``messages_changed`` when an earlier user turn differs but the system was read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..diagnose import missed_cost
from ..errors import PricingError
from ..pricing import PriceBook

if TYPE_CHECKING:
    from ..ledger.record import CallRecord

__all__ = ["MissCause", "miss_cause_rows", "miss_causes", "miss_of"]


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


def miss_causes(records: Iterable[CallRecord], book: PriceBook | None = None) -> list[MissCause]:
    """Every cause among ``records``, the costliest first (then the most frequent, then by name)."""
    used = book if book is not None else PriceBook.default()
    groups: dict[tuple[str, str | None], list[Any]] = {}
    for record in records:
        if record.miss_reason is None and record.api_miss_reason is None:
            continue
        reason = record.miss_reason or f"api:{record.api_miss_reason}"
        level = (record.miss_detail or {}).get("level") if record.miss_reason == "prefix_changed" else None
        tokens, cost = miss_of(record, used)
        group = groups.setdefault((reason, level), [0, 0, Decimal(0), 0])
        group[0] += 1
        group[1] += tokens
        if cost is None:
            group[3] += 1
        else:
            group[2] += cost
    causes = [MissCause(r, lv, n, t, c, u) for (r, lv), (n, t, c, u) in groups.items()]
    return sorted(causes, key=lambda c: (-c.cost, -c.calls, c.reason, c.level or ""))


def miss_cause_rows(records: Iterable[CallRecord], book: PriceBook | None = None) -> list[dict[str, Any]]:
    """:func:`miss_causes` as plain rows (the report data's ``miss_causes`` section)."""
    return [cause.as_dict() for cause in miss_causes(records, book)]
