"""cachewise: place Claude prompt-cache breakpoints where they pay, and account for every call.

``import cachewise`` (and the whole wrap path) imports no pandas, numpy, matplotlib, starlette or
uvicorn: the report names (:func:`build_report`, :func:`load_frame`, ...), the planner, token
counter and lint names, :class:`Ledger` and its rows (SQLAlchemy), the budget names and
:func:`session_collector` are imported on first use (``_LAZY``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from .pricing import AppliedRates, Cost, Modifiers, PriceBook, price
from .tags import tags
from .usage import StreamUsage, Usage
from .wrap import UnsupportedClient, wrap

if TYPE_CHECKING:
    from .budget import RuntimeBudget, estimate_cost
    from .budget.collector import session_collector
    from .ledger import CallRecord, Ledger, Totals
    from .lint import LintWarning, lint, lint_family
    from .planner import Breakpoint, CachePlanner, Plan, Planner, Rejected, ReuseStats
    from .reports import build_report, load_frame, render, spend, totals
    from .tokens import AsyncTokenCounter, TokenCounter, TokenMemo

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

#: Public names imported on first use, and the module of each: the analysis layer (pandas), the
#: ledger (SQLAlchemy) and the budgets, and what a wrapped client imports only when it plans (wrap()
#: imports the planner when it makes one).
_LAZY = {
    **dict.fromkeys(("build_report", "load_frame", "render", "spend", "totals"), "reports"),
    "session_collector": "budget.collector",
    **dict.fromkeys(("RuntimeBudget", "estimate_cost"), "budget"),
    **dict.fromkeys(("CallRecord", "Ledger", "Totals"), "ledger"),
    **dict.fromkeys(("LintWarning", "lint", "lint_family"), "lint"),
    **dict.fromkeys(("Breakpoint", "CachePlanner", "Plan", "Planner", "Rejected", "ReuseStats"), "planner"),
    **dict.fromkeys(("AsyncTokenCounter", "TokenCounter", "TokenMemo"), "tokens"),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
