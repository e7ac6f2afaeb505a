"""Budgets: configured limits checked in CI (``cachewise budget check``), per pytest session
(the ``cachewise`` pytest plugin) and before each request at run time (:class:`RuntimeBudget`)."""

from __future__ import annotations

from .check import RUN_TAG, BudgetResult, build_baseline, check_budgets, load_baseline, select_rows
from .collector import SessionCollector, collecting, install_collector, session_collector, uninstall_collector
from .config import BudgetSpec, find_config, load_budgets, parse_budgets
from .runtime import RuntimeBudget, estimate_cost, prompt_token_bound

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
