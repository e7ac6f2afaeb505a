"""The local prefix diff: why a request did not read what the previous one of its family cached.

Checked in this order, the first that holds is the reason:

``no_previous``      no earlier request to compare with (a cold start);
``model_changed``    the earlier request ran on another model;
``not_written``      the earlier request carried no marker, so it cached nothing;
``prefix_changed``   the prefix first differs at a position at or before the earlier request's
                     last marker (``level``, ``position`` and both hashes say where);
``concurrent``       the earlier request had not answered yet, so its writes were not readable;
``expired``          the gap since the earlier request is at least its entry's TTL;
``below_minimum``    the earlier request's marked prefix was below the model's minimum;
``no_marker``        this request carries no marker (nothing could be read);
``beyond_lookback``  every marker of this request lies 20 or more positions past the entry;
``unexplained``      none of these (the API evicts entries early at times).

A request that read at least what the earlier one cached is no miss (:func:`diagnose` returns None).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..api_rules import LOOKBACK, TTL_SECONDS
from ..usage import Usage
from .history import Seen

__all__ = ["REASONS", "Diagnosis", "diagnose"]

REASONS: tuple[str, ...] = (
    "no_previous",
    "model_changed",
    "not_written",
    "prefix_changed",
    "concurrent",
    "expired",
    "below_minimum",
    "no_marker",
    "beyond_lookback",
    "unexplained",
)


@dataclass(frozen=True, slots=True)
class Diagnosis:
    """A local miss reason; ``tokens``: what the earlier request cached that this one did not read."""

    reason: str
    tokens: int = 0
    level: str | None = None
    position: int | None = None
    hash_before: str | None = None
    hash_now: str | None = None
    gap_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"reason": self.reason, "tokens": self.tokens}
        for key in ("level", "position", "hash_before", "hash_now", "gap_seconds"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def diagnose(
    current: Seen, previous: Seen | None, usage: Usage, *, at: datetime, min_tokens: int
) -> Diagnosis | None:
    """Why ``current`` (sent at ``at``, billed ``usage``) did not read what ``previous`` cached."""
    read = usage.cache_read_input_tokens
    if previous is None:
        return None if read else Diagnosis("no_previous")
    written = previous.written_tokens
    finished = previous.finished_at is not None and previous.finished_at <= at
    if read and finished and read >= written:
        return None
    missed = max(written - read, 0)
    gap = (at - previous.started_at).total_seconds()
    if previous.model != current.model:
        return Diagnosis("model_changed", missed, gap_seconds=gap)
    last = previous.last_marker
    if last is None:
        return Diagnosis("not_written", 0, gap_seconds=gap)
    common = current.common(previous)
    if common <= last:
        level = (
            current.levels[common]
            if common < len(current.levels)
            else previous.levels[min(common, len(previous.levels) - 1)]
        )
        return Diagnosis(
            "prefix_changed",
            missed,
            level=level,
            position=common,
            hash_before=previous.hashes[common] if common < len(previous.hashes) else None,
            hash_now=current.hashes[common] if common < len(current.hashes) else None,
            gap_seconds=gap,
        )
    if not finished:
        if read:
            return None
        return Diagnosis("concurrent", usage.cache_creation_input_tokens, gap_seconds=gap)
    if gap >= TTL_SECONDS[previous.ttl]:
        return Diagnosis("expired", missed, gap_seconds=gap)
    if written < min_tokens:
        return Diagnosis("below_minimum", missed, gap_seconds=gap)
    if not current.marked:
        return Diagnosis("no_marker", missed, gap_seconds=gap)
    reach = current.markers if not current.auto else (len(current.hashes) - 1,)
    if all(m - last >= LOOKBACK for m in reach):
        return Diagnosis("beyond_lookback", missed, position=last, gap_seconds=gap)
    return Diagnosis("unexplained", missed, gap_seconds=gap)
