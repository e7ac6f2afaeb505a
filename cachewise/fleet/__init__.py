"""Reuse that survives a restart and is shared by a fleet (docs/planner.md, "Fleet").

* **Warm start** (:mod:`.warm`): a planner's reuse window seeded from the ledger's recent calls.
* **Fleet** (:mod:`.hub`, :mod:`.stores`): reuse observations, token counts and learned minimums
  published to and read from one store, a Redis stream or a PostgreSQL table, so several
  processes planning one stream of traffic know what one process would.
* **Fan-out leases** (:mod:`.leases`): on the same store, one process leads a cold prefix and
  the others' requests on it wait (bounded) for its response to begin.

:func:`attach` wires either to a planner at construction; ``cachewise.wrap(client,
reuse_store=..., warm_start=...)`` and ``cachewise proxy --reuse-store/--warm-start`` call it.
"""

from __future__ import annotations

from .attach import attach
from .events import KEY_DIGITS
from .hub import Fleet, FleetCounters
from .leases import PostgresLeases, RedisLeases, open_leases
from .memo import FleetMemo
from .stats import FleetStats
from .stores import DEFAULT_RETENTION, PostgresStore, RedisStore, ReuseStore, open_store
from .warm import DEFAULT_HORIZON, recent_calls, seed

__all__ = [
    "DEFAULT_HORIZON",
    "DEFAULT_RETENTION",
    "KEY_DIGITS",
    "Fleet",
    "FleetCounters",
    "FleetMemo",
    "FleetStats",
    "PostgresLeases",
    "PostgresStore",
    "RedisLeases",
    "RedisStore",
    "ReuseStore",
    "attach",
    "open_leases",
    "open_store",
    "recent_calls",
    "seed",
]
