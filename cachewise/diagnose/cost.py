"""What a miss cost: the tokens it could have read, priced as writes and input instead of reads.

One formula for one call (:func:`missed_cost`, ``cachewise why``) and for a group of calls with the
same rates (``cachewise report`` and ``why --causes``, :mod:`cachewise.reports.misses`).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from ..pricing import AppliedRates, Modifiers, PriceBook, price
from ..usage import Usage

__all__ = ["missed_cost", "saving", "split"]

_MILLION = Decimal(1_000_000)


def split(tokens: int, usage: Usage) -> tuple[int, int, int]:
    """Where ``tokens`` missed tokens were paid instead: (5m writes, 1h writes, plain input).

    Taken first from the 5m writes, then the 1h writes, then plain input (at most what the call had).
    """
    left = max(tokens, 0)
    five = min(left, usage.ephemeral_5m_input_tokens)
    left -= five
    hour = min(left, usage.ephemeral_1h_input_tokens)
    left -= hour
    return five, hour, min(left, usage.input_tokens)


def saving(rates: AppliedRates, five: int, hour: int, plain: int) -> Decimal:
    """USD saved had these 5m-write, 1h-write and input tokens been read at ``rates`` (exact)."""
    per_token = (
        five * (rates.cache_write_5m - rates.cache_read)
        + hour * (rates.cache_write_1h - rates.cache_read)
        + plain * (rates.input - rates.cache_read)
    )
    return per_token / _MILLION


def missed_cost(
    book: PriceBook,
    usage: Usage,
    model: str,
    at: datetime,
    tokens: int,
    modifiers: Modifiers | None = None,
) -> Decimal:
    """USD the call paid because ``tokens`` prompt tokens were not read from the cache.

    The tokens are placed by :func:`split`; the rates are those ``book`` bills the call at ``at``.
    """
    five, hour, plain = split(tokens, usage)
    if five + hour + plain == 0:
        return Decimal(0)
    return saving(price(book, usage, model, at, modifiers).rates, five, hour, plain)
