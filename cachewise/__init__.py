"""cachewise: place Claude prompt-cache breakpoints where they pay, and account for every call."""

from __future__ import annotations

from .budget import RuntimeBudget, estimate_cost, session_collector
from .errors import (
    BudgetConfigError,
    BudgetExceeded,
    CachewiseError,
    LedgerError,
    LedgerUnavailable,
    ModifierNotAvailable,
    NoPriceError,
    PlannerError,
    PriceTableError,
    PricingError,
    SchemaTooNew,
    SpoolError,
    TokenCountError,
    UnknownModelError,
    UnpricedSpend,
    UsageError,
)
from .ledger import CallRecord, Ledger, Totals
from .lint import LintWarning, lint, lint_family
from .planner import Breakpoint, CachePlanner, Plan, Planner, Rejected, ReuseStats
from .pricing import AppliedRates, Cost, Modifiers, PriceBook, price
from .reports import build_report, load_frame, render, spend, totals
from .tags import tags
from .tokens import AsyncTokenCounter, TokenCounter, TokenMemo
from .usage import StreamUsage, Usage
from .wrap import UnsupportedClient, wrap

__version__ = "0.1.0"

__all__ = [
    "AppliedRates",
    "AsyncTokenCounter",
    "Breakpoint",
    "BudgetConfigError",
    "BudgetExceeded",
    "CachePlanner",
    "CachewiseError",
    "CallRecord",
    "Cost",
    "Ledger",
    "LedgerError",
    "LedgerUnavailable",
    "LintWarning",
    "ModifierNotAvailable",
    "Modifiers",
    "NoPriceError",
    "Plan",
    "Planner",
    "PlannerError",
    "PriceBook",
    "PriceTableError",
    "PricingError",
    "Rejected",
    "ReuseStats",
    "RuntimeBudget",
    "SchemaTooNew",
    "SpoolError",
    "StreamUsage",
    "TokenCountError",
    "TokenCounter",
    "TokenMemo",
    "Totals",
    "UnknownModelError",
    "UnpricedSpend",
    "UnsupportedClient",
    "Usage",
    "UsageError",
    "__version__",
    "build_report",
    "estimate_cost",
    "lint",
    "lint_family",
    "load_frame",
    "price",
    "render",
    "session_collector",
    "spend",
    "tags",
    "totals",
    "wrap",
]
