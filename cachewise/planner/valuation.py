"""What a breakpoint is worth: per-token value of each candidate per TTL, and the minimum to plan with.

Per token and per TTL (USD), with ``E`` the expected number of reads within the TTL from
observed reuse (:mod:`cachewise.planner.reuse`):

* a prefix believed cached now reads: ``(input - read) × (1 + E)``;
* otherwise: ``E × (input - read) - (write_ttl - input)``, expected reads against the
  write premium paid now.

A segment between two breakpoints is worth its tokens times the later one's rate
(docs/planner.md, "Cost model of a decision").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from ..pricing import AppliedRates
from ..prompt import Prompt, Ttl
from ..tokens import LearnedMinimum
from .candidates import LARGE_BLOCK_BYTES, Candidate
from .reuse import BRANCHES, ReuseStats, expected_reads

__all__ = [
    "STANDARD_MINIMUMS",
    "TTLS",
    "Prices",
    "effective_minimum",
    "family_tokens",
    "nest",
    "pause_value",
    "value",
]

STANDARD_MINIMUMS = (512, 1024, 2048, 4096)
TTLS: tuple[Ttl, Ttl] = ("1h", "5m")
_PER_TOKEN = Decimal(1_000_000)
_BOUNDARY = frozenset({"large document", "large tool result"})
_FAMILY = frozenset({"end of tools", "end of system"})


@dataclass(frozen=True, slots=True)
class Prices:
    """USD per token (floats: the value model ranks, it does not bill)."""

    input: float
    write_5m: float
    write_1h: float
    read: float

    @classmethod
    def per_token(cls, rates: AppliedRates) -> Prices:
        return cls(
            input=float(rates.input / _PER_TOKEN),
            write_5m=float(rates.cache_write_5m / _PER_TOKEN),
            write_1h=float(rates.cache_write_1h / _PER_TOKEN),
            read=float(rates.cache_read / _PER_TOKEN),
        )

    def write(self, ttl: Ttl) -> float:
        return self.write_1h if ttl == "1h" else self.write_5m


def effective_minimum(table: int, learned: LearnedMinimum) -> tuple[int, str]:
    """The minimum to plan with: the table's, corrected by what responses taught.

    A learned upper bound (a write at N) below the table snaps down to the largest standard
    minimum (512/1024/2048/4096) at or under N that is still above the learned lower bound;
    a learned lower bound (no write at N) at or above the table snaps up to the next one.
    """
    value, source = table, "price table"
    if learned.at_most is not None and learned.at_most < value:
        fits = [s for s in STANDARD_MINIMUMS if learned.above < s <= learned.at_most]
        value, source = (max(fits) if fits else learned.at_most), f"learned: a write at {learned.at_most:,}"
    if learned.above >= value:
        ups = [s for s in STANDARD_MINIMUMS if s > learned.above]
        value = min(ups) if ups else learned.above + 1
        if learned.at_most is not None:
            value = min(value, learned.at_most)
        source = f"learned: nothing cached at {learned.above:,}"
    return value, source


def family_tokens(prompt: Prompt) -> int:
    """The size of the family's prefix (the end of system, else of tools; 0 with neither), from its
    text as the offline estimate reads it (a quarter of its text bytes): the same for the arrivals
    the reuse window records and for the new family valued against them."""
    edge = prompt.level_ends.get("system", prompt.level_ends.get("tools"))
    return 0 if edge is None else prompt.cum_text(edge) // 4


def _depth(cand: Candidate, prompt: Prompt) -> int | None:
    """For a document or tool-result boundary (not the end of tools or system): how deep it is, the
    number of such boundaries before it (0, 1, or 2 for two or more); ``None`` for other candidates."""
    if not _BOUNDARY.intersection(cand.kinds) or _FAMILY.intersection(cand.kinds):
        return None
    depth = 0
    for pos in prompt.positions[: cand.index]:
        if pos.nbytes >= LARGE_BLOCK_BYTES and pos.kind in ("document", "tool_result"):
            depth += 1
            if depth >= BRANCHES - 1:
                break
    return depth


def value(
    cand: Candidate,
    prompt: Prompt,
    stats: ReuseStats,
    now: datetime,
    prices: Prices,
    family_size: int | None = None,
) -> None:
    """Fill ``cand.values`` / ``cand.why`` (per TTL) and ``cand.live`` from the reuse statistics.

    Each candidate is valued on the observed reuse of its own exact prefix (its arrivals and
    the gaps between them). With no history, the prior depends on what it is: the end of
    tools or system takes the share of families seen again, read for families of a similar
    size (``family_size``, :func:`family_tokens`; worked out here when not passed), the
    conversation tail the share of tails continued, and a document or tool-result boundary the
    share of boundaries never
    seen before (in this family, at the same depth) that were seen again: so a new
    combination of documents that is rarely repeated gets no write. A new boundary's 1h write
    must be paid for by its first read alone, and so must that of a boundary after another one
    (the second document of a pair, the rest of a combination) seen with one gap so far: one
    recurrence of a combination says little about the next, while the first document after the
    system prompt seen again after a pause is worth the hour's chain at once. A new document
    boundary's hour also counts the returns of its family's documents at that depth
    (:meth:`ReuseStats.p_return`): a 5m entry lapses before such a return and is written again,
    the hour's entry is read, which saves a read and the second write's premium.

    Combinations of documents are held to their own evidence: a document boundary after another
    one that was never seen before gets no 1h value at all (its hour waits for its own gaps), and
    the rest of a combination (after two or more document boundaries) seen before leans on the
    recurrence rate of such boundaries, not on how often the family is seen again.
    """
    stats.settle(now)
    saving = prices.input - prices.read
    h = cand.position.prefix_hash
    cand.live = stats.live(h, now)
    structural = cand.structural
    depth = _depth(cand, prompt)
    seen = stats.prefix(h) is not None
    branch = depth if not seen else None  # a boundary never seen before
    document = "large document" in cand.kinds
    # A combination of documents: a document boundary after two or more others (seen before), and
    # a document after at least one other never seen before (below, no hour at first sight).
    rest = document and depth is not None and depth >= BRANCHES - 1
    combination = document and branch is not None and branch > 0
    if branch is not None:
        stats.expect(h, prompt.family, branch)
    back = 0.0
    if depth is not None:
        stats.follow(h, prompt.family, depth)
        if branch is not None and document:
            back = stats.p_return(prompt.family, depth)
    reads_5m = 0.0
    if structural and family_size is None:
        family_size = family_tokens(prompt)  # a planner works it out once per request and passes it
    for ttl in ("5m", "1h"):
        tail_p = stats.p_tail(prompt.family, ttl, now)
        if branch is not None:
            prior, source = stats.p_branch(prompt.family, branch, ttl, now), "new boundary"
        elif rest and depth is not None:
            # The rest of a combination seen before leans on how often such boundaries recur, not on
            # how often the family is seen again (which is about its system prompt).
            prior, source = stats.p_branch(prompt.family, depth, ttl, now), "combination"
        elif structural:
            prior, source = max(tail_p, stats.p_shared(ttl, now, family_size)), "shared"
        else:
            prior, source = tail_p, "next turn"
        f, gaps = stats.p_prefix(h, ttl, now, prior)
        # An hour's write on a boundary never seen before (or on a deeper boundary seen with one gap)
        # is paid for by its first read alone: whether reuse goes on for hours is learned from the
        # prefix's own gaps once it is seen again. Every read within 5 minutes is within the hour
        # too, so it expects at least the 5m chain.
        if ttl == "5m":
            reads = reads_5m = expected_reads(f)
        else:
            single = branch is not None or (depth is not None and depth > 0 and gaps < 2)
            reads = max(f, reads_5m + back) if single else expected_reads(f)
        if gaps:
            basis = f"{gaps} gap(s) seen, {f:.0%} within {ttl}"
        elif source == "shared":
            basis = (
                f"no history; prior {f:.0%} within {ttl} (shared; families of about {family_size:,} tokens)"
            )
        else:
            basis = f"no history; prior {f:.0%} within {ttl} ({source})"
        if cand.live is not None:
            if ttl != cand.live:
                continue
            cand.values[ttl] = saving * (1.0 + reads)
            cand.why[ttl] = f"cached now ({ttl} entry): reads; {basis}"
        elif ttl == "1h" and combination:
            # A combination never seen before is not written for an hour: its hour is learned from its
            # own gaps once it recurs (the new-boundary rates are learned from a few early outcomes,
            # and a lucky first burst would have whole bursts of unseen combinations written at 2x).
            continue
        else:
            premium = prices.write(ttl) - prices.input
            cand.values[ttl] = -premium + reads * saving
            cand.why[ttl] = f"{basis}: expected {reads:.1f} read(s) vs write premium"
            if ttl == "1h" and back > 0:
                # A 5m entry would lapse before the return and be written again then; the hour's
                # entry is read instead, so it also saves the premium of that second write.
                cand.values[ttl] += back * premium
                cand.why[ttl] += f"; {back:.0%} of such boundaries came back within the hour after 5 minutes"
    if cand.fixed is not None and cand.fixed_ttl not in cand.values:
        cand.values[cand.fixed_ttl or "5m"] = 0.0
        cand.why[cand.fixed_ttl or "5m"] = "kept"


def nest(cands: Mapping[int, Candidate]) -> None:
    """Raise each new write's value to at least that of the deepest new write that passes through it.

    Prefixes nest: every later request that carries a deeper prefix carries each shallower one
    too, so an entry written at a shallower boundary is read by everything an entry at the deeper
    one would be, and more. Per TTL, a structural candidate (the end of tools or system, a document
    or tool-result boundary) with no live entry, and not the caller's or the automatic marker, is
    therefore worth at least the best value of the structural new writes deeper than it. A live
    candidate is valued on its read and is left as it is; the conversation tail's prior (the next
    turn) says nothing of the boundaries before it, so it neither gives nor takes.
    """
    deeper: dict[Ttl, tuple[float, int]] = {}
    for index in sorted(cands, reverse=True):
        cand = cands[index]
        if cand.live is not None or cand.fixed is not None or not cand.structural:
            continue
        for ttl, own in list(cand.values.items()):
            found = deeper.get(ttl)
            if found is not None and found[0] > own:
                cand.values[ttl] = found[0]
                cand.why[ttl] += f"; at least the deeper new write at [{found[1]}]"
            elif found is None or own > found[0]:
                deeper[ttl] = (own, index)


def pause_value(prompt: Prompt, stats: ReuseStats, now: datetime, prices: Prices) -> float:
    """Per token of prefix that a 1h entry at the end of the chain newly protects: the chance the
    conversation's next turn comes after a pause (beyond 5 minutes, within the hour) times what a
    read then saves.

    A 1h marker at the deepest breakpoint costs the hour's premium on its own segment only, but the
    entry it writes covers the whole prefix: after a pause, every token between the deepest live 1h
    entry and the tail is read instead of written again (:meth:`ReuseStats.p_pause` is the chance).
    """
    return stats.p_pause(prompt.family, now) * (prices.input - prices.read)
