"""The typed seam: one Planner protocol, one Breakpoint type for the plan and the ledger."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from datetime import UTC, datetime

import cachewise
import cachewise.ledger
import cachewise.planner
from cachewise.breakpoints import Breakpoint
from cachewise.planner import CachePlanner, Planner
from cachewise.usage import Usage

from .test_planner import LONG, chat


def test_planner_protocol_is_exported_where_the_planner_is() -> None:
    assert cachewise.Planner is Planner is cachewise.planner.Planner
    assert {"plan", "aplan", "observe"} <= set(dir(Planner))
    assert inspect.iscoroutinefunction(Planner.aplan)


def test_cache_planner_has_the_protocol_signatures() -> None:
    """mypy checks conformance statically (cachewise/planner/core.py); this pins the call shapes."""
    for name in ("plan", "aplan"):
        params = inspect.signature(getattr(CachePlanner, name)).parameters
        assert params["record"].kind is inspect.Parameter.KEYWORD_ONLY and params["record"].default is True
    assert list(inspect.signature(CachePlanner.observe).parameters) == ["self", "plan", "usage", "at"]


def test_one_breakpoint_type_for_plan_and_ledger(make_planner: Callable[..., CachePlanner]) -> None:
    assert cachewise.Breakpoint is cachewise.planner.Breakpoint is cachewise.ledger.Breakpoint is Breakpoint
    plan = make_planner().plan(chat(LONG, 2))
    assert plan.breakpoints and all(isinstance(b, Breakpoint) for b in plan.breakpoints)
    # The ledger keeps four fields of each; read back, they are the same breakpoint's.
    for b in plan.breakpoints:
        kept = Breakpoint.coerce(b.as_dict())
        assert (kept.position, kept.ttl, kept.tokens, kept.prefix_hash) == (
            b.position,
            b.ttl,
            b.tokens,
            b.prefix_hash,
        )
    planner: Planner = make_planner()
    planner.observe(plan, Usage.from_api({"input_tokens": 3}), datetime.now(UTC))
