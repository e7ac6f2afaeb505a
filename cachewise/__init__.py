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
    TokenCountError,
    UnknownModelError,
    UsageError,
)
from .lint import LintWarning, lint, lint_family
from .planner import Breakpoint, CachePlanner, Plan, Rejected, ReuseStats
from .pricing import AppliedRates, Cost, Modifiers, PriceBook, price
from .tokens import AsyncTokenCounter, TokenCounter, TokenMemo
from .usage import StreamUsage, Usage

__version__ = "0.1.0"

__all__ = [
    "AppliedRates",
    "AsyncTokenCounter",
    "Breakpoint",
    "BudgetExceeded",
    "CachePlanner",
    "CachewiseError",
    "Cost",
    "LedgerError",
    "LintWarning",
    "ModifierNotAvailable",
    "Modifiers",
    "NoPriceError",
    "Plan",
    "PlannerError",
    "PriceBook",
    "PriceTableError",
    "PricingError",
    "Rejected",
    "ReuseStats",
    "StreamUsage",
    "TokenCountError",
    "TokenCounter",
    "TokenMemo",
    "UnknownModelError",
    "Usage",
    "UsageError",
    "__version__",
    "lint",
    "lint_family",
    "price",
]
