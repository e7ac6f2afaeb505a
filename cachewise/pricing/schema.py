"""The shape of a price table file (``pricing/*.yaml``), as pydantic models.

``pricing/schema.json`` is generated from :class:`PriceTable` (run
``python -m cachewise.pricing.schema > pricing/schema.json``); a test keeps the
committed file in step with these models.

Conventions of the data:

* every price is USD per million tokens, a decimal string or number, never negative;
* every dated entry has ``from`` (a UTC date, inclusive); an entry lasts until the
  next entry's ``from`` or its own ``until`` (exclusive);
* ``uncertain`` holds the reason a figure is not confirmed by a primary source;
  such figures are used, and flagged on every cost computed from them.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "SCHEMA_VERSION",
    "FastPeriod",
    "FastTier",
    "LongContextTier",
    "MinCachePeriod",
    "ModelEntry",
    "MultiplierPeriod",
    "OverlayFile",
    "PricePeriod",
    "PriceTable",
    "Rates",
    "ServerToolPeriod",
]

SCHEMA_VERSION = 1
Price = Annotated[Decimal, Field(ge=0, description="USD per million tokens")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class Rates(_Strict):
    input: Price
    cache_write_5m: Price
    cache_write_1h: Price
    cache_read: Price
    output: Price


class PricePeriod(Rates):
    """Base prices in force from ``from`` until the next period."""

    from_: date = Field(alias="from")
    uncertain: str | None = None


class LongContextTier(Rates):
    """Prices for the whole request when its prompt (input + read + write) exceeds ``above`` tokens."""

    from_: date = Field(alias="from")
    until: date | None = None
    above: int = Field(gt=0, description="prompt tokens strictly above which the tier applies")
    uncertain: str | None = None


class FastTier(_Strict):
    above: int = Field(gt=0)
    input: Price
    output: Price


class FastPeriod(_Strict):
    """Fast mode: replaces base input and output; cache components keep the base ratios to input."""

    from_: date = Field(alias="from")
    until: date | None = None
    input: Price
    output: Price
    tiers: list[FastTier] = Field(default_factory=list)
    uncertain: str | None = None


class MultiplierPeriod(_Strict):
    from_: date = Field(alias="from")
    until: date | None = None
    multiplier: Decimal = Field(gt=0)
    uncertain: str | None = None


class MinCachePeriod(_Strict):
    from_: date = Field(alias="from")
    tokens: int = Field(gt=0)
    uncertain: str | None = None


class ModelEntry(_Strict):
    id: str = Field(min_length=1, description="canonical API id")
    name: str
    family: Literal["haiku", "sonnet", "opus", "fable", "mythos"]
    aliases: list[str] = Field(default_factory=list)
    bedrock_ids: list[str] = Field(default_factory=list)
    vertex_ids: list[str] = Field(default_factory=list)
    released: date | None = None
    context_window: int | None = Field(default=None, gt=0)
    max_output_tokens: int | None = Field(default=None, gt=0)
    deprecated: date | None = None
    retired: date | None = None
    prices: list[PricePeriod] = Field(default_factory=list)
    long_context: list[LongContextTier] = Field(default_factory=list)
    fast: list[FastPeriod] = Field(default_factory=list)
    batch: list[MultiplierPeriod] = Field(default_factory=list)
    us_residency: list[MultiplierPeriod] = Field(default_factory=list)
    regional: list[MultiplierPeriod] = Field(
        default_factory=list,
        description="Bedrock/Vertex AI: the premium of regional and geographic endpoints over the global one",
    )
    min_cache_tokens: list[MinCachePeriod] = Field(default_factory=list)
    source: str
    checked: date
    notes: str | None = None


class ServerToolPeriod(_Strict):
    from_: date = Field(alias="from")
    web_search_per_1k: Decimal = Field(ge=0, description="USD per 1,000 web search requests")
    code_execution_per_hour: Decimal = Field(ge=0, description="USD per container-hour")
    uncertain: str | None = None


class PriceTable(_Strict):
    """One price file: the shipped table or a user overlay."""

    schema_version: Literal[1] = 1
    version: str = Field(min_length=1, description="version of this table, recorded on every cost")
    currency: Literal["USD"] = "USD"
    overlay: bool = Field(default=False, description="true for a user file laid over the shipped table")
    server_tools: list[ServerToolPeriod] = Field(default_factory=list)
    models: list[ModelEntry] = Field(default_factory=list)


class OverlayFile(_Strict):
    """The top level of a user overlay: the same keys as :class:`PriceTable`, strictly checked.

    Each entry of ``models`` needs an ``id``; it is checked as a :class:`ModelEntry` once laid
    over the entry it replaces (or on its own, for a new model).
    """

    schema_version: Literal[1] = 1
    version: str = Field(min_length=1, description="version of this overlay, recorded on every cost")
    currency: Literal["USD"] = "USD"
    overlay: bool = True
    server_tools: list[ServerToolPeriod] | None = None
    models: list[dict[str, Any]] = Field(default_factory=list)


def json_schema() -> str:
    return json.dumps(PriceTable.model_json_schema(by_alias=True), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":  # pragma: no cover - regeneration entry point
    print(json_schema(), end="")
