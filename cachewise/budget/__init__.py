"""Budgets: configured limits checked in CI (``cachewise budget check``), per pytest session
(the ``cachewise`` pytest plugin) and before each request at run time (:class:`RuntimeBudget`).

The configuration and the runtime budget import no pandas; the CI check (:mod:`.check`) and the
pytest session collector (:mod:`.collector`) read pandas frames and are imported on first use of
one of their names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import RUN_TAG
from .config import BudgetSpec, find_config, load_budgets, parse_budgets
from .runtime import RuntimeBudget, estimate_cost, prompt_token_bound

if TYPE_CHECKING:
    from .check import BudgetResult, build_baseline, check_budgets, load_baseline, select_rows
    from .collector import (
        SessionCollector,
        collecting,
        install_collector,
        session_collector,
        uninstall_collector,
    )

__all__ = [
    "RUN_TAG",
    "BudgetResult",
    "BudgetSpec",
    "RuntimeBudget",
    "SessionCollector",
    "build_baseline",
    "check_budgets",
    "collecting",
    "estimate_cost",
    "find_config",
    "install_collector",
    "load_baseline",
    "load_budgets",
    "parse_budgets",
    "prompt_token_bound",
    "select_rows",
    "session_collector",
    "uninstall_collector",
]

#: Names imported on first use (they need pandas), and the module each lives in.
_LAZY = {
    **dict.fromkeys(
        ("BudgetResult", "build_baseline", "check_budgets", "load_baseline", "select_rows"), "check"
    ),
    **dict.fromkeys(
        ("SessionCollector", "collecting", "install_collector", "session_collector", "uninstall_collector"),
        "collector",
    ),
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
