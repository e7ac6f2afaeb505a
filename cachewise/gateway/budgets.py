"""Budgets at the gateway: refuse a Messages call or a batch before it is sent when it could cross a budget.

:class:`GatewayBudgets` enforces the budgets of a budget config (docs/budgets.md, "At the
gateway") that have a ``limit`` and a ``day`` or ``month`` window, each scoped by model, tags and
API key (``api_key``: the calls tagged with the key's id, see :mod:`.caller`).

* **Leases** (:mod:`cachewise.ledger.leases`): each process reads a budget's spend from the ledger
  at most every ``refresh_seconds`` and, in the same locked transaction, takes a *lease*: what it
  already owes (its calls in flight and recorded since) plus an equal part of the headroom the
  ledger's spend and the other processes' leases leave. Between reads it admits calls from its
  lease alone (no ledger query), so N processes together never promise more than the limit: the
  budget is not overshot (the estimates are upper bounds). When a call does not fit its lease, the
  process takes a new lease at once and checks again, so a refusal is always against fresh figures.
  A share lapses after ``share_seconds`` (an idle process's part returns to the others); what a
  process owes lapses after ``reserve_seconds`` (it died with calls in flight).
* **Admission** (:meth:`admit`, the proxy's hook): the request's upper-bound cost
  (:func:`cachewise.budget.estimate_cost`; for ``POST /v1/messages/batches`` the sum over its
  requests at the batch rates) must fit, else a 429 ``rate_limit_error`` naming the budget (with
  ``x-should-retry: false``: retrying in the window does not help). ``count_tokens`` is free: it is
  not admitted here (the gateway still refuses a bad ``x-cachewise-tags`` header on every path).
* **Fail closed**: a ledger that cannot be read is a 503 naming the budget and the cause; unpriced
  calls in the window, or a request that cannot be estimated, a 429 naming the cause.
* **In flight**: an admitted request holds its estimate until its record arrives (the same
  request's context: a :mod:`contextvars` variable set by :meth:`admit`). A batch holds its estimate
  until the first of its results is recorded here (:meth:`bind_batch` names it), or its creation
  fails, or ``batch_seconds`` pass.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..budget.base import ZERO, window_start
from ..budget.config import BudgetSpec
from ..budget.runtime import IMAGE_TOKENS, TOOL_OVERHEAD_TOKENS, estimate_cost, prompt_token_bound
from ..errors import PricingError
from ..ledger.query import Filter
from ..pricing import PriceBook
from .caller import CALLER_SCOPE_KEY, Caller, TagHeaderError, caller_of

if TYPE_CHECKING:
    from ..ledger.leases import Lease
    from ..ledger.query import Totals
    from ..ledger.record import CallRecord

__all__ = ["GatewayBudgets", "Refusal", "SpendSource", "enforced", "error_response"]

Clock = Callable[[], datetime]


class SpendSource(Protocol):
    """Where spend is read from: a :class:`~cachewise.ledger.Ledger`."""

    def totals(
        self,
        since: datetime | None = None,
        until: datetime | None = None,
        model: str | Sequence[str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Totals: ...

    def flush(self, timeout: float | None = None) -> int: ...

    def lease(
        self,
        *,
        budget: str,
        holder: str,
        limit: Decimal,
        window: Filter,
        held: Decimal,
        now: datetime,
        held_seconds: float,
        share_seconds: float,
        shares: int = 1,
        need: Decimal = ZERO,
    ) -> Lease: ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a request was refused: the budget, a reason (``limit``, ``unpriced``, ``ledger``), the error."""

    budget: str
    reason: str
    status: int
    error_type: str
    message: str


def error_response(status: int, error_type: str, message: str, headers: Mapping[str, str] = {}) -> Response:
    """An API-shaped error (docs/api-notes.md §5) with a local request id."""
    request_id = f"local_{uuid.uuid4().hex}"
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return JSONResponse(body, status, headers={"request-id": request_id, **headers})


def enforced(budgets: Sequence[BudgetSpec]) -> list[BudgetSpec]:
    """The budgets a gateway enforces: a ``limit`` over a ``day`` or ``month`` window."""
    return [b for b in budgets if b.limit is not None and b.window in ("day", "month")]


@dataclass(eq=False)
class _Reservation:
    """The estimates of one admitted request, held in its budgets until its record arrives."""

    amounts: dict[_Budget, Decimal]
    expires: float
    batch_id: str | None = None
    released: bool = False


#: The reservation of the request being handled (set by ``admit``, read by ``add`` in the same request).
_RESERVATION: ContextVar[_Reservation | None] = ContextVar("cachewise_gateway_reservation", default=None)


@dataclass(eq=False)
class _Budget:
    spec: BudgetSpec
    limit: Decimal
    models: frozenset[str] | None
    refresh: threading.Lock = field(default_factory=threading.Lock)
    read_at: float | None = None
    start: datetime | None = None
    spent: Decimal = ZERO  # the ledger's sum at the last read
    others: Decimal = ZERO  # what the other processes held at the last read
    unpriced: int = 0
    # request_id -> (sequence number, started_at, cost or None when unpriced)
    pending: dict[str, tuple[int, datetime, Decimal | None]] = field(default_factory=dict)
    pending_cost: Decimal = ZERO
    pending_unpriced: int = 0
    reserved: set[_Reservation] = field(default_factory=set)
    reserved_cost: Decimal = ZERO
    granted: Decimal | None = None  # held + share at the last read: what this process may owe
    share_until: float = 0.0

    def covers(self, model: str, tags: Mapping[str, str]) -> bool:
        if self.models is not None and model not in self.models:
            return False
        return all(tags.get(k) == v for k, v in self.spec.tags.items())

    @property
    def owed(self) -> Decimal:
        """What this process owes since its last read: recorded calls and estimates in flight."""
        return self.pending_cost + self.reserved_cost


def _size_bound(body: Mapping[str, Any], size: int) -> int:
    """Prompt tokens at most, from the body's JSON size: every text token is at least one byte of
    the body as sent (escapes only lengthen it); plus what tools and images add
    (:func:`cachewise.budget.prompt_token_bound` has the rules; a document by URL or file id raises)."""
    extra = TOOL_OVERHEAD_TOKENS if body.get("tools") else 0
    stack: list[Any] = [body.get("system"), body.get("messages")]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, Mapping):
            source = item.get("source")
            if isinstance(source, Mapping) and source.get("type") in ("url", "file"):
                if item.get("type") != "image":
                    return prompt_token_bound(body)  # raises, naming the block
                extra += IMAGE_TOKENS
            content = item.get("content")
            if isinstance(content, list):
                stack.append(content)
    return size + extra


def _window_end(window: str, start: datetime) -> datetime:
    if window == "day":
        return start + timedelta(days=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


_BATCHES_PATH = "/v1/messages/batches"


class GatewayBudgets:
    """The gateway's budget guard: :meth:`admit` before sending, :meth:`add` for each call recorded.

    ``budgets``: from :func:`cachewise.budget.load_budgets`; those :func:`enforced` are kept (the
    rest, CI budgets, are listed in :attr:`skipped`). An unknown model in a budget raises
    :class:`~cachewise.errors.UnknownModelError` here, at start. ``on_refusal`` is told of every
    refusal (metrics); ``on_read`` of every spend read (budget name, spent, limit). ``planned``:
    the proxy plans, so a request may be sent with a cache write it did not ask for; its estimate
    then prices every prompt token at the dearest (1h) write rate. ``holder``: this process's name
    in the lease table (default: host, pid and a random suffix). ``workers``: the processes
    expected to share each budget (``--workers``); the headroom is split among at least as many.
    """

    def __init__(
        self,
        budgets: Sequence[BudgetSpec],
        ledger: SpendSource,
        *,
        book: PriceBook | None = None,
        refresh_seconds: float = 2.0,
        flush_timeout: float = 10.0,
        clock: Clock | None = None,
        on_refusal: Callable[[Refusal], None] | None = None,
        on_read: Callable[[str, Decimal, Decimal], None] | None = None,
        planned: bool = True,
        reserve_seconds: float = 660.0,
        share_seconds: float | None = None,
        batch_seconds: float = 86_400.0,
        holder: str | None = None,
        workers: int = 1,
    ) -> None:
        self.ledger = ledger
        self.book = book or PriceBook.default()
        self.refresh_seconds = refresh_seconds
        self.flush_timeout = flush_timeout
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.on_refusal = on_refusal
        self.on_read = on_read
        self.planned = planned
        self.reserve_seconds = reserve_seconds
        self.share_seconds = share_seconds if share_seconds is not None else max(3 * refresh_seconds, 10.0)
        self.batch_seconds = batch_seconds
        self.workers = workers
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        kept = enforced(budgets)
        self.skipped = [b.name for b in budgets if b not in kept]
        self._budgets = [
            _Budget(
                spec=b,
                limit=b.limit if b.limit is not None else ZERO,
                models=frozenset(n for m in b.models for n in self.book.resolve_model(m))
                if b.models
                else None,
            )
            for b in kept
        ]
        self._lock = threading.Lock()
        self._seq = 0
        self._batches: dict[str, _Reservation] = {}
        # (model, tags) -> the budgets covering them: the checks compiled once per caller shape
        self._applicable: dict[tuple[str, tuple[tuple[str, str], ...]], list[_Budget]] = {}

    @property
    def budgets(self) -> list[BudgetSpec]:
        """The budgets enforced."""
        return [b.spec for b in self._budgets]

    # -- the record sink -----------------------------------------------------------------------

    def _release(self, reservation: _Reservation) -> None:
        """Drop ``reservation`` from its budgets (under ``self._lock``)."""
        if reservation.released:
            return
        reservation.released = True
        for held, amount in reservation.amounts.items():
            if reservation in held.reserved:
                held.reserved.discard(reservation)
                held.reserved_cost -= amount
        if reservation.batch_id is not None:
            self._batches.pop(reservation.batch_id, None)

    def add(self, record: CallRecord) -> None:
        """Count a call recorded (until a ledger read includes it)."""
        cost = record.cost.cost_total if record.cost is not None else None
        reservation = _RESERVATION.get()
        with self._lock:
            if reservation is not None and reservation.batch_id is None:  # the estimate gives way
                self._release(reservation)
            if record.batch_id is not None and (batch := self._batches.get(record.batch_id)) is not None:
                self._release(batch)
            self._seq += 1
            for budget in self._budgets:
                if budget.covers(record.model, record.tags):
                    previous = budget.pending.get(record.request_id)
                    if previous is not None:
                        self._unpend(budget, previous[2])
                    budget.pending[record.request_id] = (self._seq, record.started_at, cost)
                    if cost is None:
                        budget.pending_unpriced += 1
                    else:
                        budget.pending_cost += cost

    @staticmethod
    def _unpend(budget: _Budget, cost: Decimal | None) -> None:
        if cost is None:
            budget.pending_unpriced -= 1
        else:
            budget.pending_cost -= cost

    def bind_batch(self, batch_id: str | None, *, created: bool) -> None:
        """The batch created in this request is ``batch_id``: hold its estimate until its results
        are recorded; ``created=False`` (the upstream refused it): release the estimate now."""
        reservation = _RESERVATION.get()
        if reservation is None or reservation.released:
            return
        with self._lock:
            if not created or batch_id is None:
                self._release(reservation)
                return
            reservation.batch_id = batch_id
            self._batches[batch_id] = reservation

    # -- reading spend -------------------------------------------------------------------------

    def _due(self, budget: _Budget, start: datetime | None) -> bool:
        return (
            budget.read_at is None
            or start != budget.start
            or time.monotonic() - budget.read_at >= self.refresh_seconds
            or time.monotonic() >= budget.share_until
        )

    def read(self, budget: _Budget, now: datetime, *, force: bool = False, need: Decimal = ZERO) -> None:
        """Re-read ``budget``'s spend and take a new lease when due (blocking: run in a worker thread)."""
        start = window_start(budget.spec.window, now, None)
        with budget.refresh:
            if not force and not self._due(budget, start):
                return
            with self._lock:
                cut = self._seq
            self.ledger.flush(self.flush_timeout)  # this process's calls recorded so far: in the sum
            models = sorted(budget.models) if budget.models is not None else None
            window = Filter(since=start, model=models, tags=budget.spec.tags or None)
            taken = time.monotonic()
            with self._lock:
                self._expire(budget, taken)
                kept = {
                    k: v for k, v in budget.pending.items() if v[0] > cut and (start is None or v[1] >= start)
                }
                owed = sum((v[2] for v in kept.values() if v[2] is not None), ZERO) + budget.reserved_cost
            lease = self.ledger.lease(
                budget=budget.spec.name,
                holder=self.holder,
                limit=budget.limit,
                window=window,
                held=owed,
                now=now,
                held_seconds=self.reserve_seconds,
                share_seconds=self.share_seconds,
                shares=self.workers,
                need=need,
            )
            with self._lock:
                budget.spent, budget.unpriced = lease.totals.cost_total, lease.totals.unpriced_calls
                budget.others = lease.others
                # calls recorded during the lease stay pending (counted twice at worst: never less)
                budget.pending = {
                    k: v for k, v in budget.pending.items() if v[0] > cut and (start is None or v[1] >= start)
                }
                budget.pending_cost = sum((v[2] for v in budget.pending.values() if v[2] is not None), ZERO)
                budget.pending_unpriced = sum(1 for v in budget.pending.values() if v[2] is None)
                budget.granted = lease.held + lease.share
                budget.read_at, budget.start = taken, start
                budget.share_until = taken + self.share_seconds
        if self.on_read is not None:
            self.on_read(budget.spec.name, budget.spent + budget.others, budget.limit)

    @staticmethod
    def _expire(budget: _Budget, now: float) -> None:
        lapsed = [r for r in budget.reserved if r.expires <= now]
        for reservation in lapsed:
            budget.reserved.discard(reservation)
            budget.reserved_cost -= reservation.amounts.get(budget, ZERO)

    def spent(self, budget: _Budget) -> tuple[Decimal, int]:
        """Spend known now (last read + others' leases + what this process owes), unpriced calls."""
        with self._lock:
            return (
                budget.spent + budget.others + budget.owed,
                budget.unpriced + budget.pending_unpriced,
            )

    # -- admission -----------------------------------------------------------------------------

    def applicable(self, model: str, caller: Caller) -> list[_Budget]:
        key = (model, tuple(sorted(caller.tags.items())))
        found = self._applicable.get(key)
        if found is None:
            found = [b for b in self._budgets if b.covers(model, caller.tags)]
            if len(self._applicable) < 4096:  # distinct (model, tags) pairs: bounded memory
                self._applicable[key] = found
        return found

    def _estimate(
        self, body: Mapping[str, Any], now: datetime, *, batch: bool, size: int | None = None
    ) -> Decimal:
        """``body``'s upper-bound cost. ``size``: the request's JSON bytes as received (its
        ``content-length``), which bounds its text tokens without encoding the body again."""
        model = str(body.get("model"))
        tokens = _size_bound(body, size) if size is not None else prompt_token_bound(body)
        # planned: a write may be placed anywhere, so the whole prompt at the dearest (1h) write rate
        writes = ((tokens, "1h"),) if self.planned else None
        return estimate_cost(body, model, self.book, now, prompt_tokens=tokens, batch=batch, writes=writes)

    def _demand(
        self, body: Mapping[str, Any], caller: Caller, now: datetime, *, batch: bool, size: int | None = None
    ) -> tuple[dict[_Budget, Decimal], str | None, list[_Budget]]:
        """Per budget, what ``body`` may cost (a batch: each request at the batch rates); or why not."""
        items = body.get("requests") if batch else [{"params": body}]
        size = None if batch else size
        demand: dict[_Budget, Decimal] = {}
        touched: list[_Budget] = []
        why = None
        for item in items if isinstance(items, list) else ():
            params = item.get("params") if isinstance(item, Mapping) else None
            if not isinstance(params, Mapping):
                continue
            budgets = self.applicable(str(params.get("model")), caller)
            if not budgets:
                continue
            touched.extend(b for b in budgets if b not in touched)
            try:
                cost = self._estimate(params, now, batch=batch, size=size)
            except (PricingError, ValueError) as exc:
                why = str(exc)
                continue
            for budget in budgets:
                demand[budget] = demand.get(budget, ZERO) + cost
        return demand, why, touched

    def check(
        self, body: Mapping[str, Any], budgets: Sequence[_Budget]
    ) -> tuple[Refusal | None, Decimal | None]:
        """The first refusal for ``body`` (one Messages request) among ``budgets``; the estimate."""
        now = self.clock()
        try:
            estimate: Decimal | None = self._estimate(body, now, batch=False)
        except (PricingError, ValueError) as exc:
            return self._unestimated(budgets[0], str(exc)) if budgets else None, None
        assert estimate is not None
        for budget in budgets:
            refusal = self._over(budget, estimate, now)
            if refusal is not None:
                return refusal, estimate
        return None, estimate

    @staticmethod
    def _unestimated(budget: _Budget, why: str) -> Refusal:
        spec = budget.spec
        label = f"budget {spec.name!r} ({spec.window}, {spec.scope()})"
        return Refusal(
            spec.name,
            "unpriced",
            429,
            "rate_limit_error",
            f"cachewise gateway: {label} cannot be enforced for this request: {why}",
        )

    def _over(self, budget: _Budget, estimate: Decimal, now: datetime) -> Refusal | None:
        """A refusal when ``estimate`` does not fit ``budget`` (its lease, and the limit), else ``None``."""
        spec = budget.spec
        spent, unpriced = self.spent(budget)
        granted = budget.granted
        fits_lease = granted is None or budget.owed + estimate <= granted
        if not unpriced and fits_lease and spent + estimate <= budget.limit:
            return None
        label = f"budget {spec.name!r} ({spec.window}, {spec.scope()})"
        if unpriced:
            return Refusal(
                spec.name,
                "unpriced",
                429,
                "rate_limit_error",
                f"cachewise gateway: {label} cannot be enforced: {unpriced} call(s) in its window "
                "have no price; add the model to a price overlay or reprice the ledger",
            )
        ends = _window_end(spec.window, budget.start or now).isoformat()
        return Refusal(
            spec.name,
            "limit",
            429,
            "rate_limit_error",
            f"cachewise gateway: {label} of ${budget.limit} would be exceeded: ${spent:.6f} spent "
            f"or in flight in the window, this request may cost up to ${estimate:.6f}; "
            f"the window ends {ends}",
        )

    async def _read(
        self, budget: _Budget, now: datetime, *, force: bool = False, need: Decimal = ZERO
    ) -> Response | None:
        try:
            await anyio.to_thread.run_sync(partial(self.read, budget, now, force=force, need=need))
        except Exception as exc:  # fail closed: what was spent is unknown
            return self._refuse(
                Refusal(
                    budget.spec.name,
                    "ledger",
                    503,
                    "api_error",
                    f"cachewise gateway: budget {budget.spec.name!r} cannot be enforced: the ledger "
                    f"cannot be read ({type(exc).__name__}: {exc}); refused before sending",
                )
            )
        return None

    async def admit(self, request: Request, body: Any) -> Response | None:
        """The proxy's hook: an API-shaped refusal for a request over budget, or ``None`` to send it.

        Messages calls and batch creations (``POST /v1/messages/batches``) are admitted; anything
        else passes. The caller is the one :class:`~cachewise.gateway.app.GatewayApp` put in the ASGI
        scope, else read from the headers. A body that is not a JSON object passes (the upstream
        refuses it, unbilled).
        """
        if not self._budgets or not isinstance(body, Mapping):
            return None
        path = request.url.path.rstrip("/")
        batch = path.endswith(_BATCHES_PATH)
        if not batch and not path.endswith("/v1/messages"):
            return None
        caller = request.scope.get(CALLER_SCOPE_KEY)
        if not isinstance(caller, Caller):
            try:
                caller = caller_of(request.headers)
            except TagHeaderError as exc:
                return error_response(400, "invalid_request_error", f"cachewise gateway: {exc}")
        now = self.clock()
        length = request.headers.get("content-length")
        size = int(length) if length is not None and length.isdigit() else None
        demand, why, budgets = self._demand(body, caller, now, batch=batch, size=size)
        if not budgets:
            return None
        for budget in budgets:
            due = self._due(budget, window_start(budget.spec.window, now, None))
            need = demand.get(budget, ZERO)
            if due and (failed := await self._read(budget, now, need=need)) is not None:
                return failed
        if why is not None:
            return self._refuse(self._unestimated(budgets[0], why))
        for budget, amount in demand.items():
            refusal = self._over(budget, amount, now)
            if refusal is not None and refusal.reason == "limit":
                # past this process's lease: take a fresh one (the others' may have lapsed), then decide
                if (failed := await self._read(budget, now, force=True, need=amount)) is not None:
                    return failed
                refusal = self._over(budget, amount, now)
            if refusal is not None:
                return self._refuse(refusal)
        seconds = self.batch_seconds if batch else self.reserve_seconds
        held = _Reservation(demand, time.monotonic() + seconds)
        with self._lock:
            for budget, amount in demand.items():
                budget.reserved.add(held)
                budget.reserved_cost += amount
        _RESERVATION.set(held)
        return None

    def _refuse(self, refusal: Refusal) -> Response:
        if self.on_refusal is not None:
            self.on_refusal(refusal)
        headers = {"x-should-retry": "false"} if refusal.reason == "limit" else {}
        return error_response(refusal.status, refusal.error_type, refusal.message, headers)
