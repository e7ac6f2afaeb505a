"""What the planner decided for one request, and why: :class:`Plan` and its :meth:`Plan.explain`.

Its breakpoints are :class:`cachewise.breakpoints.Breakpoint`, the type the ledger stores too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..breakpoints import Breakpoint, Source

if TYPE_CHECKING:
    from ..prompt import Prompt

__all__ = ["Breakpoint", "Plan", "Rejected", "Source"]


@dataclass(frozen=True, slots=True)
class Rejected:
    """A candidate position the planner did not mark, and why."""

    position: int
    path: str
    kind: str
    reason: str
    tokens: int | None = None
    counted: bool = False


@dataclass(frozen=True, slots=True)
class Plan:
    """The planned request and the reasons.

    ``request`` is a new dict; the containers on the path to each marker the planner added are
    copies, the other blocks are the caller's own objects (shared, never changed by cachewise;
    the caller's dict is untouched).
    """

    request: dict[str, Any]
    model: str
    planned_at: datetime
    breakpoints: tuple[Breakpoint, ...] = ()
    rejected: tuple[Rejected, ...] = ()
    notes: tuple[str, ...] = ()
    minimum: int | None = None
    minimum_source: str = ""
    count_calls: int = 0
    family: str = ""
    tail_hash: str | None = None
    positions: int = 0
    prices: dict[str, Decimal] = field(default_factory=dict)
    #: every prefix size the planner knew exactly, by position: count_tokens answers and memo hits
    counts: dict[int, int] = field(default_factory=dict)
    #: the positions of :attr:`counts` its memo knew before this plan counted anything
    memoised: frozenset[int] = frozenset()
    #: the request as the planner read it (before its markers): the miss watch reuses its hashes
    prompt: Prompt | None = field(default=None, repr=False, compare=False)

    @property
    def added(self) -> tuple[Breakpoint, ...]:
        """The breakpoints the planner placed (not the caller's, not the automatic one)."""
        return tuple(b for b in self.breakpoints if b.source == "planner")

    @property
    def expected_value(self) -> Decimal:
        return sum((b.expected_value for b in self.added), Decimal(0))

    def explain(self) -> str:
        """A human-readable account: each breakpoint and each rejected candidate, with reasons."""
        lines = [f"Plan for {self.model or '<no model>'} at {self.planned_at.isoformat()}"]
        if self.minimum is not None:
            lines.append(f"  minimum cacheable prompt: {self.minimum:,} tokens ({self.minimum_source})")
        lines.append(
            f"  {self.positions} positions; {len(self.breakpoints)} of 4 breakpoints used "
            f"({len(self.added)} placed); {self.count_calls} count_tokens call(s)"
        )
        if self.prices:
            parts = ", ".join(f"{k} ${v}" for k, v in self.prices.items())
            lines.append(f"  prices per MTok: {parts}")
        if self.breakpoints:
            lines.append("Breakpoints:")
            for b in self.breakpoints:
                known = "? tokens" if b.tokens is None else f"{b.tokens:,} tokens"
                size = known + ("" if b.counted else f" (estimated, {b.low:,}–{b.high:,})")
                value = f"; expected value ${b.expected_value:.6f}" if b.source == "planner" else ""
                lines.append(
                    f"  [{b.position:>4}] {b.path:<28} {b.ttl:<3} {size}  {b.source}: {b.reason}{value}"
                )
        else:
            lines.append("Breakpoints: none")
        if self.rejected:
            lines.append("Rejected candidates:")
            for r in self.rejected:
                size = (
                    "" if r.tokens is None else f" ({r.tokens:,} tokens{'' if r.counted else ', estimated'})"
                )
                lines.append(f"  [{r.position:>4}] {r.path:<28} {r.kind}{size}: {r.reason}")
        for note in self.notes:
            lines.append(f"Note: {note}")
        return "\n".join(lines)
