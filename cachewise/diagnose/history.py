"""The recent requests of one tracker, kept as position hashes and sizes (never prompt text)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ..api_rules import Ttl
from ..prompt import Prompt

__all__ = ["PrefixHistory", "Seen"]


@dataclass(slots=True)
class Seen:
    """One request as sent: its model, prefix hash and level per position, and its markers.

    Per position also its canonical bytes and text bytes (cumulative), its block type and whether a
    marker may go on it; ``marker_list`` is every ``cache_control`` in block order (position, TTL)
    and ``auto_ttl`` the top-level one: what the planner reads of a request (ledger replay).

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
    cum_text: tuple[int, ...] = ()
    kinds: tuple[str, ...] = ()
    plannable: tuple[bool, ...] = ()
    marker_list: tuple[tuple[int, Ttl], ...] = ()
    auto_ttl: Ttl | None = None

    @classmethod
    def of(cls, prompt: Prompt, at: datetime, added: Sequence[tuple[int, Ttl]] = ()) -> Seen:
        """``prompt`` as sent at ``at``; ``added``: markers put on it after it was read (the planner's,
        ``(position, TTL)``), so the planner's reading serves and the body is not read again."""
        listed = [(m.position, m.ttl) for m in prompt.markers]
        if added:
            listed = sorted([*listed, *added], key=lambda m: m[0])  # stable: block order kept
        auto = prompt.auto
        ttls = {t for _, t in listed}
        if auto:
            ttls.add(auto)
        positions = prompt.positions
        n = len(positions)
        return cls(
            prompt.model,
            at,
            tuple([p.prefix_hash for p in positions]),
            tuple([p.level for p in positions]),
            tuple(sorted({at for at, _ in listed})),
            "1h" if "1h" in ttls else "5m",
            auto is not None,
            cum_bytes=tuple([prompt.cum_bytes(i) for i in range(n)]),
            marker_ttls=tuple(sorted(_ttls(listed, auto, n).items())),
            cum_text=tuple([prompt.cum_text(i) for i in range(n)]),
            kinds=tuple([p.kind for p in positions]),
            plannable=tuple([p.plannable for p in positions]),
            marker_list=tuple(listed),
            auto_ttl=auto,
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


def _ttls(markers: Sequence[tuple[int, Ttl]], auto: Ttl | None, n: int) -> dict[int, Ttl]:
    """The TTL each marked position writes with (1h if any of its markers says 1h)."""
    out: dict[int, Ttl] = {}
    for position, ttl in markers:
        out[position] = "1h" if "1h" in (ttl, out.get(position)) else ttl
    if auto is not None and n:
        out[n - 1] = "1h" if "1h" in (auto, out.get(n - 1)) else auto
    return out


class PrefixHistory:
    """The last ``size`` requests; :meth:`previous` finds the one a new request continues.

    Prefix hashes are chained (each covers every position before it), so two requests share ``k``
    leading positions exactly when their hashes at position ``k - 1`` are equal. An index from each
    hash to the newest request holding it answers :meth:`previous` in one dict look-up per position
    of the new request, instead of a pass over the whole history; an entry leaves the index with the
    request it names, when that one leaves the history (every other request holding the hash is
    older, so it left before).
    """

    def __init__(self, size: int = 256) -> None:
        self._seen: deque[tuple[int, Seen]] = deque(maxlen=size)  # (arrival number, request)
        self._newest: dict[str, tuple[int, Seen]] = {}
        self._added = 0
        self._lock = threading.Lock()

    def add(self, seen: Seen) -> None:
        with self._lock:
            kept, newest = self._seen, self._newest
            if len(kept) == kept.maxlen:
                number, leaving = kept[0]
                for h in leaving.hashes:
                    entry = newest.get(h)
                    if entry is not None and entry[0] == number:
                        del newest[h]
            self._added += 1
            entry = (self._added, seen)
            kept.append(entry)
            newest.update(dict.fromkeys(seen.hashes, entry))

    def previous(self, current: Seen, *, with_message_id: bool = False) -> Seen | None:
        """The earlier request sharing the longest prefix with ``current`` (the newest on a tie).

        When none shares even the first position (another model, other tools), the newest one.
        """
        if not with_message_id:
            with self._lock:
                newest = self._newest
                for h in reversed(current.hashes):
                    entry = newest.get(h)
                    if entry is not None:
                        if entry[1] is not current:
                            return entry[1]
                        break  # ``current`` is in the history itself: the scan skips it
                else:
                    for _, seen in reversed(self._seen):
                        if seen is not current:
                            return seen
                    return None
        return self._scan(current, with_message_id)

    def _scan(self, current: Seen, with_message_id: bool) -> Seen | None:
        """:meth:`previous` by a pass over every request kept (the newest first)."""
        with self._lock:
            earlier = [s for _, s in self._seen if s is not current and (s.message_id or not with_message_id)]
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
