"""One cache breakpoint of a request: the one type shared by the plan and the ledger.

The planner fills every field (:class:`cachewise.planner.Plan.breakpoints`); the ledger keeps
``position``, ``ttl``, ``tokens`` and ``prefix_hash`` of each (:meth:`Breakpoint.as_dict`, the
``breakpoints`` column) and reads them back with :meth:`Breakpoint.coerce`. A leaf below both:
it imports only the API's vocabulary (:mod:`cachewise.api_rules`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from .api_rules import Ttl

__all__ = ["Breakpoint", "Source"]

Source = Literal["planner", "caller", "automatic"]

#: The fields the ledger keeps, in its column's key order.
_STORED = ("position", "ttl", "tokens", "prefix_hash")


@dataclass(frozen=True, slots=True)
class Breakpoint:
    """One ``cache_control`` marker of a request: where (``position``), which TTL, how large a prefix.

    ``tokens`` is the prefix size: counted with count_tokens when ``counted`` is true,
    otherwise the offline estimate (with ``low``/``high`` bounds); ``None`` when unknown.
    ``path`` is the marked block in the planned body (``system.0``), ``source`` who placed
    it, ``reason`` why, and ``expected_value`` the expected saving in USD of this
    breakpoint's segment (reads minus write premium). The ledger stores the first four.
    """

    position: int
    ttl: Ttl = "5m"
    tokens: int | None = None
    prefix_hash: str | None = None
    path: str = ""
    counted: bool = False
    reason: str = ""
    source: Source = "planner"
    low: int = 0
    high: int = 0
    expected_value: Decimal = Decimal(0)

    def as_dict(self) -> dict[str, Any]:
        """The fields the ledger keeps (its ``breakpoints`` column)."""
        return {name: getattr(self, name) for name in _STORED}

    @classmethod
    def coerce(cls, value: Breakpoint | Mapping[str, Any]) -> Breakpoint:
        """A breakpoint as given, or read back from a stored mapping (:meth:`as_dict`'s shape)."""
        if isinstance(value, Breakpoint):
            return value
        ttl: Any = str(value.get("ttl", "5m"))  # kept as stored: a row is never rewritten on reading
        return cls(
            position=int(value["position"]),
            ttl=ttl,
            tokens=None if value.get("tokens") is None else int(value["tokens"]),
            prefix_hash=value.get("prefix_hash"),
        )
