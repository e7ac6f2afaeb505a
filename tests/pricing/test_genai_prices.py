"""Our table agrees with genai-prices for every model and date both define.

Each disagreement must be listed, with its reason and source, in
pricing/genai-prices-disagreements.yaml; an unlisted one fails this test.
"""

from __future__ import annotations

import warnings
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from cachewise import ModifierNotAvailable, NoPriceError, PriceBook

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from genai_prices import data_snapshot
    from genai_prices.types import TieredPrices

ROOT = Path(__file__).resolve().parents[2]
KEYS = [
    ("input", "input_mtok"),
    ("cache_write_5m", "cache_write_mtok"),
    ("cache_write_1h", "cache_write_1h_mtok"),
    ("cache_read", "cache_read_mtok"),
    ("output", "output_mtok"),
]
DATES = [
    "2024-11-01",
    "2025-06-01",
    "2025-10-01",
    "2026-01-01",
    "2026-02-10",
    "2026-02-25",
    "2026-03-20",
    "2026-05-20",
    "2026-07-30",
    "2026-09-10",
    "2026-09-30",
    "2026-10-05",
    "2026-10-20",
    "2026-11-20",
]


def _gp_value(price: Any, prompt: int) -> Decimal | None:
    if isinstance(price, TieredPrices):
        value = price.base
        for tier in price.tiers:
            if prompt > tier.start:
                value = tier.price
        return Decimal(value)
    return None if price is None else Decimal(price)


def _listed() -> dict[tuple[str, str], date]:
    entries = yaml.safe_load((ROOT / "pricing" / "genai-prices-disagreements.yaml").read_text())
    listed: dict[tuple[str, str], date] = {}
    for entry in entries:
        assert entry["reason"] and entry["source"], entry
        key = (entry["model"], entry["component"])
        listed[key] = min(listed.get(key, date.max), date.fromisoformat(str(entry["date"])))
    return listed


def test_table_agrees_with_genai_prices_or_lists_why() -> None:
    book = PriceBook.load()
    snapshot = data_snapshot.get_snapshot()
    listed = _listed()
    unlisted: list[str] = []
    compared = 0
    for model in book.models():
        for name in (model.id, *model.aliases):
            try:
                _, gp_model = snapshot.find_provider_model(name, None, "anthropic", None)
            except LookupError:
                if (model.id, "missing") not in listed:
                    unlisted.append(f"{model.id}: genai-prices has no {name}")
                continue
            for text in DATES:
                day = date.fromisoformat(text)
                if (model.released and day < model.released) or (model.retired and day >= model.retired):
                    continue
                when = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
                for mode in ("standard", "batch"):
                    context = {"processing": "batch"} if mode == "batch" else None
                    for prompt in (1_000, 250_000):
                        try:
                            rates = book.rates(name, when, prompt_tokens=prompt, batch=mode == "batch")
                        except (NoPriceError, ModifierNotAvailable):
                            continue  # we refuse to price it; nothing to compare
                        theirs = gp_model.get_prices(when, context)
                        differs = [
                            key
                            for key, gp_key in KEYS
                            if _gp_value(getattr(theirs, gp_key), prompt) != getattr(rates, key)
                        ]
                        compared += 1
                        if not differs:
                            continue
                        kinds = {"batch"} if mode == "batch" else set(differs)
                        if prompt > 200_000 or rates.tier_above:
                            kinds.add("long_context")
                        if not any(
                            (model.id, kind) in listed and listed[(model.id, kind)] <= day for kind in kinds
                        ):
                            unlisted.append(f"{model.id} [{name}] {text} {mode} prompt={prompt}: {differs}")
    assert compared > 300
    assert not unlisted, "\n".join(unlisted)


@pytest.mark.parametrize("model", ["claude-mythos-5", "claude-mythos-5-1"])
def test_models_genai_prices_lacks_are_priced_by_us(model: str) -> None:
    book = PriceBook.load()
    assert book.rates(model, datetime(2026, 11, 1, tzinfo=UTC)).input == Decimal(10)
