"""Price one usage: per-component cost, the no-cache counterfactual and the savings.

Exact ``Decimal`` arithmetic, nothing rounded; round only when displaying.

* Tier: chosen by input + cache read + cache write tokens, applied to every component.
* Modifiers: batch (×0.5) and US residency (×1.1) multiply every token component;
  fast mode replaces input and output, cache components keep their ratio to input.
  A fast request after the model's fast mode ended, whose usage reports no speed, is
  priced at the standard rates (the API runs it at standard speed, without error).
* Counterfactual: every cached token (read or written) billed as plain input at the
  same tier and modifiers; output and server tools unchanged.
* Savings = counterfactual − actual; negative when writes were never read back.
* Web search is per 1,000 requests and takes no token modifier; code execution is
  per container-hour (the monthly free allowance is not modelled).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..errors import NoPriceError
from ..usage import Usage
from .book import AppliedRates, PriceBook, to_utc
from .platforms import Platform

__all__ = ["COST_FIELDS", "Cost", "Modifiers", "price"]

MILLION = Decimal(1_000_000)
THOUSAND = Decimal(1_000)
#: The priced components of :class:`Cost`, in the order they are summed and stored.
_COMPONENTS = (
    "input",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "output",
    "web_search",
    "code_execution",
)
#: :meth:`Cost.as_dict`'s keys, in order: ``cost_<component>``, total, no-cache total, savings
#: (the ledger's cost columns).
COST_FIELDS: tuple[str, ...] = (
    *(f"cost_{name}" for name in _COMPONENTS),
    "cost_total",
    "cost_no_cache",
    "savings",
)


@dataclass(frozen=True, slots=True)
class Modifiers:
    """Request settings that change the price; ``None`` fields fall back to the usage's own."""

    batch: bool = False
    speed: str | None = None
    inference_geo: str | None = None
    #: where the call was served: the Claude API, Amazon Bedrock or Google Vertex AI (pricing.platforms)
    platform: Platform = "anthropic"
    #: the call went to a regional or geographic Bedrock / Vertex AI endpoint (pricing.platforms)
    regional: bool = False

    def resolve(self, usage: Usage) -> tuple[bool, bool, bool]:
        batch = self.batch or usage.service_tier == "batch"
        speed = usage.speed or self.speed
        geo = usage.inference_geo or self.inference_geo
        return batch, speed == "fast", geo == "us"


@dataclass(frozen=True, slots=True)
class Cost:
    """What one request cost, component by component, in USD."""

    input: Decimal
    cache_write_5m: Decimal
    cache_write_1h: Decimal
    cache_read: Decimal
    output: Decimal
    web_search: Decimal
    code_execution: Decimal
    no_cache_total: Decimal
    rates: AppliedRates

    @property
    def total(self) -> Decimal:
        return (
            self.input
            + self.cache_write_5m
            + self.cache_write_1h
            + self.cache_read
            + self.output
            + self.web_search
            + self.code_execution
        )

    @property
    def savings(self) -> Decimal:
        return self.no_cache_total - self.total

    def as_dict(self) -> dict[str, Any]:
        """The cost by :data:`COST_FIELDS` (the ledger's cost columns)."""
        parts = tuple(getattr(self, name) for name in _COMPONENTS)
        return dict(zip(COST_FIELDS, (*parts, self.total, self.no_cache_total, self.savings), strict=True))


def price(
    book: PriceBook,
    usage: Usage,
    model: str,
    at: datetime,
    modifiers: Modifiers | None = None,
) -> Cost:
    """Cost of ``usage`` on ``model`` at the UTC time ``at``; raises a ``PricingError`` when it cannot."""
    mods = modifiers or Modifiers()
    batch, fast, us = mods.resolve(usage)
    if fast and usage.speed != "fast" and book.fast_mode_ended(model, at):
        # Asked for fast mode after the model's fast mode ended, and the usage does not say it
        # ran fast: the API runs such requests at standard speed and price (docs/pricing.md).
        fast = False
    rates = book.rates(
        model,
        at,
        prompt_tokens=usage.prompt_tokens,
        batch=batch,
        fast=fast,
        us_residency=us,
        regional=mods.regional,
        platform=mods.platform,
    )
    if usage.ttl_split_missing:
        # No 5m/1h split in the reply (Bedrock, Vertex AI, older replies, some gateways): every write
        # is billed as a 5m write, which under-bills a 1h write (docs/pricing.md, "Usage normalisation").
        note = (
            f"usage: no 5m/1h split of the {usage.cache_creation_input_tokens} written tokens; "
            "billed as 5m writes"
        )
        rates = replace(rates, uncertain=(*rates.uncertain, note))
    if (usage.web_search_requests or usage.code_execution_hours) and not (
        rates.web_search_per_1k or rates.code_execution_per_hour
    ):
        raise NoPriceError(rates.model, to_utc(at), book.source, what="server tool price")
    web = Decimal(usage.web_search_requests) * rates.web_search_per_1k / THOUSAND
    code = usage.code_execution_hours * rates.code_execution_per_hour
    output = Decimal(usage.output_tokens) * rates.output / MILLION
    return Cost(
        input=Decimal(usage.input_tokens) * rates.input / MILLION,
        cache_write_5m=Decimal(usage.ephemeral_5m_input_tokens) * rates.cache_write_5m / MILLION,
        cache_write_1h=Decimal(usage.ephemeral_1h_input_tokens) * rates.cache_write_1h / MILLION,
        cache_read=Decimal(usage.cache_read_input_tokens) * rates.cache_read / MILLION,
        output=output,
        web_search=web,
        code_execution=code,
        no_cache_total=Decimal(usage.prompt_tokens) * rates.input / MILLION + output + web + code,
        rates=rates,
    )
