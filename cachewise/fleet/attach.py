"""Wire a planner to a fleet store or the ledger at construction: :func:`attach`.

``attach(planner, store=URL)`` gives the planner a :class:`~.stats.FleetStats` and its counter a
:class:`~.memo.FleetMemo` on the same memo file, starts the :class:`~.hub.Fleet` and waits (up to
``startup_wait`` seconds) for the store's kept events and durable counts: the fleet's warm start.
Without a store, ``attach(planner, ledger=ledger)`` seeds the window from the ledger's recent calls
(:mod:`.warm`); when the ledger has none, the planner is left exactly as it was.

Fail open: a store that cannot be reached, or a ledger that cannot be read, is logged and the
planner plans alone from what it sees. A URL of an unknown kind, or a store whose client library
is not installed, is a configuration error and raises.
"""

from __future__ import annotations

import atexit
from typing import TYPE_CHECKING

from ..failopen import record_failure
from ..planner import CachePlanner
from .hub import Fleet
from .memo import FleetMemo
from .stats import FleetStats
from .stores import ReuseStore, check_url, open_store
from .warm import DEFAULT_HORIZON, recent_calls, seed

if TYPE_CHECKING:
    from datetime import timedelta

    from ..ledger import Ledger

__all__ = ["attach"]


def attach(
    planner: CachePlanner,
    *,
    store: str | ReuseStore | None = None,
    ledger: Ledger | None = None,
    horizon: timedelta = DEFAULT_HORIZON,
    startup_wait: float = 3.0,
) -> Fleet | None:
    """Share ``planner``'s reuse state through ``store``, or warm it from ``ledger``; the fleet, if any."""
    if store is not None:
        if isinstance(store, str):
            check_url(store)  # a misspelt URL is the caller's to fix: raised, not logged
        try:
            fleet = Fleet(open_store(store))
        except ImportError:
            raise
        except Exception as exc:
            record_failure("reuse store (planning goes on locally)", exc)
            return None
        stats = FleetStats(
            fleet=fleet, max_prefixes=planner.stats.max_prefixes, max_families=planner.stats.max_families
        )
        counter = planner.counter
        if counter is not None:
            memo = FleetMemo(counter.memo.path, fleet)
            counter.memo = memo
            fleet.apply_memo = memo.apply
            fleet.load_memo()
        planner.stats = stats
        atexit.register(fleet.close, 0.5)  # what is queued at exit is sent (for at most half a second)
        fleet.start()
        fleet.sync(startup_wait)
        return fleet
    if ledger is not None:
        try:
            calls = recent_calls(ledger, planner.clock(), horizon)
            if calls:
                warm = FleetStats(
                    max_prefixes=planner.stats.max_prefixes, max_families=planner.stats.max_families
                )
                previous, planner.stats = planner.stats, warm
                try:
                    seed(planner, calls)
                except Exception:
                    planner.stats = previous
                    raise
        except Exception as exc:
            record_failure("warm start from the ledger (the planner starts cold)", exc)
    return None
