"""The request planner: at most 4 breakpoints, each placed where its expected reads pay for its write.

How a plan is made (docs/planner.md has the long form):

1. Read the request as cache positions (:class:`cachewise.prompt.Prompt`).
2. Collect candidates: end of tools, end of system, ends of large documents and tool
   results, the conversation tail, prefixes believed cached now, the deepest prefix seen
   before, and bridges so no gap between candidates near the tail exceeds 20 positions
   (the server's lookback, api-sheet §2.1). The caller's markers and the top-level
   automatic marker are kept as fixed breakpoints and use their slots (api-sheet §1.4).
3. Value each candidate per token and per TTL (USD): a prefix believed cached now reads,
   ``(input - read) × (1 + E)``; otherwise ``-(write_ttl - input) + E × (input - read)``,
   where ``E`` is the expected number of reads within the TTL from observed reuse
   (:mod:`cachewise.planner.reuse`). A segment's value is its tokens times that rate.
4. Size only what matters: offline byte bounds decide most candidates; the longest
   candidate whose bounds straddle the model's minimum is counted with count_tokens, its
   count bounds the shorter ones, and so on. A candidate that cannot be counted is not
   marked.
5. Choose by dynamic programming the chain of at most 4 breakpoints (fixed ones
   included) with the highest total value, TTLs in a valid order (every 1h before every 5m).
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import time
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..errors import PricingError, TokenCountError
from ..pricing import PriceBook
from ..prompt import Position, Prompt, Ttl
from ..tokens import AsyncTokenCounter, LearnedMinimum, TokenBounds, TokenCounter, prefix_bounds
from ..usage import Usage
from .plan import Breakpoint, Plan, Rejected, Source
from .reuse import ReuseStats, expected_reads

__all__ = ["DEFAULT_COUNT_BUDGET", "MAX_BREAKPOINTS", "CachePlanner", "effective_minimum"]

log = logging.getLogger("cachewise.planner")

MAX_BREAKPOINTS = 4
DEFAULT_COUNT_BUDGET = 2.0  # seconds of count_tokens per planned request
LOOKBACK = 20
LARGE_BLOCK_BYTES = 2048
MAX_BRIDGES = 6
STANDARD_MINIMUMS = (512, 1024, 2048, 4096)
_TIE = 1e-9  # prefers a breakpoint at a shareable point when it costs nothing
_TTLS: tuple[Ttl, Ttl] = ("1h", "5m")
_STRUCTURAL = {"end of tools", "end of system", "large document", "large tool result"}


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


@dataclass(slots=True)
class _Candidate:
    position: Position
    kinds: list[str] = field(default_factory=list)
    fixed: Source | None = None
    fixed_ttl: Ttl | None = None
    slots: int = 0
    bounds: TokenBounds = field(default_factory=lambda: TokenBounds(0, 0, 0))
    values: dict[Ttl, float] = field(default_factory=dict)
    why: dict[Ttl, str] = field(default_factory=dict)
    live: Ttl | None = None
    status: str = "open"  # open | ok | below | ambiguous | uncountable
    note: str = ""

    @property
    def index(self) -> int:
        return self.position.index

    @property
    def shareable(self) -> bool:
        return (
            bool(_STRUCTURAL.intersection(self.kinds))
            or self.live is not None
            or "lookback bridge" in self.kinds
        )

    def best(self) -> float:
        return max(self.values.values(), default=-math.inf)


@dataclass(slots=True)
class _Ask:
    prompt: Prompt
    index: int


def _copy(value: Any) -> Any:
    """A deep copy of a JSON-like body: every mapping a new dict, every list or tuple a new list.

    Iterative, so no nesting depth makes it fail; leaves (str, numbers, other objects) are shared.
    """
    if not isinstance(value, Mapping | list | tuple):
        return value
    root: dict[Any, Any] | list[Any] = {} if isinstance(value, Mapping) else []
    stack: list[tuple[Any, dict[Any, Any] | list[Any]]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, Mapping) else enumerate(source)
        for key, item in items:
            copied: Any = item
            if isinstance(item, Mapping | list | tuple):
                copied = {} if isinstance(item, Mapping) else []
                stack.append((item, copied))
            if isinstance(target, dict):
                target[key] = copied
            else:
                target.append(copied)
    return root


def _under_test() -> bool:
    return "PYTEST_CURRENT_TEST" in os.environ


def _money(value: float) -> Decimal:
    return Decimal(repr(value)).quantize(Decimal("0.000001"))


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

    # -- public API --------------------------------------------------------------------------

    def plan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan:
        """Plan ``request`` (never mutated). Never raises: on an internal failure it goes unplanned."""
        try:
            deadline = self._deadline()
            steps = self._steps(request, record)
            ask = next(steps)
            while True:
                counter = self.counter
                if not isinstance(counter, TokenCounter):
                    result: int | TokenCountError = TokenCountError("no synchronous counter")
                else:
                    try:
                        result = counter.count(ask.prompt, ask.index, deadline=deadline)
                    except TokenCountError as exc:
                        result = exc
                ask = steps.send(result)
        except StopIteration as stop:
            plan: Plan = stop.value
            return plan
        except Exception as exc:
            if _under_test():
                raise
            log.warning("cachewise planner failed; the request is sent unplanned", exc_info=True)
            return self._unplanned(request, self._now(), f"planner error ({type(exc).__name__}: {exc})")

    async def aplan(self, request: Mapping[str, Any], *, record: bool = True) -> Plan:
        """The async twin of :meth:`plan` (counts with an :class:`AsyncTokenCounter`)."""
        try:
            deadline = self._deadline()
            steps = self._steps(request, record)
            ask = next(steps)
            while True:
                counter = self.counter
                try:
                    if isinstance(counter, AsyncTokenCounter):
                        result: int | TokenCountError = await counter.count(
                            ask.prompt, ask.index, deadline=deadline
                        )
                    elif isinstance(counter, TokenCounter):
                        result = counter.count(ask.prompt, ask.index, deadline=deadline)
                    else:
                        result = TokenCountError("no counter")
                except TokenCountError as exc:
                    result = exc
                ask = steps.send(result)
        except StopIteration as stop:
            plan: Plan = stop.value
            return plan
        except Exception as exc:
            if _under_test():
                raise
            log.warning("cachewise planner failed; the request is sent unplanned", exc_info=True)
            return self._unplanned(request, self._now(), f"planner error ({type(exc).__name__}: {exc})")

    def observe(self, plan: Plan, usage: Usage | Mapping[str, Any] | Any, at: datetime | None = None) -> None:
        """Learn from the response to a planned request: what was cached, and the model's minimum.

        * nothing written or read although there were breakpoints → every breakpoint was
          below the minimum: the minimum is above the largest counted prefix;
        * a write or read of ``C`` tokens → the minimum is at most ``C``; entries at the
          breakpoints are live from the request start (``plan.planned_at``) for their TTL.
        """
        try:
            self._observe(plan, usage)
        except Exception:
            if _under_test():
                raise
            log.warning("cachewise planner could not learn from a response", exc_info=True)

    def seed(self, rows: Iterable[Mapping[str, Any]] | Any) -> int:
        """Replay past traffic into the reuse window (e.g. a ledger frame).

        Each row needs ``at`` (aware datetime) and ``family`` (prefix hash), and may carry
        ``prefix_hashes`` (list, prefix order) and ``tail_hash``. A pandas DataFrame is
        read with ``to_dict("records")``. Returns the number of rows used.
        """
        records = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
        used = 0
        for row in sorted(records, key=lambda r: r["at"]):
            hashes = list(row.get("prefix_hashes") or [])
            tail = row.get("tail_hash") or (hashes[-1] if hashes else None)
            self.stats.record(hashes, str(row["family"]), tail, row["at"])
            used += 1
        return used

    def minimum(self, model: str, at: datetime | None = None) -> tuple[int, str, str | None]:
        """The minimum this planner uses for ``model``: (tokens, where it comes from, table uncertainty)."""
        table = self.book.min_cache_tokens(model, at or self._now())
        tokens, source = effective_minimum(table.tokens, self._learned(model))
        return tokens, source, table.uncertain

    # -- internals ---------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        """When counting for this request must stop (``time.monotonic()``), or ``None``: no budget."""
        return None if self.count_budget is None else time.monotonic() + self.count_budget

    def _now(self) -> datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the planner clock must return an aware UTC datetime")
        return now.astimezone(UTC)

    def _learned(self, model: str) -> LearnedMinimum:
        counter = self.counter
        return counter.learned_minimum(model) if counter is not None else LearnedMinimum()

    def _unplanned(self, request: Mapping[str, Any], now: datetime, why: str) -> Plan:
        return Plan(
            request=_copy(request), model=str(request.get("model") or ""), planned_at=now, notes=(why,)
        )

    def _steps(
        self, request: Mapping[str, Any], record: bool
    ) -> Generator[_Ask, int | TokenCountError, Plan]:
        now = self._now()
        # The planner's own deep copy: nothing it reads or writes is shared with the caller's dict.
        request = _copy(request) if isinstance(request, Mapping) else request
        prompt = Prompt(request, collapse_runs=self.collapse_runs)
        model = prompt.model
        if not model:
            return self._unplanned(request, now, "the request has no model; nothing planned")
        try:
            rates = self.book.rates(model, now)
            table_min = self.book.min_cache_tokens(model, now)
        except PricingError as exc:
            return self._unplanned(request, now, f"{exc}; no breakpoints placed")
        learned = self._learned(model)
        minimum, min_source = effective_minimum(table_min.tokens, learned)
        if table_min.uncertain:
            min_source += f"; table marks it uncertain: {table_min.uncertain}"
        per = Decimal(1_000_000)
        price = {
            "input": float(rates.input / per),
            "5m": float(rates.cache_write_5m / per),
            "1h": float(rates.cache_write_1h / per),
            "read": float(rates.cache_read / per),
        }
        notes: list[str] = []
        cands = self._candidates(prompt, now, notes)
        calls_before = self.counter.calls if self.counter is not None else 0
        known = self.counter.known(prompt) if self.counter is not None else {}
        order = sorted(known)
        for cand in cands.values():
            self._value(cand, prompt, now, price)
        failure: str | None = None
        while True:
            ambiguous: list[_Candidate] = []
            for cand in cands.values():
                if cand.fixed is not None or cand.status in ("below", "uncountable"):
                    continue
                cand.bounds = prefix_bounds(prompt, cand.index, known, order)
                if cand.bounds.low >= minimum:
                    cand.status = "ok"
                elif cand.bounds.high < minimum:
                    cand.status = "below"
                else:
                    cand.status = "ambiguous"
                    if cand.best() > 0:
                        ambiguous.append(cand)
            if not ambiguous:
                break
            target = max(ambiguous, key=lambda c: c.index)
            if self.counter is None or failure is not None:
                why = failure or "offline"
                for cand in ambiguous:
                    cand.status = "uncountable"
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
        chosen = self._choose(cands, minimum, notes)
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
                    top.status = "below"
                    chosen = [c for c in chosen if c is not top]
        calls = (self.counter.calls if self.counter is not None else 0) - calls_before
        plan = self._build(request, prompt, now, cands, chosen, minimum, min_source, notes, calls, rates)
        if record:
            tail = prompt.last_markable()
            self.stats.record(
                (p.prefix_hash for p in prompt.positions if p.markable),
                prompt.family,
                prompt.prefix_hash(tail) if tail is not None else None,
                now,
            )
        return plan

    # candidates ----------------------------------------------------------------------------

    def _candidates(self, prompt: Prompt, now: datetime, notes: list[str]) -> dict[int, _Candidate]:
        positions = prompt.positions
        cands: dict[int, _Candidate] = {}

        def add(index: int | None, kind: str) -> None:
            if index is None or index < 0:
                return
            pos = positions[index]
            while pos.inside_run:  # a run is one position: its marker goes on the run's last block
                pos = positions[pos.index + 1]
            while not pos.plannable and pos.index > 0 and positions[pos.index - 1].level == pos.level:
                pos = positions[pos.index - 1]
            if not pos.plannable:
                return
            cand = cands.setdefault(pos.index, _Candidate(pos))
            if kind not in cand.kinds:
                cand.kinds.append(kind)

        for marker in prompt.markers:
            cand = cands.setdefault(marker.position, _Candidate(positions[marker.position]))
            cand.fixed = "caller"
            cand.fixed_ttl = "1h" if marker.ttl == "1h" or cand.fixed_ttl == "1h" else "5m"
            cand.slots += 1
        last = prompt.last_markable()
        if prompt.auto is not None and last is not None:
            cand = cands.setdefault(last, _Candidate(positions[last]))
            if cand.fixed is None:
                cand.fixed, cand.fixed_ttl = "automatic", prompt.auto
            cand.slots += 1
        used = sum(c.slots for c in cands.values())
        if used > MAX_BREAKPOINTS:
            notes.append(f"the request already has {used} breakpoints (limit 4); nothing added")
        add(prompt.level_ends.get("tools"), "end of tools")
        add(prompt.level_ends.get("system"), "end of system")
        for pos in positions:
            if pos.nbytes >= LARGE_BLOCK_BYTES and pos.kind in ("document", "tool_result"):
                add(pos.index, f"large {pos.kind.replace('_', ' ')}")
        if last is not None and prompt.auto is None:
            add(last, "conversation tail")
        anchor = max(prompt.level_ends.get("system", -1), prompt.level_ends.get("tools", -1))
        live_found = 0
        deepest_seen: int | None = None
        for pos in reversed(positions):
            if not pos.plannable:
                continue
            if live_found < 3 and self.stats.live(pos.prefix_hash, now) is not None:
                add(pos.index, "cached now")
                live_found += 1
                anchor = max(anchor, pos.index)
            rec = self.stats.prefix(pos.prefix_hash)
            if deepest_seen is None and rec is not None and rec.arrivals:
                deepest_seen = pos.index
            if deepest_seen is not None and (live_found >= 3 or pos.index < anchor):
                break
        if deepest_seen is not None:
            add(deepest_seen, "seen before")
            anchor = max(anchor, deepest_seen)
        if last is not None:
            # Bridges: no gap of more than LOOKBACK positions between candidates near the tail.
            point, bridges = last, 0
            while point - anchor >= LOOKBACK and bridges < MAX_BRIDGES:
                target = point - (LOOKBACK - 1)
                while target > anchor and not positions[target].plannable:
                    target -= 1
                if target <= anchor:
                    break
                add(target, "lookback bridge")
                point, bridges = target, bridges + 1
        return cands

    # values ----------------------------------------------------------------------------------

    def _value(self, cand: _Candidate, prompt: Prompt, now: datetime, price: dict[str, float]) -> None:
        saving = price["input"] - price["read"]
        h = cand.position.prefix_hash
        cand.live = self.stats.live(h, now)
        structural = bool(_STRUCTURAL.intersection(cand.kinds))
        for ttl in _TTLS:
            tail_p = self.stats.p_tail(prompt.family, ttl)
            prior = max(tail_p, self.stats.p_shared(ttl)) if structural else tail_p
            f, gaps = self.stats.p_prefix(h, ttl, now, prior)
            reads = expected_reads(f)
            basis = (
                f"{gaps} gap(s) seen, {f:.0%} within {ttl}"
                if gaps
                else f"no history; prior {f:.0%} within {ttl} ({'shared' if structural else 'next turn'})"
            )
            if cand.live is not None:
                if ttl != cand.live:
                    continue
                cand.values[ttl] = saving * (1.0 + reads)
                cand.why[ttl] = f"cached now ({ttl} entry): reads; {basis}"
            else:
                premium = price[ttl] - price["input"]
                cand.values[ttl] = -premium + reads * saving
                cand.why[ttl] = f"{basis}: expected {reads:.1f} read(s) vs write premium"
        if cand.fixed is not None and cand.fixed_ttl not in cand.values:
            cand.values[cand.fixed_ttl or "5m"] = 0.0
            cand.why[cand.fixed_ttl or "5m"] = "kept"

    # choice ----------------------------------------------------------------------------------

    def _choose(self, cands: dict[int, _Candidate], minimum: int, notes: list[str]) -> list[_Candidate]:
        fixed_slots = sum(c.slots for c in cands.values())
        if fixed_slots > MAX_BREAKPOINTS or not self._ttl_order_ok(cands):
            if fixed_slots <= MAX_BREAKPOINTS:
                notes.append("the caller's markers break the TTL order (1h after 5m); nothing added")
            return [c for c in cands.values() if c.fixed is not None]
        pool = sorted(
            (c for c in cands.values() if c.fixed is not None or (c.status == "ok" and c.values)),
            key=lambda c: c.index,
        )
        tokens: list[int] = []
        running = 0
        for c in pool:
            running = max(running, c.bounds.estimate)
            tokens.append(running)
        budget = self.max_breakpoints
        m = len(pool)
        neg = -math.inf
        # best[i][(n, ttl)] = (value, previous (j, n', ttl'))
        best: list[dict[tuple[int, Ttl], tuple[float, tuple[int, int, Ttl] | None]]] = [{} for _ in range(m)]
        fixed_idx = [i for i, c in enumerate(pool) if c.fixed is not None]

        def options(c: _Candidate) -> list[Ttl]:
            if c.fixed is not None:
                return [c.fixed_ttl or "5m"]
            return [t for t in _TTLS if t in c.values]

        def gain(i: int, ttl: Ttl, start: int) -> float:
            c = pool[i]
            value = (tokens[i] - start) * c.values.get(ttl, 0.0)
            if c.fixed is None and c.shareable and c.values.get(ttl, -1.0) >= 0:
                value += _TIE
            return value

        for i, c in enumerate(pool):
            need = max(c.slots, 1)
            first_ok = not any(f < i for f in fixed_idx)
            for ttl in options(c):
                if first_ok and need <= budget:
                    best[i][(need, ttl)] = (gain(i, ttl, 0), None)
                for j in range(i - 1, -1, -1):
                    for (n, tj), (val, _) in best[j].items():
                        if tj == "5m" and ttl == "1h":
                            continue
                        total_n = n + need
                        if total_n > budget:
                            continue
                        cand_val = val + gain(i, ttl, tokens[j])
                        if cand_val > best[i].get((total_n, ttl), (neg, None))[0]:
                            best[i][(total_n, ttl)] = (cand_val, (j, n, tj))
                    if pool[j].fixed is not None:
                        break  # a fixed breakpoint cannot be skipped
        end_value, end_state = (0.0, None) if not fixed_idx else (neg, None)
        last_fixed = fixed_idx[-1] if fixed_idx else -1
        for i in range(max(last_fixed, 0), m):
            for (n, ttl), (val, _) in best[i].items():
                if val > end_value:
                    end_value, end_state = val, (i, n, ttl)
        chosen: list[_Candidate] = []
        state = end_state
        while state is not None:
            i, n, ttl = state
            c = pool[i]
            if c.fixed is None:
                c.fixed_ttl = ttl
            chosen.append(c)
            state = best[i][(n, ttl)][1]
        chosen.reverse()
        if fixed_idx and not chosen:
            notes.append("the caller's markers leave no valid placement; nothing added")
            return [c for c in cands.values() if c.fixed is not None]
        return chosen

    @staticmethod
    def _ttl_order_ok(cands: dict[int, _Candidate]) -> bool:
        seen_5m = False
        for index in sorted(cands):
            c = cands[index]
            if c.fixed is None:
                continue
            if c.fixed_ttl == "1h" and seen_5m:
                return False
            seen_5m = seen_5m or c.fixed_ttl == "5m"
        return True

    # output ----------------------------------------------------------------------------------

    def _build(
        self,
        request: Mapping[str, Any],
        prompt: Prompt,
        now: datetime,
        cands: dict[int, _Candidate],
        chosen: list[_Candidate],
        minimum: int,
        min_source: str,
        notes: list[str],
        calls: int,
        rates: Any,
    ) -> Plan:
        body: dict[str, Any] = _copy(dict(request))
        breakpoints: list[Breakpoint] = []
        previous = 0
        chosen_ids = {id(c) for c in chosen}
        used = sum(max(c.slots, 1) for c in chosen)
        for c in chosen:
            ttl: Ttl = c.fixed_ttl or "5m"
            tokens = max(c.bounds.estimate, previous)
            value = (tokens - previous) * c.values.get(ttl, 0.0)
            previous = tokens
            path = c.position.path
            if c.fixed is None:
                path = _set_marker(body, c.position, ttl)
                reason = f"{', '.join(c.kinds)}; {c.why.get(ttl, '')}"
            else:
                reason = "kept as given" if c.fixed == "caller" else "top-level cache_control (kept)"
            breakpoints.append(
                Breakpoint(
                    position=c.index,
                    path=path,
                    tokens=c.bounds.estimate,
                    counted=c.bounds.exact,
                    ttl=ttl,
                    reason=reason,
                    prefix_hash=c.position.prefix_hash,
                    source=c.fixed or "planner",
                    low=c.bounds.low,
                    high=c.bounds.high,
                    expected_value=_money(value) if c.fixed is None else Decimal(0),
                )
            )
        rejected: list[Rejected] = []
        for index in sorted(cands):
            c = cands[index]
            if id(c) in chosen_ids or c.fixed is not None:
                continue
            kind = ", ".join(c.kinds)
            size: int | None = c.bounds.estimate if c.status != "open" else None
            if c.status == "below":
                reason = f"below the minimum of {minimum:,} tokens (at most {c.bounds.high:,})"
            elif c.status in ("uncountable", "ambiguous") and c.note:
                reason = c.note
            elif c.status == "ambiguous":
                reason = "no expected reuse (" + "; ".join(c.why.values()) + ")"
            elif c.best() <= 0:
                reason = "no expected reuse: " + "; ".join(f"{t}: {w}" for t, w in c.why.items())
            elif used >= self.max_breakpoints:
                reason = "over the limit of 4 (the chosen breakpoints are worth more)"
            else:
                reason = "adds no value beside the chosen breakpoints (same reuse, or TTL order)"
            rejected.append(Rejected(c.index, c.position.path, kind, reason, size, c.bounds.exact))
        tail = prompt.last_markable()
        return Plan(
            request=body,
            model=prompt.model,
            planned_at=now,
            breakpoints=tuple(breakpoints),
            rejected=tuple(rejected),
            notes=tuple(notes),
            minimum=minimum,
            minimum_source=min_source,
            count_calls=calls,
            family=prompt.family,
            tail_hash=prompt.prefix_hash(tail) if tail is not None else None,
            positions=len(prompt),
            prices={
                "input": rates.input,
                "write 5m": rates.cache_write_5m,
                "write 1h": rates.cache_write_1h,
                "read": rates.cache_read,
            },
        )

    # learning --------------------------------------------------------------------------------

    def _observe(self, plan: Plan, usage: Usage | Mapping[str, Any] | Any) -> None:
        used = usage if isinstance(usage, Usage) else Usage.from_api(usage)
        marks = plan.breakpoints
        if not marks or not plan.model:
            return
        read = used.cache_read_input_tokens
        cached = read + used.cache_creation_input_tokens
        counter = self.counter
        if cached == 0:
            sizes = [b.tokens if b.counted else b.low for b in marks]
            top = max(sizes, default=0)
            if counter is not None and top > 0 and any(b.counted for b in marks):
                counter.learn_minimum(plan.model, above=max(b.tokens for b in marks if b.counted))
            for b in marks:
                self.stats.forget(b.prefix_hash)
            return
        if counter is not None:
            counter.learn_minimum(plan.model, at_most=cached)
        slack = max(32, cached // 50)
        floor = plan.minimum or 0
        for b in marks:
            size = b.tokens
            if size < floor or size > cached + slack:
                continue
            self.stats.touch(b.prefix_hash, b.ttl, plan.planned_at, size, read=size <= read + slack)


def _set_marker(body: dict[str, Any], pos: Position, ttl: Ttl) -> str:
    """Put a marker on the block of ``pos``; a string system or content becomes one text block.

    Returns the marked block's path in the planned body (``system.0``, ``messages.3.content.0``).
    """
    marker: dict[str, Any] = {"type": "ephemeral", "ttl": ttl}
    parts = pos.path.split(".")
    if pos.level == "tools":
        body["tools"][int(parts[1])]["cache_control"] = marker
        return pos.path
    if pos.level == "system":
        if isinstance(body.get("system"), str):
            body["system"] = [{"type": "text", "text": body["system"], "cache_control": marker}]
            return "system.0"
        body["system"][int(parts[1])]["cache_control"] = marker
        return pos.path
    message = body["messages"][int(parts[1])]
    if isinstance(message.get("content"), str):
        message["content"] = [{"type": "text", "text": message["content"], "cache_control": marker}]
        return f"{pos.path}.0"
    message["content"][int(parts[3])]["cache_control"] = marker
    return pos.path
