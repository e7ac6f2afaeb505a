"""The recent requests of one tracker, kept as position hashes and sizes (never prompt text)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime

from ..api_rules import Ttl
from ..prompt import Prompt

__all__ = ["PrefixHistory", "Seen"]


@dataclass(slots=True)
class Seen:
    """One request as sent: its model, prefix hash and level per position, and its markers.

    ``finished_at`` and ``written_tokens`` (read + written, the extent of its cached prefix) are
    filled in when its response is recorded; ``message_id`` too.
    """

    model: str
    started_at: datetime
    hashes: tuple[str, ...]
    levels: tuple[str, ...]
    markers: tuple[int, ...]
    ttl: Ttl
    auto: bool = False
    message_id: str | None = None
    finished_at: datetime | None = None
    written_tokens: int = 0
    total_tokens: int = 0
    cum_bytes: tuple[int, ...] = ()
    marker_ttls: tuple[tuple[int, Ttl], ...] = ()

    @classmethod
    def of(cls, prompt: Prompt, at: datetime) -> Seen:
        markers = tuple(sorted({m.position for m in prompt.markers}))
        ttls = {m.ttl for m in prompt.markers} | ({prompt.auto} if prompt.auto else set())
        return cls(
            model=prompt.model,
            started_at=at,
            hashes=tuple(p.prefix_hash for p in prompt.positions),
            levels=tuple(p.level for p in prompt.positions),
            markers=markers,
            ttl="1h" if "1h" in ttls else "5m",
            auto=prompt.auto is not None,
            cum_bytes=tuple(prompt.cum_bytes(i) for i in range(len(prompt.positions))),
            marker_ttls=tuple(sorted(_ttls(prompt).items())),
        )

    @property
    def marked(self) -> bool:
        return bool(self.markers) or self.auto

    @property
    def last_marker(self) -> int | None:
        """The last position the request cached (the last position with automatic caching)."""
        if self.auto:
            return len(self.hashes) - 1
        return self.markers[-1] if self.markers else None

    def common(self, other: Seen) -> int:
        """How many leading positions ``self`` and ``other`` share."""
        n = 0
        for a, b in zip(self.hashes, other.hashes, strict=False):
            if a != b:
                break
            n += 1
        return n


def _ttls(prompt: Prompt) -> dict[int, Ttl]:
    """The TTL each marked position writes with (1h if any of its markers says 1h)."""
    out: dict[int, Ttl] = {}
    for marker in prompt.markers:
        out[marker.position] = "1h" if "1h" in (marker.ttl, out.get(marker.position)) else marker.ttl
    if prompt.auto is not None and prompt.positions:
        last = len(prompt.positions) - 1
        out[last] = "1h" if "1h" in (prompt.auto, out.get(last)) else prompt.auto
    return out


class PrefixHistory:
    """The last ``size`` requests; :meth:`previous` finds the one a new request continues."""

    def __init__(self, size: int = 256) -> None:
        self._seen: deque[Seen] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, seen: Seen) -> None:
        with self._lock:
            self._seen.append(seen)

    def previous(self, current: Seen, *, with_message_id: bool = False) -> Seen | None:
        """The earlier request sharing the longest prefix with ``current`` (the newest on a tie).

        When none shares even the first position (another model, other tools), the newest one.
        """
        with self._lock:
            earlier = [s for s in self._seen if s is not current and (s.message_id or not with_message_id)]
        if not earlier:
            return None
        best, best_n = earlier[-1], 0
        mine = current.hashes
        for seen in reversed(earlier):
            # Only one sharing more than ``best_n`` positions can win: test that first, in C.
            theirs, k = seen.hashes, best_n + 1
            if len(theirs) < k or len(mine) < k or theirs[best_n] != mine[best_n] or theirs[:k] != mine[:k]:
                continue
            n = seen.common(current)
            if n > best_n:
                best, best_n = seen, n
        return best
