"""Hand-computed costs for each pricing rule, against the shipped table.

Every expected figure is worked out in the comment above it from the published
price per million tokens (MTok) in pricing/anthropic.yaml.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from cachewise import (
    ModifierNotAvailable,
    Modifiers,
    NoPriceError,
    PriceBook,
    UnknownModelError,
    Usage,
    price,
)


def at(day: str) -> datetime:
    return datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


def test_every_component_at_base_rates(book: PriceBook) -> None:
    usage = Usage(
        input_tokens=1_000,
        ephemeral_5m_input_tokens=2_000,
        ephemeral_1h_input_tokens=1_000,
        cache_read_input_tokens=5_000,
        output_tokens=500,
    )
    cost = price(book, usage, "claude-sonnet-4-5", at("2025-10-01"))
    # Sonnet 4.5: 3 / 3.75 / 6 / 0.30 / 15 per MTok
    assert cost.input == D("0.003")  # 1,000 x 3
    assert cost.cache_write_5m == D("0.0075")  # 2,000 x 3.75
    assert cost.cache_write_1h == D("0.006")  # 1,000 x 6: never billed at the 5m rate
    assert cost.cache_read == D("0.0015")  # 5,000 x 0.30
    assert cost.output == D("0.0075")  # 500 x 15
    assert cost.total == D("0.0255")
    # no cache: all 9,000 prompt tokens at 3, plus the same output
    assert cost.no_cache_total == D("0.0345")
    assert cost.savings == D("0.009")
    assert cost.rates.model == "claude-sonnet-4-5-20250929"
    assert cost.rates.table_version == "2026-11-22"


def test_savings_negative_when_writes_are_never_read(book: PriceBook) -> None:
    cost = price(book, Usage(ephemeral_5m_input_tokens=10_000), "claude-haiku-4-5", at("2026-01-01"))
    # written at 1.25 = 0.0125; without caching 10,000 x 1 = 0.01
    assert cost.total == D("0.0125")
    assert cost.savings == D("-0.0025")


def test_long_context_tier_covers_the_whole_request(book: PriceBook) -> None:
    # Sonnet 4.5 with the 1M beta, >200k prompt: 6 / 7.50 / 12 / 0.60 / 22.50 on every token
    usage = Usage(input_tokens=150_000, cache_read_input_tokens=100_000, output_tokens=1_000)
    cost = price(book, usage, "claude-sonnet-4-5-20250929", at("2026-01-10"))
    assert cost.input == D("0.9")  # 150,000 x 6
    assert cost.cache_read == D("0.06")  # 100,000 x 0.60
    assert cost.output == D("0.0225")  # 1,000 x 22.50
    assert cost.rates.tier_above == 200_000
    # exactly 200,000 is not above the threshold: base rates
    edge = price(book, Usage(input_tokens=200_000), "claude-sonnet-4-5", at("2026-01-10"))
    assert edge.input == D("0.6")
    # the beta was retired on 2026-04-30: base rates again after it
    after = price(book, usage, "claude-sonnet-4-5", at("2026-05-01"))
    assert after.input == D("0.45") and after.rates.tier_above is None


def test_haiku_5_5_tier_above_100k(book: PriceBook) -> None:
    below = price(
        book, Usage(input_tokens=100_000, output_tokens=1_000), "claude-haiku-5-5", at("2026-11-01")
    )
    assert below.input == D("0.01")  # 100,000 x 0.10
    assert below.output == D("0.0005")  # 1,000 x 0.50
    above = price(
        book,
        Usage(input_tokens=90_000, ephemeral_5m_input_tokens=10_001, output_tokens=1_000),
        "claude-haiku-5-5",
        at("2026-11-01"),
    )
    # 100,001 prompt tokens: every token at 0.50 / 0.625 / 2.50
    assert above.input == D("0.045")
    assert above.cache_write_5m == D("0.006250625")
    assert above.output == D("0.0025")


def test_opus_4_6_tier_before_and_after_2026_03_13(book: PriceBook) -> None:
    usage = Usage(input_tokens=250_000, output_tokens=10_000)
    before = price(book, usage, "claude-opus-4-6", at("2026-03-12"))
    assert before.input == D("2.5")  # 250,000 x 10
    assert before.output == D("0.375")  # 10,000 x 37.50
    after = price(book, usage, "claude-opus-4-6", at("2026-03-13"))
    assert after.input == D("1.25")  # 250,000 x 5
    assert after.output == D("0.25")  # 10,000 x 25


def test_batch_stacks_with_cache_prices(book: PriceBook) -> None:
    usage = Usage(cache_read_input_tokens=10_000, ephemeral_5m_input_tokens=4_000, output_tokens=1_000)
    cost = price(book, usage, "claude-opus-4-5", at("2026-01-05"), Modifiers(batch=True))
    # Opus 4.5 halves: read 0.25, 5m write 3.125, output 12.50
    assert cost.cache_read == D("0.0025")
    assert cost.cache_write_5m == D("0.0125")
    assert cost.output == D("0.0125")
    assert cost.rates.batch
    # service_tier "batch" in the usage means the same thing
    same = price(
        book, Usage(cache_read_input_tokens=10_000, service_tier="batch"), "claude-opus-4-5", at("2026-01-05")
    )
    assert same.cache_read == D("0.0025")


def test_fast_mode_replaces_input_and_output_and_keeps_cache_ratios(book: PriceBook) -> None:
    usage = Usage(
        input_tokens=1_000, ephemeral_5m_input_tokens=1_000, cache_read_input_tokens=1_000, output_tokens=100
    )
    cost = price(book, usage, "claude-opus-4-6", at("2026-04-01"), Modifiers(speed="fast"))
    # fast Opus 4.6: 30 in / 150 out; 5m = 1.25 x 30 = 37.50; read = 0.1 x 30 = 3
    assert cost.input == D("0.03")
    assert cost.cache_write_5m == D("0.0375")
    assert cost.cache_read == D("0.003")
    assert cost.output == D("0.015")
    with pytest.raises(ModifierNotAvailable, match="fast mode"):
        price(book, usage, "claude-opus-4-6", at("2026-04-01"), Modifiers(speed="fast", batch=True))
    with pytest.raises(ModifierNotAvailable, match="fast mode"):
        price(book, usage, "claude-haiku-4-5", at("2026-04-01"), Modifiers(speed="fast"))


def test_us_data_residency(book: PriceBook) -> None:
    usage = Usage(input_tokens=1_000, cache_read_input_tokens=1_000, output_tokens=1_000)
    cost = price(book, usage, "claude-sonnet-4-6", at("2026-06-01"), Modifiers(inference_geo="us"))
    # Sonnet 4.6 x 1.1: input 3.30, read 0.33, output 16.50
    assert cost.input == D("0.0033")
    assert cost.cache_read == D("0.00033")
    assert cost.output == D("0.0165")
    # "global" is the default and costs nothing extra
    plain = price(book, usage, "claude-sonnet-4-6", at("2026-06-01"), Modifiers(inference_geo="global"))
    assert plain.input == D("0.003")
    with pytest.raises(ModifierNotAvailable, match="inference_geo"):
        price(book, usage, "claude-sonnet-4-5", at("2026-06-01"), Modifiers(inference_geo="us"))


def test_batch_and_residency_stack(book: PriceBook) -> None:
    cost = price(
        book,
        Usage(input_tokens=1_000_000),
        "claude-opus-4-6",
        at("2026-06-01"),
        Modifiers(batch=True, inference_geo="us"),
    )
    assert cost.input == D("2.75")  # 5 x 0.5 x 1.1


@pytest.mark.parametrize(
    ("model", "day", "read_per_mtok"),
    [
        ("claude-fable-5-1", "2026-10-01", "0.25"),  # 0.025 x 10
        ("claude-opus-5-5", "2026-10-01", "0.20"),  # 0.05 x 4
        ("claude-3-haiku-20240307", "2025-01-01", "0.03"),  # published, rounded cell
        ("claude-sonnet-5-5", "2026-10-06", "0.20"),  # day before the cut
        ("claude-sonnet-5-5", "2026-10-07", "0.10"),  # cut on 2026-10-07
    ],
)
def test_non_standard_read_prices_and_dates(
    book: PriceBook, model: str, day: str, read_per_mtok: str
) -> None:
    cost = price(book, Usage(cache_read_input_tokens=1_000_000), model, at(day))
    assert cost.cache_read == D(read_per_mtok)


def test_haiku_3_uses_the_published_rounded_write_cell(book: PriceBook) -> None:
    cost = price(
        book, Usage(ephemeral_5m_input_tokens=1_000_000), "claude-3-haiku-20240307", at("2025-01-01")
    )
    assert cost.cache_write_5m == D("0.30")


def test_one_hour_writes(book: PriceBook) -> None:
    cost = price(book, Usage(ephemeral_1h_input_tokens=1_000_000), "claude-haiku-4-5", at("2026-01-01"))
    assert cost.cache_write_1h == D("2")


def test_web_search_and_code_execution(book: PriceBook) -> None:
    usage = Usage(input_tokens=1_000, web_search_requests=3, code_execution_hours=D("0.5"))
    cost = price(book, usage, "claude-sonnet-4-6", at("2026-06-01"))
    assert cost.web_search == D("0.03")  # 3 x $10 / 1,000
    assert cost.code_execution == D("0.025")  # 0.5 h x $0.05
    assert cost.total == D("0.003") + D("0.03") + D("0.025")


def test_unknown_model_is_an_error_never_zero(book: PriceBook) -> None:
    with pytest.raises(UnknownModelError, match="claude-foo-9") as info:
        price(book, Usage(input_tokens=1), "claude-foo-9", at("2026-11-20"))
    assert info.value.model == "claude-foo-9"
    assert "anthropic.yaml" in str(info.value)


def test_date_before_any_price(book: PriceBook) -> None:
    with pytest.raises(NoPriceError, match=r"claude-opus-5-5 on 2026-01-01") as info:
        price(book, Usage(input_tokens=1), "claude-opus-5-5", at("2026-01-01"))
    assert info.value.model == "claude-opus-5-5"


def test_model_without_published_prices(book: PriceBook) -> None:
    with pytest.raises(NoPriceError):
        price(book, Usage(input_tokens=1), "claude-mythos-preview", at("2026-05-01"))


def test_naive_timestamps_are_refused(book: PriceBook) -> None:
    with pytest.raises(ValueError, match="no timezone"):
        price(book, Usage(input_tokens=1), "claude-haiku-4-5", datetime(2026, 1, 1))
