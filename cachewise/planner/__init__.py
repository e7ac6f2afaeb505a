"""The request planner: prompt-cache breakpoints that pay for themselves, sized with count_tokens."""

from __future__ import annotations

from .core import DEFAULT_COUNT_BUDGET, MAX_BREAKPOINTS, CachePlanner, effective_minimum
from .plan import Breakpoint, Plan, Rejected
from .protocol import Planner
from .reuse import ReuseStats, expected_reads

__all__ = [
    "DEFAULT_COUNT_BUDGET",
    "MAX_BREAKPOINTS",
    "Breakpoint",
    "CachePlanner",
    "Plan",
    "Planner",
    "Rejected",
    "ReuseStats",
    "effective_minimum",
    "expected_reads",
]
