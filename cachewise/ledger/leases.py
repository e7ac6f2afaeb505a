"""Budget leases: how much of a budget's headroom each gateway process may spend before it asks again.

Table ``gateway_leases`` (step 9), one row per (budget, holder process), plus a row with an empty
holder per budget that serialises the leasing (an ``UPDATE`` of it locks the budget: a row lock on
PostgreSQL, the write lock on SQLite). :func:`take_lease`, in one write transaction:

1. locks the budget;
2. sums the budget's spend in the ledger (``calls``, committed rows only);
3. sums the other holders' live leases for the same window: ``held`` (their calls in flight and
   recorded but not yet in a sum they read) until ``held_expires``, ``share`` until ``share_expires``;
4. grants this holder ``held`` (what it already owes) plus an equal part of what is left (split
   among the processes expected, ``shares``, or the live holders when there are more), and at
   least what the call asking needs when that much is left: the last call that fits is admitted;
5. writes its row, and commits.

Amounts are integer units of 10⁻¹² USD (:mod:`.units`), rounded up: a lease never under-states.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal

from sqlalchemy import text
from sqlalchemy.engine import Connection

from .query import Filter, Totals, read_totals
from .units import EXPONENT, from_units

__all__ = ["Lease", "take_lease"]

_LOCK = text(
    "INSERT INTO gateway_leases (budget, holder, window_start, held_units, share_units, held_expires, "
    "share_expires) VALUES (:budget, '', :start, 0, 0, :now, :now) ON CONFLICT (budget, holder) DO NOTHING"
)
_TOUCH = text("UPDATE gateway_leases SET held_units = 0 WHERE budget = :budget AND holder = ''")
_OTHERS = text(
    "SELECT COALESCE(SUM(CASE WHEN held_expires > :now THEN held_units ELSE 0 END), 0), "
    "COALESCE(SUM(CASE WHEN share_expires > :now THEN share_units ELSE 0 END), 0), "
    "COUNT(CASE WHEN share_expires > :now THEN 1 END) "
    "FROM gateway_leases WHERE budget = :budget AND holder NOT IN ('', :holder) AND window_start = :start"
)
_MINE = text(
    "INSERT INTO gateway_leases (budget, holder, window_start, held_units, share_units, held_expires, "
    "share_expires) VALUES (:budget, :holder, :start, :held, :share, :held_expires, :share_expires) "
    "ON CONFLICT (budget, holder) DO UPDATE SET window_start = excluded.window_start, "
    "held_units = excluded.held_units, share_units = excluded.share_units, "
    "held_expires = excluded.held_expires, share_expires = excluded.share_expires"
)


def _moment(conn: Connection) -> Callable[[datetime], datetime | str]:
    """How a UTC time is bound: as itself on PostgreSQL, as ISO text on SQLite (which compares it as text)."""
    if conn.dialect.name == "sqlite":
        return lambda at: at.astimezone(UTC).isoformat()
    return lambda at: at


def _units_up(value: Decimal) -> int:
    return int(value.scaleb(EXPONENT).to_integral_value(ROUND_CEILING))


@dataclass(frozen=True, slots=True)
class Lease:
    """One grant: the ledger's totals at the time, what the others hold, and this holder's part."""

    totals: Totals
    others: Decimal
    holders: int
    held: Decimal
    share: Decimal


def take_lease(
    conn: Connection,
    *,
    budget: str,
    holder: str,
    limit: Decimal,
    window: Filter,
    held: Decimal,
    now: datetime,
    held_seconds: float,
    share_seconds: float,
    shares: int = 1,
    need: Decimal = Decimal(0),
) -> Lease:
    """Grant ``holder`` its lease of ``budget`` (``conn``: a write transaction; see the module).

    The headroom left is split among ``shares`` holders, or among the live holders and this one
    when there are more; but at least ``need`` (the call asking) when that much is free."""
    start = window.since or now.replace(year=1970, month=1, day=1, hour=0, minute=0, second=0)
    moment = _moment(conn)
    key = {"budget": budget, "holder": holder, "start": moment(start), "now": moment(now)}
    conn.execute(_LOCK, key)
    conn.execute(_TOUCH, key)
    totals = read_totals(conn, window)
    row = conn.execute(_OTHERS, key).one()
    others = from_units(int(row[0]) + int(row[1]))
    holders = max(shares, int(row[2]) + 1)
    free = limit - totals.cost_total - others - held
    share = max(max(free, Decimal(0)) / holders, min(need, free))
    share_units = _units_up(share) if share > 0 else 0
    # the part granted is at most what is free (rounding up stays within one unit per holder)
    share = from_units(max(0, min(share_units, math.floor(max(free, Decimal(0)).scaleb(EXPONENT)))))
    conn.execute(
        _MINE,
        {
            **key,
            "held": _units_up(held),
            "share": _units_up(share),
            "held_expires": moment(now + timedelta(seconds=held_seconds)),
            "share_expires": moment(now + timedelta(seconds=share_seconds)),
        },
    )
    return Lease(totals=totals, others=others, holders=holders, held=held, share=share)
