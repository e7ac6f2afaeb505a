"""cachewise: place Claude prompt-cache breakpoints where they pay, and account for every call."""

from __future__ import annotations

from .errors import (
    BudgetExceeded,
    CachewiseError,
    LedgerError,
    ModifierNotAvailable,
    NoPriceError,
    PlannerError,
    PriceTableError,
    PricingError,
    UnknownModelError,
    UsageError,
)
from .pricing import AppliedRates, Cost, Modifiers, PriceBook, price
from .usage import StreamUsage, Usage

__version__ = "0.1.0"

__all__ = [
    "AppliedRates",
    "BudgetExceeded",
    "CachewiseError",
    "Cost",
    "LedgerError",
    "ModifierNotAvailable",
    "Modifiers",
    "NoPriceError",
    "PlannerError",
    "PriceBook",
    "PriceTableError",
    "PricingError",
    "StreamUsage",
    "UnknownModelError",
    "Usage",
    "UsageError",
    "__version__",
    "price",
]
