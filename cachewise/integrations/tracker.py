"""What happens around one Messages call, whatever carries it (SDK middleware, transport, proxy).

:class:`CallTracker` does three things for each HTTP attempt:

1. ``prepare``: plan the request (breakpoints, TTLs), check the runtime budget,
   start the clock. Planning failures are swallowed (fail open): the request
   goes out as the user wrote it.
2. ``finish`` (JSON) or ``tap`` (SSE): read the usage from the response and
   record one ledger row per billed attempt. An error status is recorded as an
   error row with no cost; a stream that ends early is recorded as incomplete.
3. tell the planner what happened, so it learns reuse and minimums.

Recording never raises into the caller (except under pytest; see
:mod:`cachewise.integrations.failopen`).
"""

from __future__ import annotations

import inspect
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Protocol, cast

from ..budget.collector import session_collector
from ..ledger import Ledger
from ..ledger.record import Breakpoint, CallRecord
from ..pricing import Modifiers, PriceBook
from ..tags import current as current_tags
from ..usage import Usage
from .failopen import guarded, swallow
from .sse import SSETap

__all__ = ["CallKind", "CallTracker", "Clock", "PlannerLike", "Prepared", "classify"]

Clock = Callable[[], datetime]

_RESULTS = re.compile(r"/v1/messages/batches/([^/]+)/results$")


class PlannerLike(Protocol):
    """What the tracker needs of a planner (:class:`cachewise.CachePlanner` is one).

    ``plan`` returns an object whose ``request`` is the body to send and whose
    ``breakpoints`` describe the markers; ``aplan`` (optional) is its async twin.
    """

    def plan(self, request: dict[str, Any]) -> Any: ...

    def observe(self, plan: Any, usage: Usage, at: datetime) -> None: ...


class BudgetLike(Protocol):
    """A runtime budget (:class:`cachewise.budget.RuntimeBudget` is one)."""

    def check_request(
        self, request_body: Mapping[str, Any], *, book: PriceBook | None = None, at: datetime | None = None
    ) -> Decimal: ...

    def record(self, record: CallRecord) -> None: ...


class CallKind:
    MESSAGES = "messages"
    BATCH_CREATE = "batch_create"
    BATCH_RESULTS = "batch_results"
    OTHER = "other"


def classify(method: str, url: str) -> tuple[str, str | None]:
    """What kind of call a method and URL (absolute or relative) are, and the batch id if any."""
    path = url.split("?", 1)[0].rstrip("/")
    if "://" in path:
        path = "/" + path.split("://", 1)[1].split("/", 1)[-1]
    method = method.upper()
    if method == "POST" and path.endswith("/v1/messages"):
        return CallKind.MESSAGES, None
    if method == "POST" and path.endswith("/v1/messages/batches"):
        return CallKind.BATCH_CREATE, None
    found = _RESULTS.search(path)
    if method == "GET" and found:
        return CallKind.BATCH_RESULTS, found.group(1)
    return CallKind.OTHER, None


@dataclass
class Prepared:
    """A request about to be sent: the body to send and what the tracker needs afterwards."""

    original: Mapping[str, Any] | None
    body: Mapping[str, Any] | None
    started_at: datetime
    started: float
    plan: Any = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return self.body is not self.original

    @property
    def model(self) -> str:
        source = self.body or self.original or {}
        return str(source.get("model") or "unknown")


def _breakpoints_of(plan: Any) -> tuple[Breakpoint, ...]:
    points = getattr(plan, "breakpoints", None) or ()
    out: list[Breakpoint] = []
    for point in points:
        out.append(
            Breakpoint(
                position=int(getattr(point, "position", 0)),
                ttl=cast(Any, str(getattr(point, "ttl", "5m"))),  # as the planner gave it
                tokens=getattr(point, "tokens", None),
                prefix_hash=getattr(point, "prefix_hash", None),
            )
        )
    return tuple(out)


def _record_kw(planner: Any, retry: bool) -> dict[str, bool]:
    """``record=False`` for a retried attempt, when the planner takes it (CachePlanner does)."""
    if retry and "record" in inspect.signature(planner.plan).parameters:
        return {"record": False}
    return {}


def _error_type(payload: Any) -> str | None:
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            return str(error.get("type") or "error")
    return None


def unwrap_envelope(payload: Any) -> Any:
    """``{"code": 200, "data": {...}}`` (some resellers) → the inner message; anything else as is."""
    if (
        isinstance(payload, Mapping)
        and "type" not in payload
        and isinstance(payload.get("data"), Mapping)
        and ("code" in payload or "success" in payload)
    ):
        return payload["data"]
    return payload


class CallTracker:
    """Plans and records Messages calls for one wrapped client, transport or proxy."""

    def __init__(
        self,
        *,
        ledger: Ledger | None,
        planner: PlannerLike | None = None,
        clock: Clock | None = None,
        tags: Mapping[str, str] | None = None,
        book: PriceBook | None = None,
        budget: BudgetLike | None = None,
        on_record: Callable[[CallRecord], None] | None = None,
    ) -> None:
        self.ledger = ledger
        self.planner = planner
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.tags = dict(tags or {})
        self.book = book
        self.budget = budget
        self.on_record = on_record

    # -- before ---------------------------------------------------------------------------------

    def prepare(self, body: Mapping[str, Any] | None, *, retry: bool = False) -> Prepared:
        """Plan ``body`` (synchronously) and start the clock for one attempt.

        ``retry``: the SDK is retrying the same call; it is planned the same way, but not counted
        again as an arrival in the planner's reuse statistics.
        """
        planner = self.planner
        planned: Any = None
        if body is not None and planner is not None:
            planned = guarded("planner", lambda: planner.plan(dict(body), **_record_kw(planner, retry)), None)
        return self._prepared(body, planned)

    async def aprepare(self, body: Mapping[str, Any] | None, *, retry: bool = False) -> Prepared:
        """Like :meth:`prepare`, awaiting the planner's ``aplan`` when it has one."""
        planner = self.planner
        planned: Any = None
        if body is not None and planner is not None:
            aplan = getattr(planner, "aplan", None)
            kw = _record_kw(planner, retry)
            try:
                planned = (
                    await aplan(dict(body), **kw) if aplan is not None else planner.plan(dict(body), **kw)
                )
            except Exception as exc:
                swallow("planner", exc)
        return self._prepared(body, planned)

    def unplanned(self, body: Mapping[str, Any] | None) -> Prepared:
        """Start an attempt that sends ``body`` exactly as written (no planning)."""
        return self._prepared(body, None)

    def _prepared(self, body: Mapping[str, Any] | None, planned: Any) -> Prepared:
        try:
            started_at = self.clock()
            tags = {**self.tags, **current_tags()}
            new_body: Mapping[str, Any] | None = body
            request = getattr(planned, "request", None)
            if planned is not None and isinstance(request, Mapping) and getattr(planned, "added", True):
                new_body = request
        except Exception as exc:  # a broken clock or tag: send the request as written, unplanned
            swallow("prepare", exc)
            started_at, tags, new_body, planned = datetime.now(UTC), dict(self.tags), body, None
        if self.budget is not None and body is not None:
            self._check_budget(new_body or body, started_at)
        return Prepared(
            original=body,
            body=new_body,
            started_at=started_at,
            started=time.perf_counter(),
            plan=planned,
            tags=tags,
        )

    def _check_budget(self, body: Mapping[str, Any], at: datetime) -> None:
        budget = self.budget
        assert budget is not None
        # BudgetExceeded (and UnpricedSpend: fail closed) are meant to reach the caller.
        budget.check_request(body, book=self.book, at=at)

    # -- after ----------------------------------------------------------------------------------

    def finish(self, prepared: Prepared, status: int, headers: Mapping[str, str], content: bytes) -> None:
        """Record a complete (non-streamed) Messages response."""
        guarded("ledger record", lambda: self._finish(prepared, status, headers, content), None)

    def _finish(self, prepared: Prepared, status: int, headers: Mapping[str, str], content: bytes) -> None:
        latency = (time.perf_counter() - prepared.started) * 1000
        try:
            payload: Any = unwrap_envelope(json.loads(content)) if content else None
        except ValueError:
            payload = None
        request_id = headers.get("request-id")
        if request_id is None and isinstance(payload, Mapping):
            request_id = payload.get("request_id")
        if status >= 400 or not isinstance(payload, Mapping) or payload.get("type") == "error":
            self._record_error(
                prepared, request_id, _error_type(payload) or f"http_{status}", latency, "messages"
            )
            return
        usage = Usage.from_api(payload.get("usage"))
        self._record(
            prepared,
            usage=usage,
            request_id=str(request_id or payload.get("id") or f"local_{uuid.uuid4().hex}"),
            message_id=payload.get("id"),
            model=str(payload.get("model") or prepared.model),
            latency_ms=latency,
            endpoint="messages",
        )

    def fail(self, prepared: Prepared, exc: BaseException) -> None:
        """Record an attempt that got no response at all (connection error, timeout): an error row."""
        latency = (time.perf_counter() - prepared.started) * 1000
        guarded(
            "ledger record",
            lambda: self._record_error(prepared, None, type(exc).__name__, latency, "messages"),
            None,
        )

    def tap(self, prepared: Prepared, status: int, headers: Mapping[str, str]) -> StreamRecorder:
        return StreamRecorder(self, prepared, status, headers)

    def _record_error(
        self, prepared: Prepared, request_id: str | None, error_type: str, latency: float, endpoint: str
    ) -> None:
        record = CallRecord.priced(
            usage=Usage(),
            model=prepared.model,
            started_at=prepared.started_at,
            request_id=request_id or f"local_{uuid.uuid4().hex}",
            book=self.book,
            status="error",
            error_type=error_type,
            latency_ms=latency,
            endpoint=endpoint,
            planned=prepared.plan is not None,
            breakpoints=_breakpoints_of(prepared.plan),
            tags=prepared.tags,
        )
        self._emit(record)

    def _record(
        self,
        prepared: Prepared,
        *,
        usage: Usage,
        request_id: str,
        message_id: str | None,
        model: str,
        latency_ms: float,
        endpoint: str,
        ttft_ms: float | None = None,
        incomplete: bool = False,
        error_type: str | None = None,
    ) -> None:
        body = prepared.body or {}
        record = CallRecord.priced(
            usage=usage,
            model=model,
            started_at=prepared.started_at,
            request_id=request_id,
            message_id=message_id,
            book=self.book,
            modifiers=Modifiers(speed=body.get("speed"), inference_geo=body.get("inference_geo")),
            status="incomplete" if incomplete else "ok",
            incomplete=incomplete,
            error_type=error_type,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            endpoint=endpoint,
            planned=prepared.plan is not None,
            breakpoints=_breakpoints_of(prepared.plan),
            prefix_hash=getattr(prepared.plan, "family", None) or None,
            tags=prepared.tags,
        )
        self._emit(record)
        if self.planner is not None and prepared.plan is not None and not incomplete:
            planner = self.planner
            guarded(
                "planner observe", lambda: planner.observe(prepared.plan, usage, prepared.started_at), None
            )

    def _emit(self, record: CallRecord) -> None:
        if self.ledger is not None:
            self.ledger.record(record)
        if self.budget is not None:
            self.budget.record(record)
        collector = session_collector()  # the pytest budget plugin, when it runs
        if collector is not None:
            collector.add(record)
        if self.on_record is not None:
            self.on_record(record)

    # -- batches ----------------------------------------------------------------------------------

    def record_batch_line(self, batch_id: str, line: bytes, started_at: datetime) -> None:
        guarded("batch result", lambda: self._batch_line(batch_id, line, started_at), None)

    def _batch_line(self, batch_id: str, line: bytes, started_at: datetime) -> None:
        if not line.strip():
            return
        item = json.loads(line)
        custom_id = str(item.get("custom_id"))
        result = item.get("result") or {}
        prepared = Prepared(
            original=None,
            body=None,
            started_at=started_at,
            started=time.perf_counter(),
            tags={**self.tags, **current_tags()},
        )
        key = f"{batch_id}:{custom_id}"
        if result.get("type") != "succeeded":
            record = CallRecord.priced(
                usage=Usage(),
                model=str((result.get("message") or {}).get("model") or "unknown"),
                started_at=started_at,
                request_id=key,
                book=self.book,
                status="error",
                error_type=str(result.get("type")),
                endpoint="batch",
                batch_id=batch_id,
                custom_id=custom_id,
                tags=prepared.tags,
            )
            self._emit(record)
            return
        message = result.get("message") or {}
        record = CallRecord.priced(
            usage=Usage.from_api(message.get("usage")),
            model=str(message.get("model") or "unknown"),
            started_at=started_at,
            request_id=key,
            message_id=message.get("id"),
            book=self.book,
            modifiers=Modifiers(batch=True),
            endpoint="batch",
            batch_id=batch_id,
            custom_id=custom_id,
            tags=prepared.tags,
        )
        self._emit(record)


class StreamRecorder:
    """Feeds an SSE body through an :class:`SSETap` and records the call once, when it ends."""

    def __init__(
        self, tracker: CallTracker, prepared: Prepared, status: int, headers: Mapping[str, str]
    ) -> None:
        self.tracker = tracker
        self.prepared = prepared
        self.status = status
        self.request_id = headers.get("request-id")
        self.tap = SSETap(prepared.started)
        self._done = False

    def feed(self, chunk: bytes) -> None:
        guarded("stream tap", lambda: self.tap.feed(chunk), None)

    def close(self, error: BaseException | None = None) -> None:
        """The stream ended: normally, by an error, or because the caller stopped reading."""
        if self._done:
            return
        self._done = True
        guarded("ledger record", lambda: self._close(error), None)

    def _close(self, error: BaseException | None) -> None:
        tracker, prepared, tap = self.tracker, self.prepared, self.tap
        latency = (time.perf_counter() - prepared.started) * 1000
        if self.status >= 400:
            tracker._record_error(prepared, self.request_id, f"http_{self.status}", latency, "stream")
            return
        stream = tap.stream
        if not stream.seen_start:
            tracker._record_error(
                prepared,
                self.request_id,
                tap.error_type or (type(error).__name__ if error else "no_message_start"),
                latency,
                "stream",
            )
            return
        incomplete = not stream.complete or tap.error_type is not None or error is not None
        tracker._record(
            prepared,
            usage=stream.usage,
            request_id=str(self.request_id or stream.message_id or f"local_{uuid.uuid4().hex}"),
            message_id=stream.message_id,
            model=str(stream.model or prepared.model),
            latency_ms=latency,
            ttft_ms=tap.ttft_ms,
            endpoint="stream",
            incomplete=incomplete,
            error_type=tap.error_type or (type(error).__name__ if error is not None else None),
        )
