"""``PriceBook.rates`` keeps its answers by model, UTC day and modifiers: the same rates as worked
out from the table, tiers included, errors never kept, and a new day looked up again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise import PriceBook, PricingError
from cachewise.ledger.record import _rates_text as rates_text_cold
from cachewise.ledger.record import rates_dict
from cachewise.pricing import AppliedRates

WARM = PriceBook.load()  # shared by every example: its memo fills as they run
COLD = PriceBook.load()  # its memo emptied before each answer
MODELS = [m.id for m in WARM.models()]
TIERED = [m.id for m in WARM.models() if m.long_context or m.fast]  # the rates depend on the size
START = datetime(2025, 1, 1, tzinfo=UTC)
#: prompt sizes on both sides of every tier threshold in the shipped table (200,000 tokens)
SIZES = (0, 10_000, 199_999, 200_000, 200_001, 1_000_000)


def _cold(model: str, at: datetime, **kwargs: object) -> AppliedRates | str:
    """The rates from a book that has answered nothing yet, or the error's text."""
    COLD._rates.clear()
    try:
        return COLD.rates(model, at, **kwargs)  # type: ignore[arg-type]
    except PricingError as exc:
        return f"{type(exc).__name__}: {exc}"


def _warm(model: str, at: datetime, **kwargs: object) -> AppliedRates | str:
    try:
        return WARM.rates(model, at, **kwargs)  # type: ignore[arg-type]
    except PricingError as exc:
        return f"{type(exc).__name__}: {exc}"


@settings(max_examples=200, deadline=None)
@given(
    model=st.sampled_from(TIERED) | st.sampled_from(MODELS),
    days=st.integers(min_value=0, max_value=900),
    hour=st.integers(min_value=0, max_value=23),
    sizes=st.permutations(SIZES),
    size=st.integers(min_value=0, max_value=2_000_000),
    batch=st.booleans(),
    fast=st.booleans(),
    us=st.booleans(),
    regional=st.booleans(),
    platform=st.sampled_from(["anthropic", "bedrock", "vertex"]),
)
def test_kept_rates_equal_the_rates_worked_out_afresh(
    model: str,
    days: int,
    hour: int,
    sizes: list[int],
    size: int,
    batch: bool,
    fast: bool,
    us: bool,
    regional: bool,
    platform: str,
) -> None:
    at = START + timedelta(days=days, hours=hour)
    for tokens in [*sizes, size]:  # several sizes on one day: one kept entry answers each of its tiers
        kwargs = {
            "prompt_tokens": tokens,
            "batch": batch,
            "fast": fast,
            "us_residency": us,
            "regional": regional,
            "platform": platform,
        }
        first, again = _warm(model, at, **kwargs), _warm(model, at, **kwargs)
        assert first == _cold(model, at, **kwargs)
        assert again == first
        if isinstance(first, AppliedRates):
            assert rates_dict(first) == rates_text_cold(first)


def test_a_long_prompt_and_a_short_one_on_the_same_day_get_their_own_tier() -> None:
    book = PriceBook.load()
    at = datetime(2026, 3, 1, 12, tzinfo=UTC)
    short = book.rates("claude-sonnet-4-5", at, prompt_tokens=10_000)
    long = book.rates("claude-sonnet-4-5", at, prompt_tokens=250_000)
    assert (short.tier_above, long.tier_above) == (None, 200_000)
    assert long.input > short.input
    assert book.rates("claude-sonnet-4-5", at, prompt_tokens=10_001) is short  # kept, not recomputed
    assert book.rates("claude-sonnet-4-5", at, prompt_tokens=200_000) is short  # not above it


def test_the_next_utc_day_is_looked_up_again() -> None:
    book = PriceBook.load()
    model = next(m.id for m in book.models() if len(m.prices) > 1)
    change = book.resolve(model).prices[1].from_
    before = datetime(change.year, change.month, change.day, tzinfo=UTC) - timedelta(seconds=1)
    after = before + timedelta(seconds=1)
    assert book.rates(model, before) == _cold(model, before)
    assert book.rates(model, after) == _cold(model, after)
    assert book.rates(model, before).period_from != book.rates(model, after).period_from


def test_an_error_is_raised_every_time_and_never_kept() -> None:
    book = PriceBook.load()
    early = datetime(2000, 1, 1, tzinfo=UTC)
    for _ in range(2):
        with pytest.raises(PricingError):
            book.rates("claude-sonnet-4-5", early)
    with pytest.raises(PricingError):
        book.rates("no-such-model", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(PricingError):  # a naive time for an unknown model names the model, as before
        book.rates("no-such-model", datetime(2026, 1, 1))


def test_rates_dict_is_a_new_dict_each_time() -> None:
    rates = PriceBook.load().rates("claude-sonnet-4-5", datetime(2026, 3, 1, tzinfo=UTC))
    first = rates_dict(rates)
    first["uncertain"].append("changed by a caller")
    first["input"] = "0"
    assert rates_dict(rates) == rates_text_cold(rates)
