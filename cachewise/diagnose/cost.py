"""What a miss cost: the bill as it was, minus the bill had the missed tokens been read."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from ..pricing import Modifiers, PriceBook, price
from ..usage import Usage

__all__ = ["missed_cost"]


def missed_cost(
    book: PriceBook,
    usage: Usage,
    model: str,
    at: datetime,
    tokens: int,
    modifiers: Modifiers | None = None,
) -> Decimal:
    """USD the call paid because ``tokens`` prompt tokens were not read from the cache.

    The tokens are taken first from the cache writes (5m, then 1h), then from plain input (at most
    what the call had); both bills are priced with ``book`` at ``at`` (exact ``Decimal``).
    """
    left = max(tokens, 0)
    five = min(left, usage.ephemeral_5m_input_tokens)
    left -= five
    hour = min(left, usage.ephemeral_1h_input_tokens)
    left -= hour
    plain = min(left, usage.input_tokens)
    moved = five + hour + plain
    if moved == 0:
        return Decimal(0)
    better = replace(
        usage,
        ephemeral_5m_input_tokens=usage.ephemeral_5m_input_tokens - five,
        ephemeral_1h_input_tokens=usage.ephemeral_1h_input_tokens - hour,
        input_tokens=usage.input_tokens - plain,
        cache_read_input_tokens=usage.cache_read_input_tokens + moved,
    )
    paid = price(book, usage, model, at, modifiers).total
    return paid - price(book, better, model, at, modifiers).total
