"""A runtime guard: refuse a request *before* it is sent when it could cross a budget.

``RuntimeBudget.check(estimate)`` raises :class:`~cachewise.errors.BudgetExceeded`
when what was spent in the window plus the request's estimate (:func:`estimate_cost`)
would exceed the limit, and
:class:`~cachewise.errors.UnpricedSpend` when spend in the window cannot be priced
(fail closed). It is a record sink (:mod:`cachewise.sinks`): the wrapper hands it each
call made (``add``, the same as ``record``).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..api_rules import COUNT_TOKENS_REFUSED_TOOL_PREFIXES
from ..errors import BudgetExceeded, PricingError, TokenCountError, UnpricedSpend
from ..pricing import PriceBook
from ..prompt import Prompt
from ..tokens import NEIGHBOUR_SLACK, TokenCounter
from .base import ZERO, window_start

if TYPE_CHECKING:
    from ..ledger.record import CallRecord
    from ..planner import Plan

__all__ = [
    "DEFAULT_COUNT_BUDGET",
    "TOOL_OVERHEAD_TOKENS",
    "PromptSize",
    "RuntimeBudget",
    "estimate_cost",
    "prompt_size",
    "prompt_token_bound",
]

#: Seconds a count_tokens call for the budget may take (the planner's default count budget).
DEFAULT_COUNT_BUDGET = 2.0

MILLION = Decimal(1_000_000)
#: Tokens the API adds for tool use (its tool system prompt is a few hundred tokens; docs/api-notes.md §4.1).
TOOL_OVERHEAD_TOKENS = 1_000
#: Tokens allowed for an image given by URL or file id (bytes do not bound it). Images are
#: resized to about 1.15 megapixels, ~1,600 tokens; 2,000 leaves a margin.
IMAGE_TOKENS = 2_000

RuntimeWindow = Literal["process", "day", "month"]

_PROMPT_KEYS = ("system", "messages", "tools", "tool_choice", "thinking", "output_config")


def _walk(node: Any) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, Mapping):
            found.append(item)
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)
    return found


def prompt_token_bound(request_body: Mapping[str, Any]) -> int:
    """An upper bound of a request's prompt tokens from its size.

    A token covers at least one byte of UTF-8 text, so the JSON size of the prompt parts
    bounds the text tokens; tools add :data:`TOOL_OVERHEAD_TOKENS`, an image by URL or
    file :data:`IMAGE_TOKENS`. A document by URL or file id cannot be bounded: ``ValueError``
    (pass ``prompt_tokens`` from ``count_tokens`` instead).
    """
    parts = {key: request_body[key] for key in _PROMPT_KEYS if key in request_body}
    size = len(json.dumps(parts, ensure_ascii=False, default=str).encode("utf-8"))
    extra = TOOL_OVERHEAD_TOKENS if request_body.get("tools") else 0
    for block in _walk(parts):
        source = block.get("source")
        if not isinstance(source, Mapping) or source.get("type") not in ("url", "file"):
            continue
        if block.get("type") == "image":
            extra += IMAGE_TOKENS
        else:
            raise ValueError(
                f"cannot bound the tokens of a {block.get('type')} given by {source.get('type')}; "
                "pass prompt_tokens (from count_tokens) to estimate_cost"
            )
    return size + extra


@dataclass(frozen=True, slots=True)
class PromptSize:
    """A request's prompt tokens as the budget knows them, and what it knows about cache writes.

    ``tokens``: exact when ``counted`` (count_tokens, by the planner or the budget), else an upper
    bound. ``writes``: ``(prefix tokens, ttl)`` of each breakpoint in prompt order (the plan's,
    counted or bounded from above), or ``None`` when no plan says where the breakpoints are.
    ``source`` names where ``tokens`` came from (``given``, ``plan``, ``count_tokens``, ``bytes``).
    """

    tokens: int
    counted: bool
    source: str
    writes: tuple[tuple[int, str], ...] | None = None


def _server_tool_extra(body: Mapping[str, Any]) -> int:
    """count_tokens leaves out server tools (docs/api-notes.md §4.1): their definitions are added back."""
    tools = body.get("tools") or ()
    kinds = [str(t.get("type") or "") for t in tools if isinstance(t, Mapping)]
    return TOOL_OVERHEAD_TOKENS if any(k.startswith(COUNT_TOKENS_REFUSED_TOOL_PREFIXES) for k in kinds) else 0


def _plan_writes(plan: Plan, tokens: int) -> tuple[tuple[int, str], ...]:
    out: list[tuple[int, str]] = []
    for mark in plan.breakpoints:
        size = mark.tokens if mark.counted and mark.tokens is not None else max(mark.high, mark.tokens or 0)
        out.append((min(size, tokens) if size else tokens, str(mark.ttl)))
    return tuple(out)


def prompt_size(
    request_body: Mapping[str, Any],
    *,
    plan: Plan | None = None,
    counter: Any | None = None,
    count_budget: float | None = DEFAULT_COUNT_BUDGET,
) -> PromptSize:
    """The prompt tokens of ``request_body``, from the best source at hand.

    1. the plan's count of the whole prompt (a breakpoint on its last position that the planner counted);
    2. else one ``count_tokens`` call through ``counter`` (a :class:`~cachewise.tokens.TokenCounter`;
       memoised, so a prompt is counted once) within ``count_budget`` seconds;
    3. else an upper bound: the plan's largest counted prefix plus the bytes after it, or
       :func:`prompt_token_bound` (the JSON size), whichever is lower.

    Raises ``ValueError`` when none applies and the size cannot be bounded (a document by URL).
    """
    known: dict[int, int] = {}
    if plan is not None:
        known = {b.position: b.tokens for b in plan.breakpoints if b.counted and b.tokens is not None}
    extra = _server_tool_extra(request_body)
    found: PromptSize | None = None
    prompt: Prompt | None = None
    last: int | None = None
    if plan is not None and plan.positions and plan.positions - 1 in known:
        found = PromptSize(known[plan.positions - 1] + extra, True, "plan")  # no second read of the body
    elif known or isinstance(counter, TokenCounter):
        prompt = Prompt(request_body)
        last = len(prompt) - 1 if len(prompt) else None
    if found is None and last is not None and last in known:
        found = PromptSize(known[last] + extra, True, "plan")
    elif found is None and prompt is not None and last is not None and isinstance(counter, TokenCounter):
        deadline = None if count_budget is None else time.monotonic() + count_budget
        try:
            found = PromptSize(counter.count(prompt, last, deadline=deadline) + extra, True, "count_tokens")
        except TokenCountError:
            found = None  # not counted in time: bounded below, never a failed call
    if found is None:
        bound: int | None
        try:
            bound = prompt_token_bound(request_body)
        except ValueError:
            bound = None
        if prompt is not None and last is not None and known:
            top = max(known)
            urls = sum(1 for b in _walk(request_body.get("messages")) if _by_reference(b))
            near = known[top] + prompt.cum_bytes(last) - prompt.cum_bytes(top) + NEIGHBOUR_SLACK
            near += urls * IMAGE_TOKENS + extra
            bound = near if bound is None else min(bound, near)
        if bound is None:
            prompt_token_bound(request_body)  # raises the ValueError that says why
            raise AssertionError("unreachable")
        found = PromptSize(bound, False, "bytes" if not known else "plan")
    if plan is None or (not plan.breakpoints and _has_cache_control(request_body)[0]):
        return found  # no plan, or one that does not list the body's markers: priced as dearest
    return PromptSize(found.tokens, found.counted, found.source, _plan_writes(plan, found.tokens))


def _by_reference(block: Mapping[str, Any]) -> bool:
    source = block.get("source")
    return isinstance(source, Mapping) and source.get("type") in ("url", "file")


def _has_cache_control(body: Mapping[str, Any]) -> tuple[bool, bool]:
    marks = [b["cache_control"] for b in _walk(body) if isinstance(b.get("cache_control"), Mapping)]
    return bool(marks), any(mark.get("ttl") == "1h" for mark in marks)


def estimate_cost(
    request_body: Mapping[str, Any],
    model: str,
    book: PriceBook,
    at: datetime,
    *,
    prompt_tokens: int | None = None,
    batch: bool = False,
    writes: Sequence[tuple[int, str]] | None = None,
) -> Decimal:
    """What ``request_body`` can cost at most on ``model`` at ``at`` (USD), given its prompt size.

    Prompt tokens (given, e.g. counted, or :func:`prompt_token_bound`) priced as the request can be
    billed: with ``writes`` (the plan's breakpoints, ``(prefix tokens, ttl)`` in prompt order) each
    segment up to a breakpoint at the write rate of its TTL and the rest at the input rate; without
    them, the whole prompt at the dearest rate its ``cache_control`` markers allow (the 1h or 5m write
    rate, else the input rate). A read is never assumed (it is known only after the call). Rates at
    the long-context tier the prompt selects; + ``max_tokens`` × the output rate + ``max_uses`` of a
    web search tool. Raises a :class:`~cachewise.errors.PricingError` for a model it cannot price
    (fail closed).
    """
    tokens = prompt_token_bound(request_body) if prompt_tokens is None else prompt_tokens
    rates = book.rates(
        model,
        at,
        prompt_tokens=tokens,
        batch=batch,
        fast=request_body.get("speed") == "fast",
        us_residency=request_body.get("inference_geo") == "us",
    )
    max_tokens = int(request_body.get("max_tokens") or 0)
    if writes is not None:
        prompt_cost, done = ZERO, 0
        for size, ttl in writes:
            rate = rates.cache_write_1h if ttl == "1h" else rates.cache_write_5m
            upto = min(max(size, done), tokens)
            prompt_cost += Decimal(upto - done) * max(rate, rates.input)
            done = upto
        prompt_cost += Decimal(tokens - done) * rates.input
    else:
        cached, hour = _has_cache_control(request_body)
        per_token = rates.input
        if cached:
            per_token = max(per_token, rates.cache_write_5m, rates.cache_write_1h if hour else ZERO)
        prompt_cost = Decimal(tokens) * per_token
    cost = prompt_cost / MILLION + Decimal(max_tokens) * rates.output / MILLION
    for tool in request_body.get("tools") or ():
        if isinstance(tool, Mapping) and str(tool.get("type", "")).startswith("web_search"):
            cost += Decimal(int(tool.get("max_uses") or 0)) * rates.web_search_per_1k / Decimal(1000)
    return cost


class RuntimeBudget:
    """Refuses requests that could cross ``limit`` USD in ``window``.

    ``window``: ``"process"`` (what this guard recorded since it was made), ``"day"`` or
    ``"month"`` (UTC, including what ``ledger`` holds for the window, re-read every
    ``refresh_seconds`` so other processes' spend counts). ``model``/``tags`` narrow the
    ledger rows counted. Thread-safe.
    """

    def __init__(
        self,
        limit: Decimal,
        window: RuntimeWindow = "process",
        ledger: Any | None = None,
        *,
        name: str = "runtime",
        model: str | None = None,
        tags: Mapping[str, str] | None = None,
        refresh_seconds: float = 60.0,
        clock: Callable[[], datetime] | None = None,
        counter: TokenCounter | None = None,
        count_budget: float | None = DEFAULT_COUNT_BUDGET,
    ) -> None:
        if not isinstance(limit, Decimal) or limit < 0:
            raise ValueError(f"limit must be a non-negative Decimal, got {limit!r}")
        if window not in ("process", "day", "month"):
            raise ValueError(f"window must be process, day or month, got {window!r}")
        self.limit = limit
        self.window = window
        self.ledger = ledger
        self.name = name
        self.model = model
        # The scope's stored names (alias <-> dated id); an unknown model raises UnknownModelError.
        self._models = sorted(PriceBook.default().resolve_model(model)) if model is not None else None
        self.tags = dict(tags or {})
        self.refresh_seconds = refresh_seconds
        self.counter = counter
        self.count_budget = count_budget
        #: The last request's prompt size (what the last estimate was made from), for diagnostics.
        self.last_size: PromptSize | None = None
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._local: dict[str, Decimal | None] = {}
        self._ledger_spent = ZERO
        self._ledger_unpriced = 0
        self._ledger_ids: set[str] = set()
        self._read_at: datetime | None = None
        self._window_start: datetime | None = None

    def _refresh(self, now: datetime) -> None:
        start = window_start(self.window, now, None)
        due = (
            self._read_at is None
            or start != self._window_start
            or (now - self._read_at).total_seconds() >= self.refresh_seconds
        )
        if self.ledger is None or self.window == "process" or not due:
            return
        flush = getattr(self.ledger, "flush", None)
        if callable(flush):
            flush()
        from ..reports.columns import unpriced_mask  # pandas: only once a ledger is read

        frame = self.ledger.to_frame(since=start, until=now, model=self._models, tags=self.tags or None)
        bad = unpriced_mask(frame)
        self._ledger_unpriced = int(bad.sum())
        self._ledger_spent = sum(frame.loc[~bad, "cost_total"].tolist(), ZERO)
        self._ledger_ids = set(frame["request_id"].astype(str))
        if start != self._window_start:
            self._local.clear()
        self._local = {k: v for k, v in self._local.items() if k not in self._ledger_ids}
        self._read_at, self._window_start = now, start

    def spent(self) -> Decimal:
        """Priced spend in the window so far (ledger rows plus calls recorded here since)."""
        with self._lock:
            self._refresh(self._clock())
            return self._ledger_spent + sum((v for v in self._local.values() if v is not None), ZERO)

    def check(self, estimated_cost: Decimal) -> None:
        """Raise before a request estimated at ``estimated_cost`` would cross the budget."""
        with self._lock:
            self._refresh(self._clock())
            unpriced = self._ledger_unpriced + sum(1 for v in self._local.values() if v is None)
            if unpriced:
                raise UnpricedSpend(self.name, self.limit, unpriced, "unpriced calls in the window")
            spent = self._ledger_spent + sum((v for v in self._local.values() if v is not None), ZERO)
            if spent + estimated_cost > self.limit:
                raise BudgetExceeded(self.name, self.limit, spent, estimated_cost)

    def check_request(
        self,
        request_body: Mapping[str, Any],
        *,
        book: PriceBook | None = None,
        at: datetime | None = None,
        prompt_tokens: int | None = None,
        plan: Plan | None = None,
        counter: Any | None = None,
    ) -> Decimal:
        """Estimate ``request_body`` (:func:`estimate_cost`) and :meth:`check` it; return the estimate.

        The prompt is sized by :func:`prompt_size`: ``prompt_tokens`` if given, else the ``plan``'s
        count, else a count_tokens call through this budget's counter (or ``counter``, the planner's,
        when it is a sync :class:`~cachewise.tokens.TokenCounter`), else a bound; the plan's
        breakpoints price the cache writes. Fails closed: a request that cannot be estimated
        (unknown model, no price then, a document whose size cannot be bounded) raises
        :class:`~cachewise.errors.UnpricedSpend`, never $0.
        """
        model = str(request_body.get("model"))
        try:
            if prompt_tokens is not None:
                size = PromptSize(prompt_tokens, True, "given")
            else:
                size = prompt_size(
                    request_body,
                    plan=plan,
                    counter=self.counter or counter,
                    count_budget=self.count_budget,
                )
            self.last_size = size
            estimate = estimate_cost(
                request_body,
                model,
                book or PriceBook.default(),
                at or self._clock(),
                prompt_tokens=size.tokens,
                writes=size.writes,
            )
        except (PricingError, ValueError) as exc:
            raise UnpricedSpend(self.name, self.limit, 1, f"this request cannot be estimated: {exc}") from exc
        self.check(estimate)
        return estimate

    def add(self, record: CallRecord) -> None:
        """As a record sink: :meth:`record`."""
        self.record(record)

    def record(self, record: CallRecord) -> None:
        """Count a call that was made (its cost, or unpriced when it has none)."""
        if self._models is not None and record.model not in self._models:
            return
        if any(record.tags.get(k) != v for k, v in self.tags.items()):
            return
        with self._lock:
            if record.request_id in self._ledger_ids:
                return
            self._local[record.request_id] = record.cost.cost_total if record.cost is not None else None
