"""Invariants of the cost model over the whole shipped table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise import PriceBook, PricingError, Usage, price
from tests.strategies import request_token_counts as counts

BOOK = PriceBook.load()
MODELS = [m.id for m in BOOK.models()]
START = datetime(2024, 3, 1, tzinfo=UTC)


@settings(max_examples=300, deadline=None)
@given(
    model=st.sampled_from(MODELS),
    days=st.integers(min_value=0, max_value=1000),
    tokens=st.tuples(counts, counts, counts, counts, counts),
    batch=st.booleans(),
    geo=st.sampled_from([None, "global", "us"]),
)
def test_costs_are_never_negative_and_components_add_up(
    model: str, days: int, tokens: tuple[int, int, int, int, int], batch: bool, geo: str | None
) -> None:
    usage = Usage(*tokens, service_tier="batch" if batch else None, inference_geo=geo)
    try:
        cost = price(BOOK, usage, model, START + timedelta(days=days))
    except PricingError:
        return  # refused loudly, never a silent zero
    parts = [cost.input, cost.cache_write_5m, cost.cache_write_1h, cost.cache_read, cost.output]
    assert all(p >= 0 for p in parts)
    assert cost.total == sum(parts) + cost.web_search + cost.code_execution
    assert cost.no_cache_total >= 0
    if usage.prompt_tokens and cost.rates.input:
        assert cost.total > 0  # a known model with tokens is never free
    # reads are cheaper than input, so reads alone always save
    if usage.cache_read_input_tokens and not (
        usage.ephemeral_5m_input_tokens or usage.ephemeral_1h_input_tokens
    ):
        assert cost.savings > 0
