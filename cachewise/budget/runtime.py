"""A runtime guard: refuse a request *before* it is sent when it could cross a budget.

``RuntimeBudget.check(estimate)`` raises :class:`~cachewise.errors.BudgetExceeded`
when what was spent in the window plus the request's upper-bound estimate
(:func:`estimate_cost`) would exceed the limit, and
:class:`~cachewise.errors.UnpricedSpend` when spend in the window cannot be priced
(fail closed). It is a record sink (:mod:`cachewise.sinks`): the wrapper hands it each
call made (``add``, the same as ``record``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from ..errors import BudgetExceeded, PricingError, UnpricedSpend
from ..pricing import PriceBook
from .base import ZERO, window_start

if TYPE_CHECKING:
    from ..ledger.record import CallRecord

__all__ = [
    "TOOL_OVERHEAD_TOKENS",
    "RuntimeBudget",
    "estimate_cost",
    "prompt_token_bound",
]

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
) -> Decimal:
    """An upper bound of what ``request_body`` can cost on ``model`` at ``at`` (USD).

    Prompt tokens (given, or :func:`prompt_token_bound`) × the dearest input rate the
    request can be billed (the 1h or 5m write rate when it has ``cache_control``
    markers, else the input rate, at the long-context tier the bound selects) +
    ``max_tokens`` × the output rate + ``max_uses`` of a web search tool. Raises a
    :class:`~cachewise.errors.PricingError` for a model it cannot price (fail closed).
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
    cached, hour = _has_cache_control(request_body)
    per_token = rates.input
    if cached:
        per_token = max(per_token, rates.cache_write_5m, rates.cache_write_1h if hour else ZERO)
    max_tokens = int(request_body.get("max_tokens") or 0)
    cost = Decimal(tokens) * per_token / MILLION + Decimal(max_tokens) * rates.output / MILLION
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
    ) -> Decimal:
        """Estimate ``request_body`` (:func:`estimate_cost`) and :meth:`check` it; return the estimate.

        Fails closed: a request that cannot be estimated (unknown model, no price then, a document
        whose size cannot be bounded) raises :class:`~cachewise.errors.UnpricedSpend`, never $0.
        """
        model = str(request_body.get("model"))
        try:
            estimate = estimate_cost(
                request_body,
                model,
                book or PriceBook.default(),
                at or self._clock(),
                prompt_tokens=prompt_tokens,
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
