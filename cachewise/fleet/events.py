"""What one process tells the fleet: reuse observations, token counts and learned minimums.

An event is a short JSON list, first item its kind; a batch is a list of events, published
with the id of the process that made it (its *origin*) so no process applies its own twice.

==========  ==============================================================  ==================
kind        fields                                                          applied with
==========  ==============================================================  ==================
``r``       time, family, tail (or null), prefix hashes (prefix order),     ``ReuseStats.record``
            the family's tokens (or null; absent before 4 December 2026)
``t``       time, prefix hash, TTL, tokens (or null), read (0/1)            ``ReuseStats.touch``
``f``       prefix hash                                                     ``ReuseStats.forget``
``e``       prefix hash, family, depth (a new boundary to follow)           ``ReuseStats.expect``
``b``       prefix hash, family, depth (a boundary whose returns count)     ``ReuseStats.follow``
``c``       namespace, model, prefix hash (full), tokens                    ``TokenMemo.put``
``m``       namespace, model, above (or null), at most (or null)            ``TokenMemo.learn_minimum``
==========  ==============================================================  ==================

Prefix hashes in ``r``/``t``/``f``/``e``/``b`` are cut to :data:`KEY_DIGITS` hex digits, as the
ledger's replay points keep them, so observations read back from the ledger and from the fleet
agree. Times are integer microseconds since the epoch (exact, aware UTC on reading). No prompt
text, ever.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["KEY_DIGITS", "Batch", "Event", "decode", "encode", "from_micros", "key", "micros"]

KEY_DIGITS = 16  # the digits of a prefix hash the ledger's replay points keep (cachewise.diagnose.replay)

Event = list[Any]
Batch = list[Event]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def key(prefix_hash: str) -> str:
    """The reuse window's key for a prefix hash: its first :data:`KEY_DIGITS` hex digits."""
    return prefix_hash[:KEY_DIGITS]


def micros(at: datetime) -> int:
    """``at`` (aware) as whole microseconds since the epoch."""
    if at.tzinfo is None:
        raise ValueError(f"reuse event time must be timezone-aware UTC, got {at!r}")
    delta = at - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(value))


def encode(batch: Batch) -> str:
    return json.dumps(batch, separators=(",", ":"))


def decode(text: str | bytes) -> Batch:
    """A batch read back from a store; a clear error if it is not a list of events."""
    value = json.loads(text)
    if not isinstance(value, list) or not all(isinstance(e, list) and e for e in value):
        raise ValueError(
            f"a reuse event batch must be a JSON list of non-empty lists, got {str(text)[:80]!r}"
        )
    return value
