"""The reuse window keyed as the ledger keys prefixes, and shared with a fleet: :class:`FleetStats`.

A :class:`~cachewise.planner.ReuseStats` subclass that changes none of its logic. Each public method
cuts prefix hashes to the ledger's replay digits (:func:`.events.key`) and calls the parent, so
the window can be seeded from the ledger (:mod:`.warm`); with a :class:`~.hub.Fleet`, each
observation is also published, and before each read the observations other processes made are
applied, in the order they were stored, through the same parent methods.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from ..planner.reuse import PrefixRecord, ReuseStats
from ..prompt import Ttl
from .events import KEY_DIGITS, Event, from_micros, micros
from .hub import Fleet

__all__ = ["FleetStats"]


class FleetStats(ReuseStats):
    """:class:`ReuseStats` on short prefix keys; with ``fleet``, shared with other processes."""

    def __init__(
        self, *, fleet: Fleet | None = None, max_prefixes: int = 200_000, max_families: int = 10_000
    ) -> None:
        super().__init__(max_prefixes=max_prefixes, max_families=max_families)
        self.fleet = fleet
        self._inbox = None if fleet is None else fleet.pending
        self.applied = 0

    # -- others' observations --------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Apply one observation made elsewhere (``r``, ``t``, ``f``, ``e`` or ``b``), not republished."""
        kind = event[0]
        if kind == "r":
            # The family's size came with the event from 4 December 2026 on (older events: unknown).
            size = event[5] if len(event) > 5 else None
            ReuseStats.record(self, event[4], event[2], event[3], from_micros(event[1]), family_tokens=size)
        elif kind == "t":
            ttl: Ttl = "1h" if event[3] == "1h" else "5m"
            ReuseStats.touch(self, event[2], ttl, from_micros(event[1]), event[4], read=bool(event[5]))
        elif kind == "f":
            ReuseStats.forget(self, event[1])
        elif kind == "e":
            ReuseStats.expect(self, event[1], event[2], int(event[3]))
        elif kind == "b":
            ReuseStats.follow(self, event[1], event[2], int(event[3]))
        else:
            raise ValueError(f"not a reuse observation: {event[:3]!r}")
        self.applied += 1

    def _catch_up(self) -> None:
        inbox = self._inbox
        while inbox:
            self.apply(inbox.popleft())

    # -- recording (the planner's own) -----------------------------------------------------------

    def record(
        self,
        hashes: Iterable[str],
        family: str,
        tail: str | None,
        at: datetime,
        *,
        family_tokens: int | None = None,
    ) -> str | None:
        if self._inbox:
            self._catch_up()
        keys = [h[:KEY_DIGITS] for h in hashes]
        fam, end = family[:KEY_DIGITS], None if tail is None else tail[:KEY_DIGITS]
        continued = super().record(keys, fam, end, at, family_tokens=family_tokens)
        if self.fleet is not None:
            self.fleet.publish(["r", micros(at), fam, end, keys, family_tokens])
        return continued

    def touch(self, prefix_hash: str, ttl: Ttl, at: datetime, tokens: int | None, *, read: bool) -> None:
        if self._inbox:
            self._catch_up()
        short = prefix_hash[:KEY_DIGITS]
        super().touch(short, ttl, at, tokens, read=read)
        if self.fleet is not None:
            self.fleet.publish(["t", micros(at), short, ttl, tokens, int(read)])

    def forget(self, prefix_hash: str) -> None:
        short = prefix_hash[:KEY_DIGITS]
        super().forget(short)
        if self.fleet is not None:
            self.fleet.publish(["f", short])

    # -- estimates -------------------------------------------------------------------------------

    def prefix(self, prefix_hash: str) -> PrefixRecord | None:
        if self._inbox:
            self._catch_up()
        return super().prefix(prefix_hash[:KEY_DIGITS])

    def live(self, prefix_hash: str, now: datetime) -> Ttl | None:
        if self._inbox:
            self._catch_up()
        return super().live(prefix_hash[:KEY_DIGITS], now)

    def p_shared(self, ttl: Ttl, now: datetime | None = None, tokens: int | None = None) -> float:
        if self._inbox:
            self._catch_up()
        return super().p_shared(ttl, now, tokens)

    def p_tail(self, family: str, ttl: Ttl, now: datetime | None = None) -> float:
        if self._inbox:
            self._catch_up()
        return super().p_tail(family[:KEY_DIGITS], ttl, now)

    def p_pause(self, family: str, now: datetime | None = None) -> float:
        if self._inbox:
            self._catch_up()
        return super().p_pause(family[:KEY_DIGITS], now)

    def p_branch(self, family: str, branch: int, ttl: Ttl, now: datetime | None = None) -> float:
        if self._inbox:
            self._catch_up()
        return super().p_branch(family[:KEY_DIGITS], branch, ttl, now)

    def expect(self, prefix_hash: str, family: str, branch: int) -> None:
        if self._inbox:
            self._catch_up()
        short, fam = prefix_hash[:KEY_DIGITS], family[:KEY_DIGITS]
        super().expect(short, fam, branch)
        if self.fleet is not None:
            self.fleet.publish(["e", short, fam, branch])

    def follow(self, prefix_hash: str, family: str, depth: int) -> bool:
        if self._inbox:
            self._catch_up()
        short, fam = prefix_hash[:KEY_DIGITS], family[:KEY_DIGITS]
        new = super().follow(short, fam, depth)
        if new and self.fleet is not None:
            self.fleet.publish(["b", short, fam, depth])
        return new

    def p_return(self, family: str, depth: int) -> float:
        if self._inbox:
            self._catch_up()
        return super().p_return(family[:KEY_DIGITS], depth)

    def settle(self, now: datetime) -> None:
        if self._inbox:
            self._catch_up()
        super().settle(now)

    def p_prefix(self, prefix_hash: str, ttl: Ttl, now: datetime, prior: float) -> tuple[float, int]:
        if self._inbox:
            self._catch_up()
        return super().p_prefix(prefix_hash[:KEY_DIGITS], ttl, now, prior)
