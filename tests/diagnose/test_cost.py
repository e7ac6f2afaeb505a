"""What a miss cost: exact Decimal, the difference of two bills priced with the price book."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from cachewise.diagnose import missed_cost
from cachewise.pricing import PriceBook, price
from cachewise.usage import Usage

AT = datetime(2026, 3, 1, tzinfo=UTC)
MODEL = "claude-sonnet-4-6"


def test_missed_tokens_move_from_writes_to_reads() -> None:
    book = PriceBook.default()
    usage = Usage(input_tokens=10, ephemeral_5m_input_tokens=2000, output_tokens=5)
    cost = missed_cost(book, usage, MODEL, AT, 2000)
    rates = price(book, usage, MODEL, AT).rates
    assert isinstance(cost, Decimal)
    assert cost == Decimal(2000) * (rates.cache_write_5m - rates.cache_read) / Decimal(1_000_000)


def test_nothing_to_move_costs_nothing_and_tokens_are_capped() -> None:
    book = PriceBook.default()
    assert missed_cost(book, Usage(cache_read_input_tokens=50), MODEL, AT, 500) == 0
    small = Usage(input_tokens=100)
    assert missed_cost(book, small, MODEL, AT, 10**9) == missed_cost(book, small, MODEL, AT, 100)
