"""Bedrock and Vertex AI names resolve to the API's models; regional endpoints carry their premium."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from cachewise.errors import UnknownModelError
from cachewise.pricing import Modifiers, PriceBook, price
from cachewise.pricing.platforms import bedrock_geography, platform_names, regional_endpoint
from cachewise.usage import Usage

AT = datetime(2026, 11, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook.load()


@pytest.mark.parametrize(
    ("name", "model"),
    [
        ("anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
        ("us.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5-20251001"),
        ("global.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5-20250929"),
        ("apac.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet-20241022"),
        ("eu.anthropic.claude-opus-4-6-v1", "claude-opus-4-6"),
        ("claude-haiku-4-5@20251001", "claude-haiku-4-5-20251001"),
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet-20241022"),
        ("claude-opus-4-6", "claude-opus-4-6"),
    ],
)
def test_platform_names_resolve(book: PriceBook, name: str, model: str) -> None:
    assert book.resolve(name).id == model


@pytest.mark.parametrize("name", ["xx.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-9@20251001"])
def test_unknown_platform_names_are_errors(book: PriceBook, name: str) -> None:
    with pytest.raises(UnknownModelError):
        book.resolve(name)


def test_geography_and_names() -> None:
    assert bedrock_geography("us-gov.anthropic.claude-x-v1:0") == "us-gov"
    assert bedrock_geography("anthropic.claude-x-v1:0") is None
    assert platform_names("claude-x@20250101") == ["claude-x-20250101", "claude-x"]
    assert platform_names("claude-sonnet-4-6") == []


@pytest.mark.parametrize(
    ("platform", "model", "location", "regional"),
    [
        ("bedrock", "global.anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", False),
        ("bedrock", "us.anthropic.claude-haiku-4-5-20251001-v1:0", "us-east-1", True),
        ("bedrock", "anthropic.claude-haiku-4-5-20251001-v1:0", "eu-west-1", True),
        ("vertex", "claude-haiku-4-5@20251001", "global", False),
        ("vertex", "claude-haiku-4-5@20251001", "us", True),
        ("vertex", "claude-haiku-4-5@20251001", "europe-west1", True),
        ("anthropic", "claude-haiku-4-5", None, False),
    ],
)
def test_regional_endpoint(platform: str, model: str, location: str | None, regional: bool) -> None:
    assert regional_endpoint(platform, model, location) is regional  # type: ignore[arg-type]


def test_the_premium_multiplies_every_component_from_sonnet_4_5_on(book: PriceBook) -> None:
    usage = Usage(
        input_tokens=1000, ephemeral_5m_input_tokens=2000, cache_read_input_tokens=3000, output_tokens=400
    )
    plain = price(book, usage, "claude-haiku-4-5", AT)
    regional = price(book, usage, "claude-haiku-4-5", AT, Modifiers(platform="bedrock", regional=True))
    assert regional.total == plain.total * Decimal("1.1")
    assert regional.rates.regional and regional.rates.platform == "bedrock"
    assert regional.rates.input == Decimal("1.1")
    # Haiku 3 predates the global/regional split: a regional endpoint costs the same, and says so
    old = datetime(2025, 6, 1, tzinfo=UTC)
    same = price(book, usage, "claude-3-haiku-20240307", old, Modifiers(platform="vertex", regional=True))
    assert same.total == price(book, usage, "claude-3-haiku-20240307", old).total
    assert not same.rates.regional


def test_the_premium_starts_on_the_models_release(book: PriceBook) -> None:
    entry = book.resolve("claude-sonnet-4-5")
    assert [(p.from_.isoformat(), p.multiplier) for p in entry.regional] == [("2025-09-29", Decimal("1.1"))]
    assert not book.resolve("claude-opus-4-1-20250805").regional


def test_a_missing_ttl_split_is_noted_on_the_rates(book: PriceBook) -> None:
    usage = Usage.from_api({"input_tokens": 5, "cache_creation_input_tokens": 2000, "output_tokens": 1})
    cost = price(book, usage, "claude-haiku-4-5", AT)
    assert usage.ttl_split_missing
    assert cost.cache_write_5m == Decimal(2000) * Decimal("1.25") / 1_000_000
    assert any("no 5m/1h split of the 2000 written tokens" in n for n in cost.rates.uncertain)
