"""Budgets at the gateway: refuse a Messages request before it is sent when it could cross a budget.

:class:`GatewayBudgets` enforces the budgets of a budget config (docs/budgets.md, "At the
gateway") that have a ``limit`` and a ``day`` or ``month`` window, each scoped by model, tags and
API key (``api_key``: the calls tagged with the key's id, see :mod:`.caller`).

* **Spend** per budget is the ledger's SQL sum over the window (``Ledger.totals``), read at most
  every ``refresh_seconds`` (in a worker thread, after a flush of this process's writer), plus the
  calls this process recorded since that read (it is a record sink). A call recorded while a read
  is running may be counted twice until the next read: never less than spent.
* **Admission** (:meth:`admit`, the proxy's hook): the request's upper-bound cost
  (:func:`cachewise.budget.estimate_cost`) plus the spend must stay within the limit, else a 429
  ``rate_limit_error`` naming the budget (with ``x-should-retry: false``: retrying in the window
  does not help).
* **Fail closed**: a ledger that cannot be read is a 503 naming the budget and the cause; unpriced
  calls in the window, or a request that cannot be estimated, a 429 naming the cause.
* **In flight**: a request admitted reserves its estimate in every budget it is in until its record
  arrives (the same request's context: a :mod:`contextvars` variable set by :meth:`admit`), so
  concurrent requests cannot together pass a limit. A reservation whose record never comes (a bug
  between admission and recording) lapses after ``reserve_seconds``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

import anyio.to_thread
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ..budget.base import ZERO, window_start
from ..budget.config import BudgetSpec
from ..budget.runtime import estimate_cost
from ..errors import PricingError
from ..pricing import PriceBook
from .caller import CALLER_SCOPE_KEY, Caller, TagHeaderError, caller_of

if TYPE_CHECKING:
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
    """The estimate of one admitted request, held in its budgets until its record arrives."""

    estimate: Decimal
    expires: float
    budgets: Sequence[_Budget]
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
    spent: Decimal = ZERO
    unpriced: int = 0
    # request_id -> (sequence number, started_at, cost or None when unpriced)
    pending: dict[str, tuple[int, datetime, Decimal | None]] = field(default_factory=dict)
    reserved: set[_Reservation] = field(default_factory=set)

    def covers(self, model: str, tags: Mapping[str, str]) -> bool:
        if self.models is not None and model not in self.models:
            return False
        return all(tags.get(k) == v for k, v in self.spec.tags.items())


def _window_end(window: str, start: datetime) -> datetime:
    if window == "day":
        return start + timedelta(days=1)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start.replace(year=year, month=month)


class GatewayBudgets:
    """The gateway's budget guard: :meth:`admit` before sending, :meth:`add` for each call recorded.

    ``budgets``: from :func:`cachewise.budget.load_budgets`; those :func:`enforced` are kept (the
    rest, CI budgets, are listed in :attr:`skipped`). An unknown model in a budget raises
    :class:`~cachewise.errors.UnknownModelError` here, at start. ``on_refusal`` is told of every
    refusal (metrics); ``on_read`` of every spend read (budget name, spent, limit). ``planned``:
    the proxy plans, so a request may be sent with a cache write it did not ask for; its estimate
    then prices every prompt token at the dearest (1h) write rate.
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

    @property
    def budgets(self) -> list[BudgetSpec]:
        """The budgets enforced."""
        return [b.spec for b in self._budgets]

    # -- the record sink -----------------------------------------------------------------------

    def add(self, record: CallRecord) -> None:
        """Count a call recorded (until a ledger read includes it)."""
        cost = record.cost.cost_total if record.cost is not None else None
        reservation = _RESERVATION.get()
        with self._lock:
            if reservation is not None and not reservation.released:  # the estimate gives way to the cost
                reservation.released = True
                for held in reservation.budgets:
                    held.reserved.discard(reservation)
            self._seq += 1
            for budget in self._budgets:
                if budget.covers(record.model, record.tags):
                    budget.pending[record.request_id] = (self._seq, record.started_at, cost)

    # -- reading spend -------------------------------------------------------------------------

    def _due(self, budget: _Budget, start: datetime | None) -> bool:
        return (
            budget.read_at is None
            or start != budget.start
            or time.monotonic() - budget.read_at >= self.refresh_seconds
        )

    def read(self, budget: _Budget, now: datetime) -> None:
        """Re-read ``budget``'s spend from the ledger when due (blocking: run in a worker thread)."""
        start = window_start(budget.spec.window, now, None)
        with budget.refresh:
            if not self._due(budget, start):
                return
            with self._lock:
                cut = self._seq
            self.ledger.flush(self.flush_timeout)  # this process's calls recorded so far: in the sum
            models = sorted(budget.models) if budget.models is not None else None
            totals = self.ledger.totals(since=start, model=models, tags=budget.spec.tags or None)
            with self._lock:
                budget.spent, budget.unpriced = totals.cost_total, totals.unpriced_calls
                budget.pending = {
                    k: v for k, v in budget.pending.items() if v[0] > cut and (start is None or v[1] >= start)
                }
                budget.read_at, budget.start = time.monotonic(), start
        if self.on_read is not None:
            self.on_read(budget.spec.name, budget.spent, budget.limit)

    def spent(self, budget: _Budget) -> tuple[Decimal, int]:
        """Spend known now (last read + recorded since + reserved in flight) and the unpriced calls."""
        now = time.monotonic()
        with self._lock:
            budget.reserved = {r for r in budget.reserved if r.expires > now}
            local = [v[2] for v in budget.pending.values()]
            return (
                budget.spent
                + sum((c for c in local if c is not None), ZERO)
                + sum((r.estimate for r in budget.reserved), ZERO),
                budget.unpriced + sum(1 for c in local if c is None),
            )

    # -- admission -----------------------------------------------------------------------------

    def applicable(self, model: str, caller: Caller) -> list[_Budget]:
        return [b for b in self._budgets if b.covers(model, caller.tags)]

    def check(
        self, body: Mapping[str, Any], budgets: Sequence[_Budget]
    ) -> tuple[Refusal | None, Decimal | None]:
        """The first refusal for ``body`` among ``budgets`` (already read), or ``None``; and the estimate."""
        now = self.clock()
        model = str(body.get("model"))
        if self.planned:  # a top-level marker: the estimate takes the 1h write rate (docs/api-notes.md §1.3)
            body = {**body, "cache_control": {"type": "ephemeral", "ttl": "1h"}}
        try:
            estimate: Decimal | None = estimate_cost(body, model, self.book, now)
        except (PricingError, ValueError) as exc:
            estimate, why = None, str(exc)
        for budget in budgets:
            spec = budget.spec
            label = f"budget {spec.name!r} ({spec.window}, {spec.scope()})"
            if estimate is None:
                return Refusal(
                    spec.name,
                    "unpriced",
                    429,
                    "rate_limit_error",
                    f"cachewise gateway: {label} cannot be enforced for this request: {why}",
                ), None
            spent, unpriced = self.spent(budget)
            if unpriced:
                return Refusal(
                    spec.name,
                    "unpriced",
                    429,
                    "rate_limit_error",
                    f"cachewise gateway: {label} cannot be enforced: {unpriced} call(s) in its window "
                    "have no price; add the model to a price overlay or reprice the ledger",
                ), estimate
            if spent + estimate > budget.limit:
                ends = _window_end(spec.window, budget.start or now).isoformat()
                return Refusal(
                    spec.name,
                    "limit",
                    429,
                    "rate_limit_error",
                    f"cachewise gateway: {label} of ${budget.limit} would be exceeded: ${spent:.6f} spent "
                    f"in the window, this request may cost up to ${estimate:.6f}; the window ends {ends}",
                ), estimate
        return None, estimate

    async def admit(self, request: Request, body: Any) -> Response | None:
        """The proxy's hook: an API-shaped refusal for a request over budget, or ``None`` to send it.

        The caller is the one :class:`~cachewise.gateway.app.GatewayApp` put in the ASGI scope, else
        read from the headers. A body that is not a JSON object passes (the upstream refuses it, unbilled).
        """
        if not self._budgets or not isinstance(body, Mapping):
            return None
        caller = request.scope.get(CALLER_SCOPE_KEY)
        if not isinstance(caller, Caller):
            try:
                caller = caller_of(request.headers)
            except TagHeaderError as exc:
                return error_response(400, "invalid_request_error", f"cachewise gateway: {exc}")
        budgets = self.applicable(str(body.get("model")), caller)
        if not budgets:
            return None
        now = self.clock()
        for budget in budgets:
            if not self._due(budget, window_start(budget.spec.window, now, None)):
                continue
            try:
                await anyio.to_thread.run_sync(self.read, budget, now)
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
        refusal, estimate = self.check(body, budgets)
        if refusal is not None:
            return self._refuse(refusal)
        if estimate is not None:
            held = _Reservation(estimate, time.monotonic() + self.reserve_seconds, budgets)
            with self._lock:
                for budget in budgets:
                    budget.reserved.add(held)
            _RESERVATION.set(held)
        return None

    def _refuse(self, refusal: Refusal) -> Response:
        if self.on_refusal is not None:
            self.on_refusal(refusal)
        headers = {"x-should-retry": "false"} if refusal.reason == "limit" else {}
        return error_response(refusal.status, refusal.error_type, refusal.message, headers)
