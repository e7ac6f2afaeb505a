"""What happens around one Messages call, whatever carries it (SDK middleware, transport, proxy).

:class:`CallTracker` does three things for each HTTP attempt:

1. ``prepare`` / ``aprepare``: plan the request (breakpoints, TTLs), check the
   runtime budget, start the clock. Both drive one core, :meth:`preparing`, that
   yields a :class:`PlanAsk` (see :mod:`.steps`); planning failures are swallowed
   (fail open): the request goes out as the user wrote it.
2. ``finish`` (JSON) or ``tap`` (SSE): read the usage from the response and
   hand one record per billed attempt to the sinks (:mod:`cachewise.sinks`: the
   ledger, the runtime budget, those registered). An error status is an error
   record with no cost; a stream that ends early is recorded as incomplete.
3. tell the planner what happened, so it learns reuse and minimums.

Recording never raises into the caller (except under pytest; see
:mod:`cachewise.failopen`). The tracker imports neither budgets nor pytest.
"""

from __future__ import annotations

import inspect
import json
import re
import time
import uuid
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from ..diagnose import Look, MissWatch
from ..failopen import fail_open, swallow
from ..ledger.record import Breakpoint, CallRecord
from ..pricing import Modifiers, PriceBook
from ..pricing.platforms import Platform, regional_endpoint
from ..prompt import orjson_bytes
from ..sinks import Budget, LedgerSink, RecordSink, registered
from ..tags import current as current_tags
from ..usage import Usage, UsageReading
from ._json import read_json
from ._planner import AnyPlanner, UserPlanner, as_planner
from .eventstream import EVENT_STREAM_TYPE, EventStreamTap
from .sse import SSETap
from .steps import adrive, drive

if TYPE_CHECKING:
    from ..ledger import Ledger
    from ..planner import Plan

__all__ = [
    "BudgetLike",
    "CallKind",
    "CallTracker",
    "Clock",
    "PlanAsk",
    "PlannerLike",
    "Prepared",
    "classify",
    "serialised",
]

Clock = Callable[[], datetime]

_RESULTS = re.compile(r"/v1/messages/batches/([^/]+)/results$")


class PlannerLike(Protocol):
    """What ``wrap(planner=...)`` accepts: :class:`cachewise.CachePlanner`, or your own object.

    ``plan`` (with or without ``record=``) returns a :class:`cachewise.planner.Plan`, or ``None``
    to plan nothing; ``aplan`` (optional) is its async twin; ``observe`` learns from the usage.
    """

    def plan(self, request: dict[str, Any]) -> Any: ...

    def observe(self, plan: Any, usage: Usage, at: datetime) -> None: ...


#: A runtime budget (:class:`cachewise.budget.RuntimeBudget` is one).
BudgetLike = Budget


@dataclass(frozen=True, slots=True)
class PlanAsk:
    """Ask: plan ``request`` (the user's body, never changed: planners work on their own copy);
    ``record``: count it as an arrival."""

    request: Mapping[str, Any]
    record: bool


class CallKind(StrEnum):
    """What a request is, as far as recording goes."""

    MESSAGES = "messages"
    BATCH_CREATE = "batch_create"
    BATCH_RESULTS = "batch_results"
    OTHER = "other"


def classify(method: str, url: str) -> tuple[CallKind, str | None]:
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
    """A request about to be sent: the body to send and what the tracker needs afterwards.

    ``payload`` is the planned body as JSON bytes when the planner changed it (``None`` when the
    request goes out as the user wrote it): a planned body that cannot be serialised is dropped
    before it can fail the call.
    """

    original: Mapping[str, Any] | None
    body: Mapping[str, Any] | None
    started_at: datetime
    started: float
    plan: Plan | None = None
    tags: dict[str, str] = field(default_factory=dict)
    payload: bytes | None = None
    look: Look | None = None

    @property
    def changed(self) -> bool:
        return self.body is not self.original

    @property
    def model(self) -> str:
        source = self.body or self.original or {}
        return str(source.get("model") or "unknown")


def _breakpoints_of(plan: Plan | None) -> tuple[Breakpoint, ...]:
    if plan is None:
        return ()
    return tuple(
        Breakpoint(position=b.position, ttl=b.ttl, tokens=b.tokens, prefix_hash=b.prefix_hash)
        for b in plan.breakpoints
    )


def _counted(plan: Plan | None) -> tuple[dict[int, int], frozenset[int]] | None:
    """The prefix sizes the planner knew exactly, by position (count_tokens answers and memo hits),
    and those its memo knew before it planned; ``None`` when the call was not planned."""
    if plan is None:
        return None
    out = {r.position: r.tokens for r in plan.rejected if r.counted and r.tokens is not None}
    out.update({b.position: b.tokens for b in plan.breakpoints if b.counted and b.tokens is not None})
    out.update(plan.counts)
    return out, plan.memoised


def _takes_plan(check: Callable[..., Any]) -> bool:
    """Whether a budget's ``check_request`` accepts ``plan=`` and ``counter=`` (or ``**kwargs``)."""
    try:
        params = inspect.signature(check).parameters
    except (TypeError, ValueError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return "plan" in params and "counter" in params


def serialised(body: Mapping[str, Any]) -> bytes:
    """``body`` as the JSON the SDK sends (compact, UTF-8, no NaN); raises if it is not JSON.

    orjson (the ``fast`` extra) writes it when it writes the same bytes as :mod:`json` would
    (plain dicts, lists, strings, 64-bit integers, floats without an exponent:
    :func:`cachewise.prompt.orjson_bytes`), about a tenth of the time for a 50 kB body; anything else
    (NaN, big integers, subclasses, lone surrogates) goes through :mod:`json`, as before.
    """
    data = orjson_bytes(body)
    if data is not None:
        return data
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def _error_type(payload: Any) -> str | None:
    if isinstance(payload, Mapping):
        error = payload.get("error")
        if isinstance(error, Mapping):
            return str(error.get("type") or "error")
    return None


#: ``CallTracker.finish(parsed=...)`` not given: the tracker reads the reply itself.
_UNREAD: Any = object()


def read_reply(content: bytes) -> Any:
    """A reply body's JSON, or ``None`` (empty, not JSON, or nested too deep to read)."""
    if not content:
        return None
    try:
        return read_json(content)
    except (ValueError, RecursionError):
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
    """Plans and records Messages calls for one wrapped client, transport or proxy.

    Records go to ``sinks``: the ledger, the runtime ``budget``, any others given, and those
    registered process-wide (:func:`cachewise.sinks.register`); ``on_record`` is called last.
    """

    def __init__(
        self,
        *,
        ledger: Ledger | None,
        planner: PlannerLike | AnyPlanner | None = None,
        clock: Clock | None = None,
        tags: Mapping[str, str] | None = None,
        book: PriceBook | None = None,
        budget: Budget | None = None,
        sinks: Sequence[RecordSink] = (),
        on_record: Callable[[CallRecord], None] | None = None,
        platform: Platform = "anthropic",
        location: str | None = None,
        diagnostics: bool = False,
    ) -> None:
        self.ledger = ledger
        self.platform: Platform = platform
        self.location = location
        self.misses = MissWatch(diagnostics=diagnostics, book=book)  # why calls miss (cachewise.diagnose)
        self.planner: AnyPlanner | None = as_planner(planner) if planner is not None else None
        self.clock: Clock = clock or (lambda: datetime.now(UTC))
        self.tags = dict(tags or {})
        self.book = book
        self.budget = budget
        own: list[RecordSink] = [LedgerSink(ledger)] if ledger is not None else []
        self.sinks: list[RecordSink] = [*own, *([budget] if budget is not None else []), *sinks]
        self.on_record = on_record

    # -- before ---------------------------------------------------------------------------------

    def preparing(
        self, body: Mapping[str, Any] | None, *, retry: bool = False
    ) -> Generator[PlanAsk, Any, Prepared]:
        """The core of :meth:`prepare` / :meth:`aprepare`: yields a :class:`PlanAsk`, returns the attempt.

        Nothing the planner does reaches the user's body (:class:`~cachewise.CachePlanner` only
        reads it and copies what it marks; a user's planner is handed a deep copy by
        :class:`~cachewise.integrations._planner.UserPlanner`). ``retry``:
        the SDK is retrying the same call; it is planned the same way, but not counted again as an
        arrival in the planner's reuse statistics.
        """
        planned: Plan | None = None
        if body is not None and self.planner is not None:
            with fail_open("planner"):
                planned = yield PlanAsk(body, record=not retry)
        return self._prepared(body, planned)

    def prepare(self, body: Mapping[str, Any] | None, *, retry: bool = False) -> Prepared:
        """Plan ``body`` (synchronously) and start the clock for one attempt."""
        return drive(self.preparing(body, retry=retry), self.ask_planner)

    async def aprepare(self, body: Mapping[str, Any] | None, *, retry: bool = False) -> Prepared:
        """Like :meth:`prepare`, awaiting the planner's ``aplan``."""
        return await adrive(self.preparing(body, retry=retry), self.aask_planner)

    def ask_planner(self, ask: PlanAsk) -> Plan | None:
        """Answer a :class:`PlanAsk` with the planner's ``plan``."""
        return self.planner.plan(ask.request, record=ask.record) if self.planner is not None else None

    async def aask_planner(self, ask: PlanAsk) -> Plan | None:
        """Answer a :class:`PlanAsk` with the planner's ``aplan``."""
        return await self.planner.aplan(ask.request, record=ask.record) if self.planner is not None else None

    def unplanned(self, body: Mapping[str, Any] | None) -> Prepared:
        """Start an attempt that sends ``body`` exactly as written (no planning)."""
        return self._prepared(body, None)

    def _prepared(self, body: Mapping[str, Any] | None, planned: Plan | None) -> Prepared:
        try:
            started_at = self.clock()
            tags = {**self.tags, **current_tags()}
            new_body: Mapping[str, Any] | None = body
            if planned is not None and planned.added:
                new_body = planned.request
        except Exception as exc:  # a broken clock or tag: send the request as written, unplanned
            swallow("prepare", exc)
            started_at, tags, new_body, planned = datetime.now(UTC), dict(self.tags), body, None
        payload: bytes | None = None
        if new_body is not body and new_body is not None:
            try:
                payload = serialised(new_body)
            except Exception as exc:  # not JSON (a set, an object, NaN, a lone surrogate): send as written
                swallow("planner (body not serialisable)", exc)
                new_body, planned = body, None
        look, new_body, payload = self._look(new_body, payload, started_at, planned)
        if self.budget is not None and body is not None:
            self._check_budget(new_body or body, started_at, planned)
        return Prepared(
            original=body,
            body=new_body,
            started_at=started_at,
            started=time.perf_counter(),
            plan=planned,
            tags=tags,
            payload=payload,
            look=look,
        )

    def _look(
        self, body: Mapping[str, Any] | None, payload: bytes | None, at: datetime, plan: Plan | None = None
    ) -> tuple[Look | None, Mapping[str, Any] | None, bytes | None]:
        """The miss watch's look at the body to send, and the body with ``diagnostics`` if it adds them.

        With a plan of cachewise's own planner, the watch reuses the planner's reading of the body
        (its prefix hashes) and adds the planner's markers, instead of reading the body again.
        """
        if body is None:
            return None, body, payload
        with fail_open("miss diagnosis"):
            # cachewise's planner (not a user's object), reading the Claude API's positions (runs collapsed)
            ours = not isinstance(self.planner, UserPlanner) and getattr(self.planner, "collapse_runs", False)
            read = plan.prompt if plan is not None and ours else None
            added = [(b.position, b.ttl) for b in plan.added] if read is not None and plan is not None else []
            look, sent = self.misses.before(body, at, read, added)
            if sent is not body:
                return look, sent, serialised(sent)
            return look, body, payload
        return None, body, payload

    def _check_budget(self, body: Mapping[str, Any], at: datetime, plan: Plan | None) -> None:
        budget = self.budget
        assert budget is not None
        # The plan's counted tokens and breakpoints size the estimate; the planner's counter counts
        # a prompt the plan did not. BudgetExceeded (and UnpricedSpend: fail closed) reach the caller.
        # A budget written before check_request took plan= and counter= is called as before.
        if _takes_plan(budget.check_request):
            counter = getattr(self.planner, "counter", None)
            budget.check_request(body, book=self.book, at=at, plan=plan, counter=counter)
        else:
            budget.check_request(body, book=self.book, at=at)

    # -- after ----------------------------------------------------------------------------------

    def finish(
        self,
        prepared: Prepared,
        status: int,
        headers: Mapping[str, str],
        content: bytes,
        *,
        parsed: Any = _UNREAD,
    ) -> None:
        """Record a complete (non-streamed) Messages response.

        ``parsed``: ``content`` as the caller already read it (its JSON, ``None`` when it is not
        JSON), so that it is not read twice; by default the tracker reads it.
        """
        with fail_open("ledger record"):
            self._finish(prepared, status, headers, content, parsed)

    def _finish(
        self, prepared: Prepared, status: int, headers: Mapping[str, str], content: bytes, parsed: Any
    ) -> None:
        latency = (time.perf_counter() - prepared.started) * 1000
        if parsed is _UNREAD:
            parsed = read_reply(content)
        payload: Any = unwrap_envelope(parsed)
        request_id = headers.get("request-id")
        if request_id is None and isinstance(payload, Mapping):
            request_id = payload.get("request_id")
        if status >= 400 or (isinstance(payload, Mapping) and payload.get("type") == "error"):
            self._record_error(
                prepared, request_id, _error_type(payload) or f"http_{status}", latency, "messages"
            )
            return
        if not isinstance(payload, Mapping):
            payload = {}  # a 2xx reply that is not a JSON message: billed, usage unknown (unpriced)
        self._record(
            prepared,
            usage=Usage.read(payload.get("usage")),
            request_id=str(request_id or payload.get("id") or f"local_{uuid.uuid4().hex}"),
            message_id=payload.get("id"),
            model=str(payload.get("model") or prepared.model),
            latency_ms=latency,
            endpoint="messages",
            message=payload,
        )

    def fail(self, prepared: Prepared, exc: BaseException, *, request_id: str | None = None) -> None:
        """Record an attempt that got no response at all (connection error, timeout): an error row.

        ``request_id``: the local id the caller was told (the proxy's error body), else a new one.
        """
        latency = (time.perf_counter() - prepared.started) * 1000
        with fail_open("ledger record"):
            self._record_error(prepared, request_id, type(exc).__name__, latency, "messages")

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
            provider=self.platform,
        )
        self._emit(record)

    def _record(
        self,
        prepared: Prepared,
        *,
        usage: Usage | UsageReading,
        request_id: str,
        message_id: str | None,
        model: str,
        latency_ms: float,
        endpoint: str,
        ttft_ms: float | None = None,
        incomplete: bool = False,
        error_type: str | None = None,
        message: Any = None,
    ) -> None:
        body = prepared.body or {}
        miss = self._miss(prepared, usage, message, message_id) if not incomplete else {}
        record = CallRecord.priced(
            usage=usage,
            model=model,
            started_at=prepared.started_at,
            request_id=request_id,
            message_id=message_id,
            book=self.book,
            modifiers=Modifiers(
                speed=body.get("speed"),
                inference_geo=body.get("inference_geo"),
                platform=self.platform,
                regional=regional_endpoint(self.platform, prepared.model, self.location),
            ),
            status="incomplete" if incomplete else "ok",
            incomplete=incomplete,
            error_type=error_type,
            latency_ms=latency_ms,
            ttft_ms=ttft_ms,
            endpoint=endpoint,
            planned=prepared.plan is not None,
            breakpoints=_breakpoints_of(prepared.plan),
            prefix_hash=(prepared.plan.family or None) if prepared.plan is not None else None,
            tags=prepared.tags,
            provider=self.platform,
            **miss,
        )
        self._emit(record)
        reading = usage if isinstance(usage, UsageReading) else UsageReading(usage)
        if self.planner is not None and prepared.plan is not None and not incomplete and reading.trusted:
            with fail_open("planner observe"):
                self.planner.observe(prepared.plan, reading.usage, prepared.started_at)

    def _miss(
        self, prepared: Prepared, usage: Usage | UsageReading, message: Any, message_id: str | None
    ) -> dict[str, Any]:
        """The record's miss fields: the local diagnosis and the API's reason (nothing if unknown)."""
        reading = usage if isinstance(usage, UsageReading) else UsageReading(usage)
        if prepared.look is None or not reading.trusted:
            return {}
        with fail_open("miss diagnosis"):
            local, api = self.misses.after(
                prepared.look, reading.usage, message=message, message_id=message_id, at=self.clock()
            )
            out: dict[str, Any] = {}
            if local is not None:
                out["miss_reason"], out["miss_detail"] = local.reason, local.as_dict()
            if api is not None:
                out["api_miss_reason"], out["api_missed_tokens"] = api.reason, api.missed_tokens
            added = [b.position for b in prepared.plan.added] if prepared.plan is not None else []
            counted = _counted(prepared.plan)
            counts, memoised = counted if counted is not None else (None, frozenset[int]())
            out["replay"] = self.misses.replay(prepared.look, reading.usage, counts, added, memoised)
            return out
        return {}

    def _emit(self, record: CallRecord) -> None:
        """Hand ``record`` to every sink: this tracker's own, then those registered process-wide."""
        for sink in (*self.sinks, *registered()):
            sink.add(record)
        if self.on_record is not None:
            self.on_record(record)

    # -- batches ----------------------------------------------------------------------------------

    def record_batch_line(self, batch_id: str, line: bytes, started_at: datetime) -> None:
        with fail_open("batch result"):
            self._batch_line(batch_id, line, started_at)

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
            usage=Usage.read(message.get("usage")),
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
    """Feeds an SSE (or Bedrock event-stream) body through a tap and records the call once, when it ends."""

    def __init__(
        self, tracker: CallTracker, prepared: Prepared, status: int, headers: Mapping[str, str]
    ) -> None:
        self.tracker = tracker
        self.prepared = prepared
        self.status = status
        self.request_id = headers.get("request-id") or headers.get("x-amzn-requestid")
        bedrock = headers.get("content-type", "").startswith(EVENT_STREAM_TYPE)
        self.tap = EventStreamTap(prepared.started) if bedrock else SSETap(prepared.started)
        self._done = False

    def feed(self, chunk: bytes) -> None:
        # Called for every chunk of every stream: a plain ``try`` costs nothing until it catches,
        # where ``@fail_open`` as a decorator builds a new context manager on each call.
        try:
            self.tap.feed(chunk)
        except Exception as exc:
            swallow("stream tap", exc)

    def close(self, error: BaseException | None = None) -> None:
        """The stream ended: normally, by an error, or because the caller stopped reading."""
        if self._done:
            return
        self._done = True
        with fail_open("ledger record"):
            self._close(error)

    def _close(self, error: BaseException | None) -> None:
        tracker, prepared, tap = self.tracker, self.prepared, self.tap
        latency = (time.perf_counter() - prepared.started) * 1000
        if self.status >= 400:
            tracker._record_error(prepared, self.request_id, f"http_{self.status}", latency, "stream")
            return
        stream = tap.stream
        if not stream.seen_start:  # a 2xx answer is billed, but nothing says what it cost: unpriced
            tracker._record(
                prepared,
                usage=Usage.read(None),
                request_id=str(self.request_id or f"local_{uuid.uuid4().hex}"),
                message_id=None,
                model=prepared.model,
                latency_ms=latency,
                endpoint="stream",
                incomplete=True,
                error_type=tap.error_type or (type(error).__name__ if error else "no_message_start"),
            )
            return
        incomplete = not stream.complete or tap.error_type is not None or error is not None
        tracker._record(
            prepared,
            usage=stream.reading,
            request_id=str(self.request_id or stream.message_id or f"local_{uuid.uuid4().hex}"),
            message_id=stream.message_id,
            model=str(stream.model or prepared.model),
            latency_ms=latency,
            ttft_ms=tap.ttft_ms,
            endpoint="stream",
            incomplete=incomplete,
            error_type=tap.error_type or (type(error).__name__ if error is not None else None),
        )
