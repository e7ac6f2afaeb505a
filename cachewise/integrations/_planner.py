"""The tracker's seam with planners: the :class:`Planner` protocol, and an adapter for the user's own.

``Planner`` is the protocol of :mod:`cachewise.planner.protocol`, re-exported here.
:class:`~cachewise.planner.CachePlanner` is one. Any other object given as a planner is
wrapped once, when the tracker is made, in :class:`UserPlanner`: it learns there whether
the object's ``plan`` takes ``record=`` and whether it has an ``aplan`` (if not, ``plan``
runs in a thread), and checks that each result is a :class:`~cachewise.planner.Plan`
(or ``None``: nothing planned). The tracker itself calls exactly the protocol.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..planner.body import copy_body
from ..planner.protocol import Planner

if TYPE_CHECKING:
    from ..planner import Plan
    from ..usage import Usage

__all__ = ["AnyPlanner", "Planner", "UserPlanner", "as_planner"]


def _takes_record(func: Callable[..., Any]) -> bool:
    try:
        return "record" in inspect.signature(func).parameters
    except (TypeError, ValueError):  # a builtin or C callable without a signature
        return False


class UserPlanner:
    """A user's planner object, seen through the :class:`Planner` protocol."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._plan_record = _takes_record(inner.plan)
        self._aplan: Callable[..., Awaitable[Any]] | None = getattr(inner, "aplan", None)
        self._aplan_record = self._aplan is not None and _takes_record(self._aplan)

    def _checked(self, result: Any) -> Plan | None:
        from ..planner import Plan  # the planner package is imported by whoever made a planner

        if result is None or isinstance(result, Plan):
            return result
        raise TypeError(
            f"{type(self.inner).__name__}.plan returned {type(result).__name__}, not a cachewise.planner.Plan"
        )

    def plan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan | None:
        kw = {"record": record} if self._plan_record else {}
        return self._checked(self.inner.plan(copy_body(request), **kw))  # its own copy to change

    async def aplan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan | None:
        if self._aplan is None:
            return await asyncio.to_thread(self.plan, request, record=record)
        kw = {"record": record} if self._aplan_record else {}
        return self._checked(await self._aplan(copy_body(request), **kw))

    def observe(self, plan: Plan, usage: Usage, at: datetime) -> None:
        self.inner.observe(plan, usage, at)

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()


AnyPlanner = Planner | UserPlanner


def as_planner(planner: Any) -> AnyPlanner:
    """``planner`` itself if it is a :class:`CachePlanner`, else wrapped in a :class:`UserPlanner`."""
    from ..planner import CachePlanner

    if isinstance(planner, CachePlanner | UserPlanner):
        return planner
    return UserPlanner(planner)
