"""The cache engine: entries per (workspace, model, prefix hash), lookback reads, billing A/B/C.

The algorithm is docs/api-notes.md §2.1–2.2:

1. Markers whose full prefix is below the model's minimum (docs/api-notes.md §2.3) are dropped;
   with none left nothing is cached and no error is raised.
2. For each remaining marker, look back at most :data:`LOOKBACK` positions counting the
   marker itself as the first (positions ``p, p-1, ..., p-19``) for a live, readable
   entry an earlier request wrote at that exact prefix; the highest hit over all
   markers gives ``A``.
3. ``B`` = tokens up to the highest 1h marker after ``A`` (``A`` if none); ``C`` = tokens
   up to the last marker (at least ``A``). Bill ``A`` as read, ``B-A`` as 1h write,
   ``C-B`` as 5m write and the rest as ``input_tokens``.
4. Each marker after ``A`` writes one entry; the hit (and every live entry at a marker
   at or before it) is refreshed. Lifetimes run from the start of the request:
   an entry is alive while ``now < start + ttl``.

Concurrency (docs/api-notes.md §2.5): :meth:`CacheEngine.begin` computes the usage against the
entries that are readable at that moment and returns a :class:`Ticket`; the writes only
become readable at :meth:`CacheEngine.commit`, which the emulator calls when the
response begins. A request that begins before the writer commits sees a miss.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from .positions import Layout, Ttl

__all__ = ["LOOKBACK", "TTL_SECONDS", "CacheEngine", "Entry", "Ticket"]

LOOKBACK = 20
TTL_SECONDS: dict[Ttl, int] = {"5m": 300, "1h": 3600}

_Key = tuple[str, str, bytes]


@dataclass(slots=True)
class Entry:
    """One cache entry: the prefix an earlier request wrote at a marker."""

    workspace: str
    model: str
    digest: bytes
    tokens: int
    ttl: Ttl
    created_at: datetime
    expires_at: datetime
    written_by: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "workspace": self.workspace,
            "model": self.model,
            "prefix_hash": self.digest.hex(),
            "tokens": self.tokens,
            "ttl": self.ttl,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "written_by": self.written_by,
        }


@dataclass(frozen=True, slots=True)
class _Write:
    digest: bytes
    tokens: int
    ttl: Ttl


@dataclass(slots=True)
class Ticket:
    """The cache outcome of one request, computed at its start, applied at :meth:`CacheEngine.commit`."""

    workspace: str
    model: str
    request_id: str
    start: datetime
    input_tokens: int
    cache_read_input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0
    hit_index: int | None = None
    writes: list[_Write] = field(default_factory=list)
    refresh: list[bytes] = field(default_factory=list)
    committed: bool = False

    @property
    def cache_creation_input_tokens(self) -> int:
        return self.ephemeral_5m_input_tokens + self.ephemeral_1h_input_tokens


class CacheEngine:
    """In-memory prompt cache shared by every endpoint of one emulator."""

    def __init__(self) -> None:
        self._entries: dict[_Key, Entry] = {}
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self._entries.clear()

    def begin(
        self,
        layout: Layout,
        *,
        workspace: str,
        start: datetime,
        request_id: str,
        min_tokens: int,
    ) -> Ticket:
        """Compute reads and writes for ``layout`` as of ``start`` (nothing is stored yet)."""
        positions = layout.positions
        # docs/api-notes.md §2.1 step 4: the minimum is checked per marker on its full prefix length.
        marked = [p for p in positions if p.markers and p.end >= min_tokens]
        ticket = Ticket(workspace, layout.model, request_id, start, input_tokens=layout.total_tokens)
        if not marked:
            return ticket
        hit = -1
        with self._lock:
            for position in marked:
                for q in range(position.index, max(-1, position.index - LOOKBACK), -1):
                    if self._live((workspace, layout.model, positions[q].digest), start):
                        hit = max(hit, q)
                        break
        a = positions[hit].end if hit >= 0 else 0
        after = [p for p in marked if p.index > hit]
        hour = [p.end for p in after if p.ttl == "1h"]
        b = max(hour) if hour else a
        c = max([a, *(p.end for p in after)])
        ticket.cache_read_input_tokens = a
        ticket.ephemeral_1h_input_tokens = b - a
        ticket.ephemeral_5m_input_tokens = c - b
        ticket.input_tokens = layout.total_tokens - c
        ticket.hit_index = hit if hit >= 0 else None
        ticket.writes = [_Write(p.digest, p.end, p.ttl or "5m") for p in after]
        if hit >= 0:
            ticket.refresh = [positions[hit].digest] + [p.digest for p in marked if p.index < hit]
        return ticket

    def commit(self, ticket: Ticket) -> None:
        """The response has begun: make the ticket's writes readable and refresh what it read."""
        if ticket.committed:
            return
        ticket.committed = True
        with self._lock:
            for digest in ticket.refresh:
                entry = self._entries.get((ticket.workspace, ticket.model, digest))
                if entry is not None and entry.expires_at > ticket.start:
                    entry.expires_at = max(
                        entry.expires_at, ticket.start + timedelta(seconds=TTL_SECONDS[entry.ttl])
                    )
            for write in ticket.writes:
                key = (ticket.workspace, ticket.model, write.digest)
                expires = ticket.start + timedelta(seconds=TTL_SECONDS[write.ttl])
                old = self._entries.get(key)
                if old is not None and old.expires_at > expires:
                    continue  # a concurrent writer already stored a longer-lived copy
                self._entries[key] = Entry(
                    ticket.workspace,
                    ticket.model,
                    write.digest,
                    write.tokens,
                    write.ttl,
                    ticket.start,
                    expires,
                    ticket.request_id,
                )

    def entries(self, now: datetime) -> list[Entry]:
        """Live entries at ``now`` (expired ones are dropped)."""
        with self._lock:
            for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
                del self._entries[key]
            return sorted(self._entries.values(), key=lambda e: (e.workspace, e.model, e.created_at))

    def _live(self, key: _Key, at: datetime) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.expires_at > at
