"""Why a call missed the cache: the local prefix diff, the API's own diagnostics, and what it cost.

* :mod:`.history`: the recent requests of one tracker, as position hashes (no prompt text);
* :mod:`.local`: :func:`diagnose`, the local reason (where the prefix first differed, or that the
  entry had expired, was below the minimum, lay beyond the lookback, or was not yet readable);
* :mod:`.api`: the API's ``diagnostics.cache_miss_reason`` read from a response;
* :mod:`.watch`: :class:`MissWatch`, what the tracker calls before and after each request;
* :mod:`.replay`: :func:`points`, what ``whatif --since`` replays per call (hashes and counted sizes);
* :mod:`.cost`: :func:`missed_cost`, the money a miss cost (exact ``Decimal``).
"""

from __future__ import annotations

from .api import ApiReason, read_api_reason
from .cost import missed_cost, saving, split
from .history import PrefixHistory, Seen
from .local import REASONS, Diagnosis, diagnose
from .replay import Point, Replay, Sizes, points
from .watch import Look, MissWatch

__all__ = [
    "REASONS",
    "ApiReason",
    "Diagnosis",
    "Look",
    "MissWatch",
    "Point",
    "PrefixHistory",
    "Replay",
    "Seen",
    "Sizes",
    "diagnose",
    "missed_cost",
    "points",
    "read_api_reason",
    "saving",
    "split",
]
