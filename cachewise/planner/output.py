"""From the planner's decision to a :class:`Plan`: the marked body, the breakpoints and the reasons."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..pricing import AppliedRates
from ..prompt import Prompt, Ttl
from .body import planned_body
from .candidates import Candidate, Status
from .plan import Breakpoint, Plan, Rejected

__all__ = ["Minimum", "Outcome", "build"]


@dataclass(frozen=True, slots=True)
class Minimum:
    """The minimum cacheable length planned with, and where it comes from."""

    tokens: int
    source: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the planning steps decided for one request: everything :func:`build` needs."""

    request: Mapping[str, Any]  # the caller's request (read, never changed): build() marks a copy of it
    prompt: Prompt
    planned_at: datetime
    candidates: Mapping[int, Candidate]
    chosen: Sequence[Candidate]
    minimum: Minimum
    rates: AppliedRates
    notes: Sequence[str] = ()
    count_calls: int = 0
    limit: int = 4
    counts: Mapping[int, int] = field(default_factory=dict)
    memoised: frozenset[int] = frozenset()


_MICRO_USD = Decimal("0.000001")


def _money(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(_MICRO_USD)


def _breakpoints(outcome: Outcome) -> tuple[dict[str, Any], tuple[Breakpoint, ...]]:
    """The plan's body (the planner's markers on a copy of the request) and one :class:`Breakpoint`
    per chosen candidate."""
    placed = [(c.position, c.fixed_ttl or "5m") for c in outcome.chosen if c.fixed is None]
    body, paths = planned_body(outcome.request, placed)
    marked = iter(paths)
    out: list[Breakpoint] = []
    previous = 0
    for c in outcome.chosen:
        ttl: Ttl = c.fixed_ttl or "5m"
        tokens = max(c.bounds.estimate, previous)
        value = (tokens - previous) * c.values.get(ttl, 0.0)
        previous = tokens
        path = c.position.path
        if c.fixed is None:
            path = next(marked)
            reason = f"{', '.join(c.kinds)}; {c.why.get(ttl, '')}"
        else:
            reason = "kept as given" if c.fixed == "caller" else "top-level cache_control (kept)"
        out.append(
            Breakpoint(
                position=c.index,
                path=path,
                tokens=c.bounds.estimate,
                counted=c.bounds.exact,
                ttl=ttl,
                reason=reason,
                prefix_hash=c.position.prefix_hash,
                source=c.fixed or "planner",
                low=c.bounds.low,
                high=c.bounds.high,
                expected_value=_money(value) if c.fixed is None else Decimal(0),
            )
        )
    return body, tuple(out)


def _why_not(c: Candidate, minimum: int, full: bool) -> str:
    if c.status == Status.BELOW:
        return f"below the minimum of {minimum:,} tokens (at most {c.bounds.high:,})"
    if c.status in (Status.UNCOUNTABLE, Status.AMBIGUOUS) and c.note:
        return c.note
    if c.status == Status.AMBIGUOUS:
        return "no expected reuse (" + "; ".join(c.why.values()) + ")"
    if c.best() <= 0:
        return "no expected reuse: " + "; ".join(f"{t}: {w}" for t, w in c.why.items())
    if full:
        return "over the limit of 4 (the chosen breakpoints are worth more)"
    return "adds no value beside the chosen breakpoints (same reuse, or TTL order)"


def _rejected(outcome: Outcome) -> tuple[Rejected, ...]:
    chosen = {id(c) for c in outcome.chosen}
    full = sum(max(c.slots, 1) for c in outcome.chosen) >= outcome.limit
    out: list[Rejected] = []
    for index in sorted(outcome.candidates):
        c = outcome.candidates[index]
        if id(c) in chosen or c.fixed is not None:
            continue
        size: int | None = c.bounds.estimate if c.status != Status.OPEN else None
        reason = _why_not(c, outcome.minimum.tokens, full)
        out.append(Rejected(c.index, c.position.path, ", ".join(c.kinds), reason, size, c.bounds.exact))
    return tuple(out)


def build(outcome: Outcome) -> Plan:
    """The :class:`Plan`: the planner's markers, every breakpoint and rejection, why.

    The plan's body is a copy of ``outcome.request`` made on write (:func:`.body.planned_body`):
    the containers on the path to each new marker are copied, the rest is shared, unchanged.
    """
    body, breakpoints = _breakpoints(outcome)
    prompt = outcome.prompt
    rates = outcome.rates
    tail = prompt.last_markable()
    return Plan(
        request=body,
        model=prompt.model,
        planned_at=outcome.planned_at,
        breakpoints=breakpoints,
        rejected=_rejected(outcome),
        notes=tuple(outcome.notes),
        minimum=outcome.minimum.tokens,
        minimum_source=outcome.minimum.source,
        count_calls=outcome.count_calls,
        counts=dict(outcome.counts),
        memoised=outcome.memoised,
        family=prompt.family,
        tail_hash=prompt.prefix_hash(tail) if tail is not None else None,
        positions=len(prompt),
        prices={
            "input": rates.input,
            "write 5m": rates.cache_write_5m,
            "write 1h": rates.cache_write_1h,
            "read": rates.cache_read,
        },
        prompt=prompt,
    )
