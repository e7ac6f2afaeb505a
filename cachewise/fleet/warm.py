"""Warm start: a planner's reuse window seeded from the ledger's recent calls, so a restart does not relearn.

Each call the tracker recorded keeps, without prompt text, its replay points (``calls.replay``:
per cache position the first 16 hex digits of its prefix hash, in prefix order), its family (the
``prefix_hash`` column: the prefix hash at the end of system), its breakpoints (position, TTL,
tokens, prefix hash) and its usage. Replayed oldest first, each call is what the planner saw live:

1. its arrival, :meth:`ReuseStats.record` (hashes, family, tail = the last position, and the
   family's size: the tokens of the replay point at the end of system, else of tools);
2. its response, :meth:`CachePlanner.observe` on a plan of its recorded breakpoints: the entries
   written and read become live, an uncached call forgets them, as they did live.

The window is a :class:`~.stats.FleetStats` (the ledger's short hashes as keys). Token counts and
learned minimums need no seeding: the memo is a file that already outlives the process. Calls
recorded without replay points (before ledger step 0008, imported, batch results) are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..ledger import CallRecord
from ..planner import Plan
from .events import key

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..planner import CachePlanner

__all__ = ["DEFAULT_HORIZON", "DEFAULT_MAX_CALLS", "recent_calls", "seed"]

DEFAULT_HORIZON = timedelta(hours=2)  # the reuse window looks back 1 hour; twice that, for the gaps
DEFAULT_MAX_CALLS = 2_000  # ~0.4 ms each to read and replay: under a second at start
_WINDOWS = tuple(timedelta(minutes=m) for m in (5, 15, 30, 60, 120, 240, 480, 1440))


def _family(call: CallRecord, hashes: list[str], levels: list[str]) -> str:
    if call.prefix_hash:
        return key(call.prefix_hash)
    for level in ("system", "tools"):
        ends = [i for i, name in enumerate(levels) if name == level]
        if ends:
            return hashes[ends[-1]]
    return f"model:{call.model}"  # no system and no tools: the planner's own family is not recorded


def _family_tokens(points: list[list[object]], levels: list[str]) -> int | None:
    """The tokens of the replay point at the end of system (else of tools); 0 with neither, as the
    planner sizes a family without them; ``None`` if the point holds no number."""
    for level in ("system", "tools"):
        ends = [i for i, name in enumerate(levels) if name == level]
        if ends:
            tokens = points[ends[-1]][1]
            return int(tokens) if isinstance(tokens, int | float) else None
    return 0


def seed(planner: CachePlanner, calls: Iterable[CallRecord]) -> int:
    """Replay ``calls`` (any order) into ``planner``'s reuse window; how many were used.

    The planner's window must key prefixes as the ledger does (a :class:`~.stats.FleetStats`).
    """
    used = 0
    for call in sorted(calls, key=lambda c: c.started_at):
        points = (call.replay or {}).get("points") or []
        if not points:
            continue
        hashes = [str(p[0]) for p in points]
        levels = [str(p[2]) for p in points]
        planner.stats.record(
            hashes,
            _family(call, hashes, levels),
            hashes[-1],
            call.started_at,
            family_tokens=_family_tokens(points, levels),
        )
        if call.breakpoints and call.status == "ok":
            plan = Plan(
                request={}, model=call.model, planned_at=call.started_at, breakpoints=call.breakpoints
            )
            planner.observe(plan, call.usage, call.started_at)
        used += 1
    return used


def recent_calls(
    ledger: Ledger, now: datetime, horizon: timedelta = DEFAULT_HORIZON, max_calls: int = DEFAULT_MAX_CALLS
) -> list[CallRecord]:
    """The ledger's Messages calls (plain and streamed) of the last ``horizon``, oldest first.

    The window widens from 5 minutes up to ``horizon`` and stops once it holds ``max_calls``
    calls, so a busy ledger is read for its most recent traffic only (the start stays short).
    """
    calls: list[CallRecord] = []
    for window in (*_WINDOWS, horizon):
        span = min(window, horizon)
        calls = [c for c in ledger.calls(since=now - span) if c.endpoint != "batch"]
        if span >= horizon or len(calls) >= max_calls:
            break
    return calls
