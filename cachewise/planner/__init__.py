"""The request planner: prompt-cache breakpoints that pay for themselves, sized with count_tokens.

The plan and the protocol (what the call tracker needs) are imported with the package; the
planner itself (:mod:`.core`, which imports the token counter and its HTTP clients) on first use
of one of its names (``_LAZY``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .plan import Breakpoint, Plan, Rejected
from .protocol import Planner
from .reuse import ReuseStats, expected_reads

if TYPE_CHECKING:
    from .core import DEFAULT_COUNT_BUDGET, MAX_BREAKPOINTS, CachePlanner, effective_minimum

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

#: Names imported on first use (the planner and the token counter behind it), and their module.
_LAZY = dict.fromkeys(
    ("DEFAULT_COUNT_BUDGET", "MAX_BREAKPOINTS", "CachePlanner", "effective_minimum"), "core"
)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
