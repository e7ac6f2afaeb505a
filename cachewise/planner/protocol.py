"""The seam between the send path and a planner: what the call tracker calls, and nothing else.

:class:`cachewise.CachePlanner` conforms (checked by mypy, at the bottom of
:mod:`cachewise.planner.core`), and so does the proxy's planner, a subclass. A user's own
planner conforms by having these three methods; one without ``aplan`` can be adapted by
running ``plan`` in a thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Protocol

from ..usage import Usage
from .plan import Plan

__all__ = ["Planner"]


class Planner(Protocol):
    """Plans a Messages request body (``record=False`` for a retried attempt) and learns from its usage."""

    def plan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan: ...
    async def aplan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan: ...
    def observe(self, plan: Plan, usage: Usage, at: datetime) -> None: ...
