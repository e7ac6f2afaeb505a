"""Observed reuse of prefixes and prefix families, in an in-memory window.

All times come from the caller (the planner's clock), so traffic replayed in virtual
time gives the same statistics as live traffic.

* A **prefix** is a prefix hash (:mod:`cachewise.prompt`). For each one the window keeps
  its recent arrivals (gaps between them estimate how often it is reused) and, from
  responses, whether an entry for it is believed live in the server's cache.
* A **family** is the prefix hash at the end of ``system`` (or of ``tools``, or the
  model alone): requests sharing their instructions. For each family the window keeps
  how often a request's *tail* (its whole prompt) was continued by a later request, and
  after how long: the chance that a new conversation tail is reused.
* Two global priors, each a Beta(1, 1) start: the share of families seen again within
  5 minutes / 1 hour, and the share of tails continued within 5 minutes / 1 hour.
  Outcomes are resolved when the window closes (5 minutes or 1 hour after the arrival)
  or when the reuse happens.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..api_rules import TTL_SECONDS
from ..prompt import Ttl

__all__ = ["EXPECTED_READS_CAP", "TTL_SECONDS", "Outcomes", "PrefixRecord", "ReuseStats", "expected_reads"]

EXPECTED_READS_CAP = 8.0
PRIOR_WEIGHT = 0.5


def expected_reads(f: float) -> float:
    """Expected reads of an entry when each next use arrives within its TTL with probability ``f``.

    Each read refreshes the entry, so reads form a chain of length ``f / (1 - f)`` on average,
    capped at :data:`EXPECTED_READS_CAP` (a horizon: the write is paid once per chain).
    """
    if f >= 1.0:
        return EXPECTED_READS_CAP
    return min(EXPECTED_READS_CAP, max(0.0, f / (1.0 - f)))


@dataclass(slots=True)
class Outcomes:
    """Resolved outcomes of one kind of event: how many were reused within 5m and 1h."""

    resolved_5m: int = 0
    reused_5m: int = 0
    resolved_1h: int = 0
    reused_1h: int = 0

    def counts(self, ttl: Ttl) -> tuple[int, int]:
        """How many were resolved within ``ttl``'s window, and how many of those reused."""
        if ttl == "5m":
            return self.resolved_5m, self.reused_5m
        return self.resolved_1h, self.reused_1h

    def rate(self, ttl: Ttl) -> float:
        """Posterior mean under a Beta(1, 1) prior."""
        resolved, reused = self.counts(ttl)
        return (reused + 1) / (resolved + 2)

    def reuse(self, gap: float) -> None:
        if gap < TTL_SECONDS["5m"]:
            self.resolved_5m += 1
            self.reused_5m += 1
        if gap < TTL_SECONDS["1h"]:
            self.resolved_1h += 1
            self.reused_1h += 1

    def lapse(self, ttl: Ttl) -> None:
        if ttl == "5m":
            self.resolved_5m += 1
        else:
            self.resolved_1h += 1


@dataclass(slots=True)
class PrefixRecord:
    """One prefix hash: recent arrivals, and the cache entry believed live for it."""

    arrivals: deque[datetime] = field(default_factory=lambda: deque(maxlen=32))
    live_until: datetime | None = None
    live_ttl: Ttl | None = None
    tokens: int | None = None
    writes: int = 0
    reads: int = 0


@dataclass(slots=True)
class _Pending:
    at: datetime
    key: str
    family: str | None
    done_5m: bool = False
    done: bool = False


@dataclass(slots=True)
class _Family:
    tails: Outcomes = field(default_factory=Outcomes)
    arrivals: int = 0
    open_tails: dict[str, _Pending] = field(default_factory=dict)


class ReuseStats:
    """The planner's memory of traffic: arrivals, continuations and live entries, bounded in size."""

    def __init__(self, *, max_prefixes: int = 200_000, max_families: int = 10_000) -> None:
        self.max_prefixes = max_prefixes
        self.max_families = max_families
        self.prefixes: OrderedDict[str, PrefixRecord] = OrderedDict()
        self.families: OrderedDict[str, _Family] = OrderedDict()
        self.shared = Outcomes()
        self.tails = Outcomes()
        self._pending: deque[_Pending] = deque()
        self._pending_1h: deque[_Pending] = deque()
        self.requests = 0

    # -- recording ---------------------------------------------------------------------------

    def _resolve(self, now: datetime) -> None:
        for item in self._lapsed(self._pending, "5m", now):
            item.done_5m = True
            self._pending_1h.append(item)
        for item in self._lapsed(self._pending_1h, "1h", now):
            item.done = True
            if item.family is not None:
                family = self.families.get(item.family)
                if family is not None:
                    family.open_tails.pop(item.key, None)

    def _lapsed(self, queue: deque[_Pending], ttl: Ttl, now: datetime) -> Iterator[_Pending]:
        """Pop the items whose ``ttl`` window passed with no reuse, counting each one's lapse."""
        window = timedelta(seconds=TTL_SECONDS[ttl])
        while queue and now - queue[0].at >= window:
            item = queue.popleft()
            if not item.done:
                for outcomes in self._outcomes(item):
                    outcomes.lapse(ttl)
                yield item

    def _outcomes(self, item: _Pending) -> list[Outcomes]:
        if item.family is None:
            return [self.shared]
        family = self.families.get(item.family)
        # A tail counts for its family and for the global tail prior.
        return [self.tails] if family is None else [family.tails, self.tails]

    def _reuse(self, item: _Pending, gap: float) -> None:
        item.done = True
        for outcomes in self._outcomes(item):
            if not item.done_5m:
                outcomes.reuse(gap)
            elif gap < TTL_SECONDS["1h"]:
                # The 5m window was already resolved as "not reused": count only the hour.
                outcomes.resolved_1h += 1
                outcomes.reused_1h += 1

    def record(self, hashes: Iterable[str], family: str, tail: str | None, at: datetime) -> str | None:
        """A request arrived at ``at`` with these prefix hashes (in prefix order).

        Returns the hash of the earlier tail this request continues, if any.
        """
        self._resolve(at)
        self.requests += 1
        fam = self.families.get(family)
        if fam is None:
            fam = _Family()
            self.families[family] = fam
            pending = _Pending(at, family, None)
            fam.open_tails["__family__"] = pending
            self._pending.append(pending)
            while len(self.families) > self.max_families:
                self.families.popitem(last=False)
        else:
            self.families.move_to_end(family)
            first = fam.open_tails.pop("__family__", None)
            if first is not None and not first.done:
                self._reuse(first, (at - first.at).total_seconds())
        fam.arrivals += 1
        continued: str | None = None
        ordered = list(hashes)
        for h in reversed(ordered):
            open_tail = fam.open_tails.get(h)
            if open_tail is not None and not open_tail.done:
                self._reuse(open_tail, (at - open_tail.at).total_seconds())
                fam.open_tails.pop(h, None)
                continued = h
                break
        for h in ordered:
            rec = self.prefixes.get(h)
            if rec is None:
                rec = PrefixRecord()
                self.prefixes[h] = rec
            else:
                self.prefixes.move_to_end(h)
            rec.arrivals.append(at)
        while len(self.prefixes) > self.max_prefixes:
            self.prefixes.popitem(last=False)
        if tail is not None and tail not in fam.open_tails:
            pending = _Pending(at, tail, family)
            fam.open_tails[tail] = pending
            self._pending.append(pending)
        return continued

    def touch(self, prefix_hash: str, ttl: Ttl, at: datetime, tokens: int | None, *, read: bool) -> None:
        """A response showed an entry for this prefix written or read at ``at`` (the request start)."""
        rec = self.prefixes.get(prefix_hash)
        if rec is None:
            rec = PrefixRecord()
            self.prefixes[prefix_hash] = rec
        until = at + timedelta(seconds=TTL_SECONDS[ttl])
        if rec.live_until is None or until >= rec.live_until:
            rec.live_until, rec.live_ttl = until, ttl
        if tokens is not None:
            rec.tokens = tokens
        if read:
            rec.reads += 1
        else:
            rec.writes += 1

    def forget(self, prefix_hash: str) -> None:
        rec = self.prefixes.get(prefix_hash)
        if rec is not None:
            rec.live_until = rec.live_ttl = None

    # -- estimates ---------------------------------------------------------------------------

    def prefix(self, prefix_hash: str) -> PrefixRecord | None:
        return self.prefixes.get(prefix_hash)

    def live(self, prefix_hash: str, now: datetime) -> Ttl | None:
        rec = self.prefixes.get(prefix_hash)
        if rec is None or rec.live_until is None or now >= rec.live_until:
            return None
        return rec.live_ttl

    def p_shared(self, ttl: Ttl) -> float:
        return self.shared.rate(ttl)

    def p_tail(self, family: str, ttl: Ttl) -> float:
        prior = self.tails.rate(ttl)
        fam = self.families.get(family)
        if fam is None:
            return prior
        seen, reused = fam.tails.counts(ttl)
        return (reused + PRIOR_WEIGHT * prior) / (seen + PRIOR_WEIGHT)

    def p_prefix(self, prefix_hash: str, ttl: Ttl, now: datetime, prior: float) -> tuple[float, int]:
        """Chance the next use of this prefix comes within ``ttl``, from its gaps; and the gap count."""
        rec = self.prefixes.get(prefix_hash)
        if rec is None or not rec.arrivals:
            return prior, 0
        times = [*rec.arrivals]
        if times[-1] < now:
            times.append(now)
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
        gaps = [g for g in gaps if g > 0]
        if not gaps:
            return prior, 0
        limit = TTL_SECONDS[ttl]
        hits = sum(1 for g in gaps if g < limit)
        return (hits + PRIOR_WEIGHT * prior) / (len(gaps) + PRIOR_WEIGHT), len(gaps)
