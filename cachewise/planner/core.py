"""The request planner: at most 4 breakpoints, each placed where its expected reads pay for its write.

How a plan is made (docs/planner.md has the long form), and where each step lives:

1. Read the request as cache positions (:class:`cachewise.prompt.Prompt`); the request is
   never changed (the plan's body is a copy made on write, :mod:`.body`).
2. Collect candidates (:mod:`.candidates`): ends of tools and system, large documents and
   tool results, the conversation tail, live and seen prefixes, lookback bridges; the
   caller's markers and the automatic one are fixed and use their slots.
3. Value each candidate per token and per TTL from observed reuse (:mod:`.valuation`,
   :mod:`.reuse`).
4. Size only what matters (here, in :meth:`CachePlanner._steps`): offline byte bounds
   decide most candidates; the longest candidate whose bounds straddle the model's minimum
   is counted with count_tokens, its count bounds the shorter ones, and so on. A candidate
   that cannot be counted (in time) is not marked.
5. Choose by dynamic programming the chain of at most 4 breakpoints (:mod:`.choice`).
6. Write the plan: the marked body, each breakpoint and rejection with its reason
   (:mod:`.output`).

``_steps`` is a generator that yields each count it needs and does no I/O; :meth:`plan`
and :meth:`aplan` are thin sync and async drivers around it.
"""

from __future__ import annotations

import bisect
import logging
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any, cast

from ..errors import PricingError, TokenCountError
from ..failopen import swallow
from ..pricing import AppliedRates, MinCache, PriceBook
from ..prompt import Prompt
from ..tokens import AsyncTokenCounter, LearnedMinimum, TokenCounter, prefix_bounds
from ..usage import Usage
from .body import copy_body
from .candidates import LOOKBACK, MAX_BREAKPOINTS, Candidate, Status, collect
from .choice import choose
from .output import Minimum, Outcome, build
from .plan import Plan
from .protocol import Planner
from .reuse import ReuseStats
from .valuation import Prices, effective_minimum, family_tokens, nest, pause_value, value

__all__ = ["DEFAULT_COUNT_BUDGET", "LOOKBACK", "MAX_BREAKPOINTS", "CachePlanner", "effective_minimum"]

log = logging.getLogger("cachewise.planner")

DEFAULT_COUNT_BUDGET = 2.0  # seconds of count_tokens per planned request


@dataclass(slots=True)
class _Ask:
    prompt: Prompt
    index: int
    apart: bool = False  # a count for the ledger, memoised apart from what the planner plans with


class CachePlanner:
    """Places Claude prompt-cache breakpoints where they pay, and says why.

    ``counter`` sizes prefixes (a :class:`TokenCounter` for :meth:`plan`, an
    :class:`AsyncTokenCounter` for :meth:`aplan`; ``None`` plans from offline bounds
    only). ``clock`` returns "now" (aware UTC); statistics use the same clock, so
    replayed traffic is planned exactly as live. Call :meth:`observe` after each
    response so the planner learns what was cached.

    ``count_budget`` is the time in seconds that counting may take per planned request
    (default 2; ``None``: no limit). Counts never retry; a count not answered within the
    budget means no breakpoint that needs it, and once the budget is spent the request is
    planned with what is already known.

    ``count_system_end`` (default on): after choosing, also count the end of the system prompt
    (else of the tools) when planning did not, once per prefix (memoised apart from the counts
    the planner plans with, so no choice changes); the plan's :attr:`~Plan.counts` carry it to
    the ledger, so what-if replay of a static marker there is exact (docs/why.md). It is not
    counted when its bounds say it is below the minimum.
    """

    def __init__(
        self,
        counter: TokenCounter | AsyncTokenCounter | None = None,
        *,
        book: PriceBook | None = None,
        clock: Callable[[], datetime] | None = None,
        stats: ReuseStats | None = None,
        collapse_runs: bool = True,
        max_breakpoints: int = MAX_BREAKPOINTS,
        count_budget: float | None = DEFAULT_COUNT_BUDGET,
        count_system_end: bool = True,
    ) -> None:
        if count_budget is not None and not (isinstance(count_budget, int | float) and count_budget > 0):
            raise ValueError(f"count_budget: a positive number of seconds or None, got {count_budget!r}")
        self.count_budget = None if count_budget is None else float(count_budget)
        self.counter = counter
        self.book = book if book is not None else PriceBook.default()
        self.clock = clock if clock is not None else (lambda: datetime.now(UTC))
        self.stats = stats if stats is not None else ReuseStats()
        self.collapse_runs = collapse_runs
        self.max_breakpoints = min(max_breakpoints, MAX_BREAKPOINTS)
        self.count_system_end = count_system_end
        self._prices: dict[tuple[str, date, int], tuple[PriceBook, AppliedRates, MinCache, Prices]] = {}

    # -- public API --------------------------------------------------------------------------

    def plan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan:
        """Plan ``request`` (never mutated). Never raises: on an internal failure it goes unplanned."""
        try:
            deadline, steps = self._deadline(), self._steps(request, record)
            ask = next(steps)
            while True:
                ask = steps.send(self._ask_sync(ask, deadline))
        except StopIteration as stop:
            return cast(Plan, stop.value)
        except Exception as exc:
            return self._failed(request, exc)

    async def aplan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan:
        """The async twin of :meth:`plan` (counts with an :class:`AsyncTokenCounter`)."""
        try:
            deadline, steps = self._deadline(), self._steps(request, record)
            ask = next(steps)
            while True:
                ask = steps.send(await self._ask_async(ask, deadline))
        except StopIteration as stop:
            return cast(Plan, stop.value)
        except Exception as exc:
            return self._failed(request, exc)

    def observe(self, plan: Plan, usage: Usage | Mapping[str, Any] | Any, at: datetime | None = None) -> None:
        """Learn from the response to a planned request: what was cached, and the model's minimum.

        * nothing written or read although there were breakpoints → every breakpoint was
          below the minimum: the minimum is above the largest counted prefix;
        * a write or read of ``C`` tokens → the minimum is at most ``C``; entries at the
          breakpoints are live from the request start (``plan.planned_at``) for their TTL.
        """
        try:
            self._observe(plan, usage)
        except Exception as exc:
            swallow("planner observe", exc)  # the one fail-open policy (re-raised under pytest)

    def seed(self, rows: Iterable[Mapping[str, Any]] | Any) -> int:
        """Replay past traffic into the reuse window (e.g. a ledger frame).

        Each row needs ``at`` (aware datetime) and ``family`` (prefix hash), and may carry
        ``prefix_hashes`` (list, prefix order), ``tail_hash`` and ``family_tokens`` (the size of
        the family's prefix, which the shared prior of new families is kept by). A pandas
        DataFrame is read with ``to_dict("records")``. Returns the number of rows used.
        """
        records = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
        used = 0
        for row in sorted(records, key=lambda r: r["at"]):
            hashes = list(row.get("prefix_hashes") or [])
            tail = row.get("tail_hash") or (hashes[-1] if hashes else None)
            size = row.get("family_tokens")
            known = isinstance(size, int | float) and size == size  # a frame's missing value is NaN
            self.stats.record(
                hashes, str(row["family"]), tail, row["at"], family_tokens=int(size) if known else None
            )
            used += 1
        return used

    def minimum(self, model: str, at: datetime | None = None) -> tuple[int, str, str | None]:
        """The minimum this planner uses for ``model``: (tokens, where it comes from, table uncertainty)."""
        table = self.book.min_cache_tokens(model, at or self._now())
        tokens, source = effective_minimum(table.tokens, self._learned(model))
        return tokens, source, table.uncertain

    # -- internals ---------------------------------------------------------------------------

    def _ask_sync(self, ask: _Ask, deadline: float | None) -> int | TokenCountError:
        """One count for :meth:`plan`: the count, or the failure the planning steps receive."""
        counter = self.counter
        try:
            if isinstance(counter, TokenCounter):
                return counter.count(ask.prompt, ask.index, deadline=deadline, apart=ask.apart)
            return TokenCountError("no synchronous counter")
        except TokenCountError as exc:
            return exc

    async def _ask_async(self, ask: _Ask, deadline: float | None) -> int | TokenCountError:
        """One count for :meth:`aplan`, with an async counter (or a sync one)."""
        counter = self.counter
        try:
            if isinstance(counter, AsyncTokenCounter):
                return await counter.count(ask.prompt, ask.index, deadline=deadline, apart=ask.apart)
            return self._ask_sync(ask, deadline) if counter is not None else TokenCountError("no counter")
        except TokenCountError as exc:
            return exc

    def _failed(self, request: Mapping[str, Any], exc: Exception) -> Plan:
        """The one fail-open policy (:mod:`cachewise.failopen`): log, and send the request unplanned."""
        swallow("planner", exc)  # re-raised under pytest
        return self._unplanned(request, self._now(), f"planner error ({type(exc).__name__}: {exc})")

    def _read(self, request: Mapping[str, Any]) -> Prompt:
        """The request as cache positions (ledger replay reads them from recorded hashes instead)."""
        return Prompt(request, collapse_runs=self.collapse_runs)

    def _candidates(self, prompt: Prompt, now: datetime, notes: list[str]) -> dict[int, Candidate]:
        """This request's candidates (:func:`.candidates.collect`, with this planner's statistics)."""
        return collect(prompt, self.stats, now, notes)

    def _deadline(self) -> float | None:
        """When counting for this request must stop (``time.monotonic()``), or ``None``: no budget."""
        return None if self.count_budget is None else time.monotonic() + self.count_budget

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the planner clock must return an aware UTC datetime")
        return now.astimezone(UTC)

    def _priced(self, model: str, now: datetime) -> tuple[AppliedRates, MinCache, Prices]:
        """The book's rates and minimum for ``model`` on the UTC day of ``now`` (both go by the day),
        looked up once per model and day and book."""
        key = (model, now.date(), id(self.book))
        found = self._prices.get(key)
        if found is None or found[0] is not self.book:
            rates = self.book.rates(model, now)
            found = (self.book, rates, self.book.min_cache_tokens(model, now), Prices.per_token(rates))
            if len(self._prices) >= 64:
                self._prices.clear()
            self._prices[key] = found
        return found[1], found[2], found[3]

    def _learned(self, model: str) -> LearnedMinimum:
        counter = self.counter
        return counter.learned_minimum(model) if counter is not None else LearnedMinimum()

    def _unplanned(self, request: Mapping[str, Any], now: datetime, why: str) -> Plan:
        return Plan(
            request=copy_body(request), model=str(request.get("model") or ""), planned_at=now, notes=(why,)
        )

    def _steps(
        self, request: Mapping[str, Any], record: bool
    ) -> Generator[_Ask, int | TokenCountError, Plan]:
        """The planning core: yields each count it needs, receives the count or its failure; no I/O."""
        now = self._now()
        # The caller's dict is read as it is and never changed: ``build`` copies what it marks
        # (the plan's body shares the unmarked blocks with it).
        prompt = self._read(request)
        model = prompt.model
        if not model:
            return self._unplanned(request, now, "the request has no model; nothing planned")
        try:
            rates, table_min, prices = self._priced(model, now)
        except PricingError as exc:
            return self._unplanned(request, now, f"{exc}; no breakpoints placed")
        learned = self._learned(model)
        minimum, min_source = effective_minimum(table_min.tokens, learned)
        if table_min.uncertain:
            min_source += f"; table marks it uncertain: {table_min.uncertain}"
        notes: list[str] = []
        cands = self._candidates(prompt, now, notes)
        calls_before = self.counter.calls if self.counter is not None else 0
        known = self.counter.known(prompt) if self.counter is not None else {}
        memoised = frozenset(known)
        order = sorted(known)
        family_size = family_tokens(prompt)
        for cand in cands.values():
            value(cand, prompt, self.stats, now, prices, family_size)
        nest(cands)
        # Size only what matters: the longest worthwhile candidate whose bounds straddle the
        # minimum is counted; its count tightens the bounds of the others; and so on.
        failure: str | None = None
        while True:
            ambiguous: list[Candidate] = []
            for cand in cands.values():
                if cand.fixed is not None or cand.status in (Status.BELOW, Status.UNCOUNTABLE):
                    continue
                cand.bounds = prefix_bounds(prompt, cand.index, known, order)
                if cand.bounds.low >= minimum:
                    cand.status = Status.OK
                elif cand.bounds.high < minimum:
                    cand.status = Status.BELOW
                else:
                    cand.status = Status.AMBIGUOUS
                    if cand.best() > 0:
                        ambiguous.append(cand)
            if not ambiguous:
                break
            target = max(ambiguous, key=lambda c: c.index)
            if self.counter is None or failure is not None:
                why = failure or "offline"
                for cand in ambiguous:
                    cand.status = Status.UNCOUNTABLE
                    cand.note = (
                        f"bounds {cand.bounds.low:,}–{cand.bounds.high:,} straddle the minimum and it "
                        f"could not be counted ({why}); not justified"
                    )
                break
            result = yield _Ask(prompt, target.index)
            if isinstance(result, TokenCountError):
                failure = str(result)
                continue
            known[target.index] = result
            bisect.insort(order, target.index)
        for cand in cands.values():
            if cand.fixed is not None:
                cand.bounds = prefix_bounds(prompt, cand.index, known, order)
        chosen = choose(
            cands,
            self.max_breakpoints,
            notes,
            pause=pause_value(prompt, self.stats, now, prices),
        )
        # Uncertain minimum: count the longest placed breakpoint so observe() can learn from it,
        # unless a write at or below its size already proved it cacheable.
        top = max((c for c in chosen if c.fixed is None), key=lambda c: c.index, default=None)
        if (
            top is not None
            and table_min.uncertain
            and not (learned.at_most is not None and top.bounds.low >= learned.at_most)
            and not top.bounds.exact
            and self.counter is not None
            and failure is None
        ):
            result = yield _Ask(prompt, top.index)
            if isinstance(result, TokenCountError):
                notes.append(f"could not count the top breakpoint to learn the minimum ({result})")
            else:
                known[top.index] = result
                bisect.insort(order, top.index)
                top.bounds = prefix_bounds(prompt, top.index, known, order)
                if result < minimum:
                    top.status = Status.BELOW
                    chosen = [c for c in chosen if c is not top]
        # Where a static strategy marks (the end of the system prompt, else of the tools): counted
        # for the ledger, once per prefix, unless too short to cache, so what-if replay of that
        # strategy bills what it would live (docs/why.md). The count is memoised apart: it goes to
        # this plan's counts, not into what later plans know, so no choice depends on it.
        edge = prompt.level_ends.get("system", prompt.level_ends.get("tools"))
        if (
            self.count_system_end
            and edge is not None
            and edge not in known
            and self.counter is not None
            and failure is None
            and prefix_bounds(prompt, edge, known, order).high >= minimum
        ):
            result = yield _Ask(prompt, edge, apart=True)
            if not isinstance(result, TokenCountError):
                known[edge] = result
                bisect.insort(order, edge)
        calls = (self.counter.calls if self.counter is not None else 0) - calls_before
        plan = build(
            Outcome(
                request=request,
                prompt=prompt,
                planned_at=now,
                candidates=cands,
                chosen=chosen,
                minimum=Minimum(minimum, min_source),
                rates=rates,
                notes=notes,
                count_calls=calls,
                limit=self.max_breakpoints,
                counts=known,
                memoised=memoised,
            )
        )
        if record:
            tail = prompt.last_markable()
            self.stats.record(
                prompt.markable_hashes(),
                prompt.family,
                prompt.prefix_hash(tail) if tail is not None else None,
                now,
                family_tokens=family_size,
            )
        return plan

    # learning --------------------------------------------------------------------------------

    def _observe(self, plan: Plan, usage: Usage | Mapping[str, Any] | Any) -> None:
        used = usage if isinstance(usage, Usage) else Usage.from_api(usage)
        # (size, prefix hash, breakpoint): a plan's breakpoints always carry both.
        marks = [
            (b.tokens, b.prefix_hash, b)
            for b in plan.breakpoints
            if b.tokens is not None and b.prefix_hash is not None
        ]
        if not marks or not plan.model:
            return
        read = used.cache_read_input_tokens
        cached = read + used.cache_creation_input_tokens
        counter = self.counter
        if cached == 0:
            sizes = [size if b.counted else b.low for size, _, b in marks]
            top = max(sizes, default=0)
            if counter is not None and top > 0 and any(b.counted for _, _, b in marks):
                counter.learn_minimum(plan.model, above=max(size for size, _, b in marks if b.counted))
            for _, prefix_hash, _ in marks:
                self.stats.forget(prefix_hash)
            return
        if counter is not None:
            counter.learn_minimum(plan.model, at_most=cached)
        slack = max(32, cached // 50)
        floor = plan.minimum or 0
        for size, prefix_hash, b in marks:
            if size < floor or size > cached + slack:
                continue
            self.stats.touch(prefix_hash, b.ttl, plan.planned_at, size, read=size <= read + slack)


if TYPE_CHECKING:  # mypy checks that CachePlanner is a Planner (the tracker's seam)

    def _conforms(planner: CachePlanner) -> Planner:
        return planner
