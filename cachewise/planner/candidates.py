"""Where a breakpoint could go: the candidate positions of one request, and what is known of each.

Candidates (docs/planner.md, "How it decides"): the end of tools, the end of system, the
ends of large documents and tool results, the conversation tail, prefixes believed cached
now, the deepest prefix seen before, and bridges so that no gap between candidates near the
tail exceeds the server's 20-position lookback (docs/api-notes.md §2.1). The caller's markers and
the top-level automatic marker are fixed candidates that use their slots (docs/api-notes.md §1.4).
A candidate inside a run of ``tool_use`` / ``tool_result`` blocks moves to the run's end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Literal

from ..api_rules import LOOKBACK
from ..api_rules import MAX_MARKERS as MAX_BREAKPOINTS
from ..prompt import Position, Prompt, Ttl
from ..tokens import TokenBounds
from .plan import Source
from .reuse import ReuseStats

__all__ = [
    "LARGE_BLOCK_BYTES",
    "LOOKBACK",
    "MAX_BREAKPOINTS",
    "MAX_BRIDGES",
    "STRUCTURAL",
    "Candidate",
    "Kind",
    "Status",
    "collect",
]

LARGE_BLOCK_BYTES = 2048
MAX_BRIDGES = 6
MAX_LIVE = 3  # prefixes believed cached now, deepest first

Kind = Literal[
    "end of tools",
    "end of system",
    "large document",
    "large tool result",
    "conversation tail",
    "cached now",
    "seen before",
    "lookback bridge",
]
STRUCTURAL: frozenset[Kind] = frozenset(
    {"end of tools", "end of system", "large document", "large tool result"}
)


class Status(StrEnum):
    """How a candidate's size compares with the model's minimum cacheable length."""

    OPEN = "open"  # not sized yet
    OK = "ok"  # at or above the minimum, by its bounds or its count
    BELOW = "below"  # below the minimum
    AMBIGUOUS = "ambiguous"  # its bounds straddle the minimum
    UNCOUNTABLE = "uncountable"  # straddles, and could not be counted


@dataclass(slots=True)
class Candidate:
    """One position a breakpoint could go on: why (``kinds``), its size bounds, its value per TTL."""

    position: Position
    kinds: list[Kind] = field(default_factory=list)
    fixed: Source | None = None
    fixed_ttl: Ttl | None = None
    #: The TTL of each caller's marker at this position, in block order (a run holds several).
    marker_ttls: list[Ttl] = field(default_factory=list)
    slots: int = 0
    bounds: TokenBounds = field(default_factory=lambda: TokenBounds(0, 0, 0))
    values: dict[Ttl, float] = field(default_factory=dict)
    why: dict[Ttl, str] = field(default_factory=dict)
    live: Ttl | None = None
    status: Status = Status.OPEN
    note: str = ""

    @property
    def index(self) -> int:
        return self.position.index

    @property
    def structural(self) -> bool:
        return bool(STRUCTURAL.intersection(self.kinds))

    @property
    def shareable(self) -> bool:
        return self.structural or self.live is not None or "lookback bridge" in self.kinds

    def best(self) -> float:
        return max(self.values.values(), default=-math.inf)


def collect(prompt: Prompt, stats: ReuseStats, now: datetime, notes: list[str]) -> dict[int, Candidate]:
    """The candidates of ``prompt`` by position index, the fixed ones (caller, automatic) included."""
    position = prompt.position
    plannable = prompt.plannable
    cands: dict[int, Candidate] = {}

    def add(index: int | None, kind: Kind) -> None:
        if index is None or index < 0:
            return
        pos = position(index)
        while pos.inside_run:  # a run is one position: its marker goes on the run's last block
            pos = position(pos.index + 1)
        while not pos.plannable and pos.index > 0 and prompt.level(pos.index - 1) == pos.level:
            pos = position(pos.index - 1)
        if not pos.plannable:
            return
        cand = cands.get(pos.index)
        if cand is None:
            cand = cands[pos.index] = Candidate(pos)
        if kind not in cand.kinds:
            cand.kinds.append(kind)

    for marker in prompt.markers:
        cand = cands.setdefault(marker.position, Candidate(position(marker.position)))
        cand.fixed = "caller"
        cand.fixed_ttl = "1h" if marker.ttl == "1h" or cand.fixed_ttl == "1h" else "5m"
        cand.marker_ttls.append(marker.ttl)
        cand.slots += 1
    last = prompt.last_markable()
    if prompt.auto is not None and last is not None:
        cand = cands.setdefault(last, Candidate(position(last)))
        if cand.fixed is None:
            cand.fixed, cand.fixed_ttl = "automatic", prompt.auto
        cand.slots += 1
    used = sum(c.slots for c in cands.values())
    if used > MAX_BREAKPOINTS:
        notes.append(f"the request already has {used} breakpoints (limit 4); nothing added")
    add(prompt.level_ends.get("tools"), "end of tools")
    add(prompt.level_ends.get("system"), "end of system")
    for index, kind in enumerate(prompt.kinds):
        if (kind == "document" or kind == "tool_result") and prompt.nbytes(index) >= LARGE_BLOCK_BYTES:
            add(index, "large document" if kind == "document" else "large tool result")
    if last is not None and prompt.auto is None:
        add(last, "conversation tail")
    anchor = max(prompt.level_ends.get("system", -1), prompt.level_ends.get("tools", -1))
    live_found = 0
    deepest_seen: int | None = None
    hashes = prompt.hashes
    for index in range(len(hashes) - 1, -1, -1):
        if not plannable(index):
            continue
        prefix_hash = hashes[index]
        rec = stats.prefix(prefix_hash)
        # live() needs a record with an entry (most prefixes have neither: no call for them)
        if (
            live_found < MAX_LIVE
            and rec is not None
            and rec.live_until is not None
            and stats.live(prefix_hash, now) is not None
        ):
            add(index, "cached now")
            live_found += 1
            anchor = max(anchor, index)
        if deepest_seen is None and rec is not None and rec.arrivals:
            deepest_seen = index
        if deepest_seen is not None and (live_found >= MAX_LIVE or index < anchor):
            break
    if deepest_seen is not None:
        add(deepest_seen, "seen before")
        anchor = max(anchor, deepest_seen)
    if last is not None:
        # Bridges: no gap of more than LOOKBACK positions between candidates near the tail.
        point, bridges = last, 0
        while point - anchor >= LOOKBACK and bridges < MAX_BRIDGES:
            target = point - (LOOKBACK - 1)
            while target > anchor and not plannable(target):
                target -= 1
            if target <= anchor:
                break
            add(target, "lookback bridge")
            point, bridges = target, bridges + 1
    return cands
