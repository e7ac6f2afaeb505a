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
* A **new boundary** is a document or tool-result boundary whose exact prefix had never
  been seen when a request first carried it (the planner names them with :meth:`ReuseStats.expect`).
  Per family and per depth (how many such boundaries come before it: 0, 1, or 2 and
  more; the first document of a request, the second of a pair, the rest of a
  combination), the window keeps how often such a prefix was
  seen again in a later request within 5 minutes / 1 hour: the chance that a combination
  never seen before is worth a write.
* A **return** is a document or tool-result boundary coming back after its 5-minute chain of
  reuse ended (no use for 5 minutes), within the hour. Every arrival of a boundary the planner
  follows (:meth:`ReuseStats.follow`) opens an outcome; per family and per depth the window keeps
  how many chains ended and how many of those came back within the hour: the chance that a
  5-minute entry written now would have to be written again after a pause, where a 1-hour one
  would be read.
* Global priors, each a Beta(1, 1) start: the share of families seen again within
  5 minutes / 1 hour, of tails continued, and of new boundaries seen again. The share of
  families is also kept by the size of their prefix (a class per factor of 2 in tokens,
  :func:`size_class`), and read for a size with each class weighted by how close it is
  (:data:`SIZE_WEIGHT` per factor of 2 apart): whether a context of 150k tokens comes back
  after five minutes is learned from contexts like it, not from short prompts.
  Outcomes are resolved when the window closes (5 minutes or 1 hour after the arrival)
  or when the reuse happens.
"""

from __future__ import annotations

import bisect
import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..api_rules import TTL_SECONDS
from ..prompt import Ttl

__all__ = [
    "BRANCHES",
    "EXPECTED_READS_CAP",
    "SIZE_WEIGHT",
    "TTL_SECONDS",
    "Outcomes",
    "PrefixRecord",
    "ReuseStats",
    "expected_reads",
    "size_class",
]

EXPECTED_READS_CAP = 8.0
_MEMO_MAX = 4096  # rates kept at one now (a clock that stands still plans many requests)
_RateTable = dict[tuple[str, str | int, Ttl], float]  # (kind, family or size class, TTL) -> rate
_WINDOW_5M = timedelta(seconds=TTL_SECONDS["5m"])
_WINDOW_1H = timedelta(seconds=TTL_SECONDS["1h"])
PRIOR_WEIGHT = 0.5
#: New boundaries are told apart by depth: 0, 1, or 2 and more document or tool-result boundaries before them.
BRANCHES = 3
#: A family's new-boundary rate leans on the global one until it has a few outcomes of its own.
BRANCH_PRIOR_WEIGHT = 1.0
#: The weight of a family's outcome in the shared rate read for another size, per size class apart
#: (a factor of 2 in tokens): 1/2 at twice or half the size, 1/8 at eight times.
SIZE_WEIGHT = 0.5
#: Classes further apart than this are not read (their weight is under 1/100).
_SIZE_CLASSES_READ = 6
_SIZE_WEIGHTS = tuple(SIZE_WEIGHT**apart for apart in range(_SIZE_CLASSES_READ + 1))


def size_class(tokens: int) -> int:
    """The size class of a prefix of ``tokens`` tokens: one per factor of 2 (its bit length)."""
    return max(0, int(tokens)).bit_length()


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
    """Outcomes of one kind of event: how many were reused within 5m and 1h, and how many are open.

    An open event (no reuse yet, its window not closed) is evidence too: one that has waited
    most of its window without a reuse has most likely lapsed. With ``now``, :meth:`rate`
    counts each open event as a fraction of a lapse, its age over the window (so a burst of
    new prefixes that are never reused lowers the rate within minutes, not only once the
    windows close). The ages are kept as sums, so this costs nothing per event.
    """

    resolved_5m: int = 0
    reused_5m: int = 0
    resolved_1h: int = 0
    reused_1h: int = 0
    open_5m: int = 0
    open_5m_at: float = 0.0  # the sum of the open events' arrival times (POSIX seconds)
    open_1h: int = 0
    open_1h_at: float = 0.0

    def counts(self, ttl: Ttl) -> tuple[int, int]:
        """How many were resolved within ``ttl``'s window, and how many of those reused."""
        if ttl == "5m":
            return self.resolved_5m, self.reused_5m
        return self.resolved_1h, self.reused_1h

    def evidence(self, ttl: Ttl, now: datetime | None = None) -> tuple[float, int]:
        """Resolved events (plus open ones as fractions of a lapse, with ``now``) and reused ones."""
        resolved, reused = self.counts(ttl)
        if now is None:
            return float(resolved), reused
        n, total = (self.open_5m, self.open_5m_at) if ttl == "5m" else (self.open_1h, self.open_1h_at)
        if n <= 0:
            return float(resolved), reused
        waited = (n * now.timestamp() - total) / TTL_SECONDS[ttl]
        return resolved + min(float(n), max(0.0, waited)), reused

    def rate(self, ttl: Ttl, now: datetime | None = None) -> float:
        """Posterior mean under a Beta(1, 1) prior (open events counted with ``now``)."""
        resolved, reused = self.evidence(ttl, now)
        return (reused + 1) / (resolved + 2)

    def open(self, at: datetime) -> None:
        ts = at.timestamp()
        self.open_5m, self.open_5m_at = self.open_5m + 1, self.open_5m_at + ts
        self.open_1h, self.open_1h_at = self.open_1h + 1, self.open_1h_at + ts

    def close(self, ttl: Ttl, at: datetime) -> None:
        ts = at.timestamp()
        if ttl == "5m":
            self.open_5m, self.open_5m_at = self.open_5m - 1, self.open_5m_at - ts
        else:
            self.open_1h, self.open_1h_at = self.open_1h - 1, self.open_1h_at - ts

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
    #: How many arrivals were ever appended (more than ``arrivals`` holds): what :attr:`spans` is of.
    appended: int = field(default=0, repr=False, compare=False)
    #: ``(appended, spans)``: the positive gaps between consecutive arrivals, in seconds, sorted,
    #: worked out once per arrival (:meth:`ReuseStats.p_prefix` adds the gap up to its ``now``).
    spans: tuple[int, tuple[float, ...]] | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class _Pending:
    at: datetime
    key: str
    family: str | None
    done_5m: bool = False
    done: bool = False
    branch: int | None = None  # a new boundary's depth (0 … BRANCHES - 1); None: a tail or a family
    chain: bool = False  # an arrival of a followed boundary (a return after 5 minutes is what counts)
    size: int | None = None  # a family's first arrival: the size class of its prefix, if known


@dataclass(slots=True)
class _Family:
    tails: Outcomes = field(default_factory=Outcomes)
    arrivals: int = 0
    open_tails: dict[str, _Pending] = field(default_factory=dict)
    branches: tuple[Outcomes, ...] = field(default_factory=lambda: tuple(Outcomes() for _ in range(BRANCHES)))
    chains: tuple[Outcomes, ...] = field(default_factory=lambda: tuple(Outcomes() for _ in range(BRANCHES)))


class ReuseStats:
    """The planner's memory of traffic: arrivals, continuations and live entries, bounded in size."""

    def __init__(self, *, max_prefixes: int = 200_000, max_families: int = 10_000) -> None:
        self.max_prefixes = max_prefixes
        self.max_families = max_families
        self.prefixes: OrderedDict[str, PrefixRecord] = OrderedDict()
        self.families: OrderedDict[str, _Family] = OrderedDict()
        self.shared = Outcomes()
        #: The families' first arrivals again, by the size class of their prefix (those of known size).
        self.shared_by_size: dict[int, Outcomes] = {}
        self.tails = Outcomes()
        self.branches = tuple(Outcomes() for _ in range(BRANCHES))
        self.chains = tuple(Outcomes() for _ in range(BRANCHES))
        self._expected: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._followed: OrderedDict[str, tuple[str, int]] = OrderedDict()
        self._chains: dict[str, _Pending] = {}
        self._new: dict[str, _Pending] = {}
        self._pending: deque[_Pending] = deque()
        self._pending_1h: deque[_Pending] = deque()
        self.requests = 0
        #: Bumped by every change to the outcomes the rates read (an arrival, a window closing).
        self._version = 0
        #: The rates asked at one ``now`` and version: a plan asks the same family's rates for each
        #: of its candidates. One tuple, replaced whole, so threads never pair a stamp with another's table.
        self._rates: tuple[tuple[datetime, int] | None, _RateTable] = (None, {})

    # -- recording ---------------------------------------------------------------------------

    def _resolve(self, now: datetime) -> None:
        pending, pending_1h = self._pending, self._pending_1h
        if not (pending and now - pending[0].at >= _WINDOW_5M) and not (
            pending_1h and now - pending_1h[0].at >= _WINDOW_1H
        ):
            return  # no window has closed: nothing to resolve (asked once per candidate)
        self._version += 1  # before and after the change: a rate read meanwhile is not kept
        try:
            self._close_windows(now)
        finally:
            self._version += 1

    def _close_windows(self, now: datetime) -> None:
        for item in self._lapsed(self._pending, "5m", now):
            item.done_5m = True
            self._pending_1h.append(item)
        for item in self._lapsed(self._pending_1h, "1h", now):
            item.done = True
            if item.chain:
                if self._chains.get(item.key) is item:
                    del self._chains[item.key]
            elif item.branch is not None:
                self._new.pop(item.key, None)
            elif item.family is not None:
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
                    outcomes.close(ttl, item.at)
                yield item

    def _outcomes(self, item: _Pending) -> list[Outcomes]:
        if item.family is None:
            if item.size is None:
                return [self.shared]
            sized = self.shared_by_size.get(item.size)
            if sized is None:
                sized = self.shared_by_size[item.size] = Outcomes()
            return [self.shared, sized]
        family = self.families.get(item.family)
        if item.chain and item.branch is not None:
            glob = self.chains[item.branch]
            return [glob] if family is None else [family.chains[item.branch], glob]
        if item.branch is not None:
            glob = self.branches[item.branch]
            return [glob] if family is None else [family.branches[item.branch], glob]
        # A tail counts for its family and for the global tail prior.
        return [self.tails] if family is None else [family.tails, self.tails]

    def _open(self, item: _Pending) -> None:
        self._pending.append(item)
        for outcomes in self._outcomes(item):
            outcomes.open(item.at)

    def _reuse(self, item: _Pending, gap: float) -> None:
        item.done = True
        for outcomes in self._outcomes(item):
            outcomes.close("1h", item.at)
            if not item.done_5m:
                outcomes.close("5m", item.at)
                outcomes.reuse(gap)
            elif gap < TTL_SECONDS["1h"]:
                # The 5m window was already resolved as "not reused": count only the hour.
                outcomes.resolved_1h += 1
                outcomes.reused_1h += 1

    def record(
        self,
        hashes: Iterable[str],
        family: str,
        tail: str | None,
        at: datetime,
        *,
        family_tokens: int | None = None,
    ) -> str | None:
        """A request arrived at ``at`` with these prefix hashes (in prefix order).

        ``family_tokens``: the size of the family's prefix (the end of tools or system), which sorts
        a new family into the shared rate by size (:meth:`p_shared`); ``None`` when unknown.
        Returns the hash of the earlier tail this request continues, if any.
        """
        self._resolve(at)
        self._version += 1  # before and after the change: a rate read meanwhile is not kept
        try:
            return self._record(hashes, family, tail, at, family_tokens)
        finally:
            self._version += 1

    def _record(
        self, hashes: Iterable[str], family: str, tail: str | None, at: datetime, family_tokens: int | None
    ) -> str | None:
        self.requests += 1
        fam = self.families.get(family)
        if fam is None:
            fam = _Family()
            self.families[family] = fam
            size = None if family_tokens is None else size_class(family_tokens)
            pending = _Pending(at, family, None, size=size)
            fam.open_tails["__family__"] = pending
            self._open(pending)
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
                expected = self._expected.pop(h, None)
                if expected is not None:
                    # A new boundary: is this exact prefix seen again in a later request?
                    item = _Pending(at, h, expected[0], branch=expected[1])
                    self._new[h] = item
                    self._open(item)
            else:
                self.prefixes.move_to_end(h)
                opened = self._new.get(h)
                if opened is not None and at > opened.at:
                    del self._new[h]
                    if not opened.done:
                        self._reuse(opened, (at - opened.at).total_seconds())
            rec.arrivals.append(at)
            rec.appended += 1  # after the append: spans stamped with the count before it are stale
            followed = self._followed.get(h)
            if followed is not None:
                self._chain(h, followed, at)
        while len(self.prefixes) > self.max_prefixes:
            self.prefixes.popitem(last=False)
        if tail is not None and tail not in fam.open_tails:
            pending = _Pending(at, tail, family)
            fam.open_tails[tail] = pending
            self._open(pending)
        return continued

    def _chain(self, prefix_hash: str, followed: tuple[str, int], at: datetime) -> None:
        """A followed boundary arrived: resolve its previous arrival's outcome, open this one's."""
        previous = self._chains.get(prefix_hash)
        if previous is not None and not previous.done and at > previous.at:
            self._reuse(previous, (at - previous.at).total_seconds())
        if previous is None or at > previous.at:
            item = _Pending(at, prefix_hash, followed[0], branch=followed[1], chain=True)
            self._chains[prefix_hash] = item
            self._open(item)

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

    def expect(self, prefix_hash: str, family: str, branch: int) -> None:
        """A boundary never seen before is about to be recorded: follow whether it is seen again.

        ``branch`` is its depth: how many document or tool-result boundaries come before it
        (capped at ``BRANCHES - 1``). Only a prefix with no record is followed; the next
        :meth:`record` that carries it opens the outcome.
        """
        if prefix_hash in self.prefixes:
            return
        self._expected[prefix_hash] = (family, min(max(branch, 0), BRANCHES - 1))
        self._expected.move_to_end(prefix_hash)
        while len(self._expected) > 4096:
            self._expected.popitem(last=False)

    def follow(self, prefix_hash: str, family: str, depth: int) -> bool:
        """Follow the arrivals of a document or tool-result boundary at ``depth`` (see :meth:`p_return`).

        Returns whether it was not followed yet (the last 4,096 boundaries named are followed).
        """
        if prefix_hash in self._followed:
            self._followed.move_to_end(prefix_hash)
            return False
        self._followed[prefix_hash] = (family, min(max(depth, 0), BRANCHES - 1))
        while len(self._followed) > 4096:
            self._followed.popitem(last=False)
        return True

    def settle(self, now: datetime) -> None:
        """Resolve every outcome whose window has closed by ``now`` (so estimates are current).

        Cheap when none has: it looks at the oldest open outcome of each window only.
        """
        self._resolve(now)

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

    def _table(self, now: datetime) -> _RateTable:
        """The rates already worked out at ``now`` with the outcomes as they are.

        Every rate is a function of the outcomes and ``now``; the version changes with the outcomes
        (:meth:`record`, a window closing), so a table of the same ``now`` and version holds exactly
        what a fresh computation gives. One table at most: the next ``now`` replaces it.
        """
        stamp = (now, self._version)
        memo = self._rates
        if memo[0] != stamp or len(memo[1]) >= _MEMO_MAX:
            memo = self._rates = (stamp, {})
        return memo[1]

    def _rate(
        self,
        key: tuple[str, str | int, Ttl],
        now: datetime | None,
        work_out: Callable[..., float],
        *args: object,
    ) -> float:
        """The rate named ``key``, ``work_out(*args)`` memoised per ``now`` (:meth:`_table`); without
        ``now``, worked out (the arguments passed on, not closed over: asked per candidate)."""
        if now is None:
            return work_out(*args)
        rates = self._table(now)
        found = rates.get(key)
        if found is None:
            found = rates[key] = work_out(*args)
        return found

    def p_shared(self, ttl: Ttl, now: datetime | None = None, tokens: int | None = None) -> float:
        """Chance a family is seen again within ``ttl`` (with ``now``: open arrivals count too).

        With ``tokens`` (the size of the family's prefix), over the families of known size, each
        weighted by :data:`SIZE_WEIGHT` per size class it lies apart: a Beta(1, 1) posterior on the
        weighted counts, so evidence from other sizes moves it less.
        """
        if tokens is None:
            return self._rate(("shared", "", ttl), now, lambda: self.shared.rate(ttl, now))
        centre = size_class(tokens)
        return self._rate(("shared", centre, ttl), now, self._p_shared_sized, centre, ttl, now)

    def _p_shared_sized(self, centre: int, ttl: Ttl, now: datetime | None) -> float:
        seen = reused = 0.0
        for cls, outcomes in self.shared_by_size.items():
            apart = abs(cls - centre)
            if apart > _SIZE_CLASSES_READ:
                continue
            weight = _SIZE_WEIGHTS[apart]
            resolved, hits = outcomes.evidence(ttl, now)
            seen, reused = seen + weight * resolved, reused + weight * hits
        return (reused + 1.0) / (seen + 2.0)

    def p_tail(self, family: str, ttl: Ttl, now: datetime | None = None) -> float:
        """Chance a tail of ``family`` is continued within ``ttl`` (with ``now``: open tails count too)."""
        return self._rate(("tail", family, ttl), now, lambda: self._p_tail(family, ttl, now))

    def _p_tail(self, family: str, ttl: Ttl, now: datetime | None) -> float:
        prior = self.tails.rate(ttl, now)
        fam = self.families.get(family)
        if fam is None:
            return prior
        seen, reused = fam.tails.evidence(ttl, now)
        return (reused + PRIOR_WEIGHT * prior) / (seen + PRIOR_WEIGHT)

    def p_pause(self, family: str, now: datetime | None = None) -> float:
        """Chance a tail of ``family`` is continued after a pause: beyond 5 minutes, within the hour.

        The chance of a continuation within the hour times the share of continuations that came
        after the 5-minute window had closed (per family, backed by the global share; with no
        continuations seen, no pauses are assumed).
        """
        glob = self.tails
        glob_share = (glob.reused_1h - glob.reused_5m) / (glob.reused_1h + 1)
        fam = self.families.get(family)
        if fam is None:
            return self.tails.rate("1h", now) * glob_share
        paused = fam.tails.reused_1h - fam.tails.reused_5m
        share = (paused + PRIOR_WEIGHT * glob_share) / (fam.tails.reused_1h + PRIOR_WEIGHT)
        return self.p_tail(family, "1h", now) * share

    def p_branch(self, family: str, branch: int, ttl: Ttl, now: datetime | None = None) -> float:
        """Chance that a boundary never seen before, at this depth, is seen again within ``ttl``."""
        branch = min(max(branch, 0), BRANCHES - 1)
        glob = self.branches[branch]
        prior = glob.rate(ttl, now)
        fam = self.families.get(family)
        if fam is None:
            return prior
        seen, reused = fam.branches[branch].evidence(ttl, now)
        return (reused + BRANCH_PRIOR_WEIGHT * prior) / (seen + BRANCH_PRIOR_WEIGHT)

    def p_return(self, family: str, depth: int) -> float:
        """Chance that a boundary at this depth, 5 minutes unused, comes back within the hour.

        Counted over the arrivals of followed boundaries whose 5-minute window closed unused and
        whose hour has resolved (per family, backed by the global share). With nothing resolved it
        is 0: a return is never assumed, only learned.
        """
        depth = min(max(depth, 0), BRANCHES - 1)

        def counts(o: Outcomes) -> tuple[int, int]:
            return o.resolved_1h - o.reused_5m, o.reused_1h - o.reused_5m

        ended, back = counts(self.chains[depth])
        glob = back / (ended + 1)
        fam = self.families.get(family)
        if fam is None:
            return glob
        ended, back = counts(fam.chains[depth])
        return (back + BRANCH_PRIOR_WEIGHT * glob) / (ended + BRANCH_PRIOR_WEIGHT)

    def _spans(self, rec: PrefixRecord) -> tuple[float, ...]:
        """The positive gaps between the prefix's consecutive arrivals, in seconds, sorted. They change
        only with an arrival, so they are kept on the record, stamped with its count of arrivals."""
        stamp = rec.appended  # read before the arrivals: an arrival meanwhile makes the stamp stale
        kept = rec.spans
        if kept is not None and kept[0] == stamp:
            return kept[1]
        times = [*rec.arrivals]
        spans = tuple(sorted(g for a, b in itertools.pairwise(times) if (g := (b - a).total_seconds()) > 0))
        rec.spans = (stamp, spans)
        return spans

    def p_prefix(self, prefix_hash: str, ttl: Ttl, now: datetime, prior: float) -> tuple[float, int]:
        """Chance the next use of this prefix comes within ``ttl``, from its gaps; and the gap count.

        The gaps are those between its arrivals, and from the last arrival to ``now`` when that is later.
        """
        rec = self.prefixes.get(prefix_hash)
        if rec is None or not rec.arrivals:
            return prior, 0
        spans = self._spans(rec)
        limit = TTL_SECONDS[ttl]
        hits, gaps = bisect.bisect_left(spans, limit), len(spans)
        last = rec.arrivals[-1]
        if last < now:
            gaps += 1
            hits += (now - last).total_seconds() < limit
        if not gaps:
            return prior, 0
        return (hits + PRIOR_WEIGHT * prior) / (gaps + PRIOR_WEIGHT), gaps
