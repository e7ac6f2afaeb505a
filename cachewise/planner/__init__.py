"""The request planner: prompt-cache breakpoints that pay for themselves, sized with count_tokens.

The plan and the protocol (what the call tracker needs) are imported with the package; the
planner itself (:mod:`.core`, which imports the token counter and its HTTP clients) on first use
of one of its names (``_LAZY``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
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


__getattr__, __dir__ = lazy_names(__name__, _LAZY, globals(), __all__)
