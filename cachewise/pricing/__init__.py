"""Prices as data: the shipped table in ``pricing/``, user overlays, and the cost model."""

from __future__ import annotations

from .book import AppliedRates, MinCache, PriceBook, default_table_path
from .cost import Cost, Modifiers, price
from .schema import ModelEntry, PriceTable

__all__ = [
    "AppliedRates",
    "Cost",
    "MinCache",
    "ModelEntry",
    "Modifiers",
    "PriceBook",
    "PriceTable",
    "default_table_path",
    "price",
]
