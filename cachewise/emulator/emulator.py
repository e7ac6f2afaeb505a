"""The emulator: one object that answers Claude API requests and exposes its state.

:class:`Emulator` is transport-agnostic: :meth:`Emulator.handle` takes an
:class:`HttpRequest` and returns an :class:`HttpResponse` whose body is bytes or an
iterator of SSE chunks. The starlette app (``app.py``) and the in-process transports
(``transport.py``) are thin adapters around it, so every path runs the same code.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from ..api_rules import COUNT_TOKENS_REFUSED_TOOL_PREFIXES, MAX_BATCH_BYTES, MAX_BODY_BYTES
from ..errors import EmulatorError, PricingError
from ..pricing import PriceBook
from . import bedrock, vertex
from .admin import ADMIN_KEY_PREFIX, check_admin, serve
from .batches import BatchStore
from .bill import Bill, Endpoint
from .catalog import Catalog, paginate
from .clock import Clock
from .diagnostics import Diagnostics, Fingerprint, previous_id
from .engine import CacheEngine, Ticket
from .errors import ApiError, StreamCut, error_body, invalid, new_id, not_found
from .faults import Fault, Faults
from .platform import PlatformCall
from .positions import DEFAULT_RUN_MARKERS, RUN_MARKERS, RunMarkers, layout
from .responses import Reply, generate
from .streaming import sse_events
from .validation import check_batch, check_count_tokens, check_messages, parse_json

__all__ = ["MAX_BATCH_BYTES", "MAX_BODY_BYTES", "Emulator", "HttpRequest", "HttpResponse"]

ORGANIZATION_ID = "6e2b6a53-0000-4000-8000-0000000e1a70"
_PRE_RESPONSE = {
    "rate_limit": (
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit",
    ),
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "api_error": (500, "api_error", "Internal server error"),
}
_NOT_SEEDED = frozenset({"stream", "max_tokens", "stop_sequences", "metadata", "diagnostics"})
# The prompt-caching docs: Sonnet 5 rejects mid-conversation system messages.
_NO_SYSTEM_ROLE = frozenset({"claude-sonnet-5"})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A request as the emulator sees it; header names are lower-case."""

    method: str
    path: str
    query: Sequence[tuple[str, str]] = ()
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""
    base_url: str = "http://127.0.0.1/"
    regional: bool = False  # a Bedrock / Vertex AI regional endpoint (platform.py): billed with its premium


@dataclass(slots=True)
class HttpResponse:
    status: int
    headers: dict[str, str]
    body: bytes = b""
    stream: Iterator[bytes] | None = None


@dataclass(slots=True)
class _Prepared:
    ticket: Ticket
    message: dict[str, Any]
    reply: Reply
    regional: bool = False


def _json(status: int, data: Any, headers: dict[str, str]) -> HttpResponse:
    headers = {**headers, "content-type": "application/json"}
    return HttpResponse(status, headers, json.dumps(data, separators=(",", ":")).encode())


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"{name}: Input should be a valid integer")
    return value


class Emulator:
    """A Claude-compatible API with a real prompt cache, a virtual clock, a bill and faults.

    ``keys`` maps API keys to workspace ids; an unknown key gets a workspace of its own
    derived from the key, unless ``strict_keys`` is set (then it is a 401).
    ``batch_delay`` is how long (emulator seconds) a batch stays ``in_progress``.
    ``run_markers`` is where a ``cache_control`` marker on a block inside a run of
    ``tool_use``/``tool_result`` blocks writes: ``"block"`` (default; the prefix ending at
    that block) or ``"run_end"`` (the end of the run); docs/emulator.md, "Markers inside a run".
    """

    def __init__(
        self,
        *,
        book: PriceBook | None = None,
        start: datetime | None = None,
        real_time: bool = False,
        keys: Mapping[str, str] | None = None,
        strict_keys: bool = False,
        batch_delay: float = 0.0,
        run_markers: RunMarkers = DEFAULT_RUN_MARKERS,
    ) -> None:
        self.run_markers: RunMarkers = DEFAULT_RUN_MARKERS
        self.set_run_markers(run_markers)
        self._initial_run_markers: RunMarkers = self.run_markers
        self.book = book or PriceBook.default()
        self.clock = Clock(start, real=real_time)
        self.keys: dict[str, str] = dict(keys or {})
        self.strict_keys = strict_keys
        self.batch_delay = batch_delay
        self.engine = CacheEngine()
        self.catalog = Catalog(self.book)
        self.faults = Faults()
        self.billing = Bill(self.book)
        self.batches = BatchStore(self._run_batch_request)
        self.diagnostics = Diagnostics()
        self._in_flight = 0
        self._flight = threading.Condition()

    # -- the Python control API (mirrored over HTTP under /_emulator) -------------------------

    def now(self) -> datetime:
        return self.clock.now()

    def advance(self, seconds: float) -> datetime:
        """Move the virtual clock forward; batches due by then are processed."""
        now = self.clock.advance(seconds)
        self.batches.tick(now)
        return now

    def reset(self) -> None:
        """Forget every entry, bill row, batch and fault; reset the clock and ``run_markers``."""
        self.run_markers = self._initial_run_markers
        self.engine.reset()
        self.billing.reset()
        self.batches.reset()
        self.diagnostics.reset()
        self.faults.clear()
        self.clock.reset()

    def set_run_markers(self, run_markers: str) -> None:
        """Switch the reading of markers inside a run (``"block"`` or ``"run_end"``) until the next reset."""
        for choice in RUN_MARKERS:
            if run_markers == choice:
                self.run_markers = choice
                return
        raise EmulatorError(f"run_markers: expected one of {', '.join(RUN_MARKERS)}, not {run_markers!r}")

    def set_workspace(self, key: str, workspace: str) -> None:
        self.keys[key] = workspace

    def state(self) -> dict[str, Any]:
        now = self.now()
        self.batches.tick(now)
        return {
            "now": now.isoformat(),
            "run_markers": self.run_markers,
            "entries": [e.as_dict() for e in self.engine.entries(now)],
        }

    def bill(self) -> list[dict[str, Any]]:
        return [row.as_dict() for row in self.billing.rows()]

    def bill_total(self) -> Decimal:
        return self.billing.total()

    def wait_in_flight(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` requests have started but not begun their response (concurrency tests)."""
        with self._flight:
            return self._flight.wait_for(lambda: self._in_flight >= count, timeout)

    # -- dispatch --------------------------------------------------------------------------

    def handle(self, request: HttpRequest) -> HttpResponse:
        request_id = new_id("req_011C")
        headers = {"request-id": request_id, "anthropic-organization-id": ORGANIZATION_ID}
        try:
            if request.path.startswith("/_emulator/"):
                return self._control(request, headers)
            for platform in (bedrock, vertex):
                call = platform.match(request.method, request.path, request.headers, request.body)
                if call is not None:
                    return self._platform(call, request, request_id, headers)
            if request.path.startswith("/v1/organizations/"):  # the Admin API (admin.py)
                check_admin(request.headers, request.path)
                self._fault("admin", streaming=False)
                return _json(200, serve(**self._admin_args(request)), headers)
            workspace = self._workspace(request.headers)
            headers["anthropic-workspace-id"] = workspace
            return self._route(request, workspace, request_id, headers)
        except ApiError as exc:
            return _json(exc.status, exc.body(request_id), {**headers, **exc.headers})
        except EmulatorError as exc:
            return _json(400, error_body("invalid_request_error", str(exc), request_id), headers)

    def _platform(
        self, call: PlatformCall, request: HttpRequest, request_id: str, headers: dict[str, str]
    ) -> HttpResponse:
        """A Bedrock / Vertex AI call (bedrock.py, vertex.py), served as the request it stands for."""
        incoming = {**request.headers, **({"x-api-key": call.key} if call.key else {})}
        workspace = self._workspace(incoming)
        headers["anthropic-workspace-id"] = workspace
        inner = HttpRequest(
            "POST", call.path, request.query, incoming, call.body, request.base_url, call.regional
        )
        answer = self._route(inner, workspace, request_id, headers)
        if answer.stream is not None:
            answer.stream = call.frames(answer.stream)
        elif answer.status == 200:
            answer.body = call.message(answer.body)
        answer.headers = call.headers(answer.headers)
        return answer

    def _workspace(self, headers: Mapping[str, str]) -> str:
        key = headers.get("x-api-key")
        auth = headers.get("authorization", "")
        if not key and auth.lower().startswith("bearer "):
            key = auth[7:].strip()
        if not key:
            raise ApiError(401, "authentication_error", "x-api-key header is required")
        if key.startswith(ADMIN_KEY_PREFIX):
            raise ApiError(401, "authentication_error", "an Admin API key cannot call this endpoint")
        workspace = self.keys.get(key)
        if workspace is None:
            if self.strict_keys:
                raise ApiError(401, "authentication_error", "invalid x-api-key")
            workspace = "wrkspc_emu" + hashlib.sha256(key.encode()).hexdigest()[:20]
        wanted = headers.get("anthropic-workspace-id")
        if wanted and wanted != workspace:
            raise ApiError(
                403, "permission_error", f"this API key belongs to workspace {workspace}, not {wanted}"
            )
        return workspace

    def _admin_args(self, request: HttpRequest) -> dict[str, Any]:
        return {
            "method": request.method,
            "path": request.path,
            "query": request.query,
            "rows": self.billing.rows(),
            "now": self.now(),
            "headers": request.headers,
        }

    @staticmethod
    def api_key_id(headers: Mapping[str, str]) -> str:
        """The id the usage report shows for a request's API key (a hash: keys are never kept)."""
        key = headers.get("x-api-key") or headers.get("authorization", "")[7:].strip()
        return "apikey_emu" + hashlib.sha256(key.encode()).hexdigest()[:20]

    def _route(
        self, request: HttpRequest, workspace: str, request_id: str, headers: dict[str, str]
    ) -> HttpResponse:
        method, path = request.method.upper(), request.path.rstrip("/")
        parts = path.split("/")
        if path == "/v1/messages" and method == "POST":
            return self._messages(request, workspace, request_id, headers)
        if path == "/v1/messages/count_tokens" and method == "POST":
            return self._count_tokens(request, headers)
        if path == "/v1/models" and method == "GET":
            self._fault("models", streaming=False)
            return _json(200, self._models(request), headers)
        if len(parts) == 4 and path.startswith("/v1/models/") and method == "GET":
            self._fault("models", streaming=False)
            entry = self.catalog.resolve(parts[3], self.now(), for_inference=False)
            return _json(200, self.catalog.info(entry, self.now()), headers)
        if path.startswith("/v1/messages/batches"):
            self._fault("batches", streaming=False)
            return self._batches(request, workspace, parts, method, headers)
        raise not_found(f"{method} {request.path} is not an endpoint of this API")

    def _fault(self, endpoint: str, *, streaming: bool) -> Fault | None:
        fault = self.faults.take(endpoint, streaming=streaming)
        if fault is not None and fault.kind in _PRE_RESPONSE:
            status, type_, message = _PRE_RESPONSE[fault.kind]
            extra: dict[str, str] = {}
            if fault.kind == "rate_limit":
                extra["retry-after"] = str(max(1, int(-(-fault.retry_after // 1))))
                if fault.retry_after < 1:
                    extra["retry-after-ms"] = str(int(fault.retry_after * 1000))
            raise ApiError(status, type_, fault.message or message, extra)
        return fault

    # -- messages --------------------------------------------------------------------------

    def _parse(self, request: HttpRequest, limit: int) -> dict[str, Any]:
        if len(request.body) > limit:
            raise ApiError(
                413, "request_too_large", f"Request exceeds the maximum allowed number of bytes ({limit})."
            )
        return parse_json(request.body)

    def _messages(
        self, request: HttpRequest, workspace: str, request_id: str, headers: dict[str, str]
    ) -> HttpResponse:
        body = self._parse(request, MAX_BODY_BYTES)
        streaming = body.get("stream") is True
        fault = self._fault("messages", streaming=streaming)
        start = self.now()
        prepared = self._prepare(body, workspace, start, request_id, batch=False)
        prepared.regional = request.regional
        # In flight = started (usage computed), response not begun (writes not yet readable).
        with self._flight:
            self._in_flight += 1
            self._flight.notify_all()
        try:
            if fault is not None and fault.kind == "delay":
                time.sleep(fault.seconds)
            if fault is not None and fault.kind == "hold" and fault.gate is not None:
                fault.gate.wait(60)
            self._finish(
                prepared, "stream" if streaming else "messages", api_key_id=self.api_key_id(request.headers)
            )
        finally:
            with self._flight:
                self._in_flight -= 1
        if not streaming:
            return _json(200, prepared.message, headers)
        cut = fault if fault is not None and fault.kind in ("stream_cut", "stream_error") else None
        stream_headers = {
            **headers,
            "content-type": "text/event-stream; charset=utf-8",
            "cache-control": "no-cache",
        }
        return HttpResponse(200, stream_headers, stream=self._stream(prepared, cut, request_id))

    def _stream(self, prepared: _Prepared, fault: Fault | None, request_id: str) -> Iterator[bytes]:
        for index, chunk in enumerate(sse_events(prepared.message, prepared.reply)):
            if fault is not None and index == fault.after_events:
                self.billing.mark_incomplete(request_id)
                if fault.kind == "stream_cut":
                    raise StreamCut(f"connection dropped after {index} events (fault injection)")
                error = error_body(fault.error_type, fault.message or "Overloaded", request_id)
                yield f"event: error\ndata: {json.dumps(error)}\n\n".encode()
                return
            yield chunk

    def _model(self, body: Mapping[str, Any], start: datetime) -> str:
        model = body.get("model")
        if model is None:
            raise invalid("model: Field required")
        if not isinstance(model, str):
            raise invalid("model: Input should be a valid string")
        return self.catalog.resolve(model, start, for_inference=True).id

    def _prepare(
        self, body: Mapping[str, Any], workspace: str, start: datetime, request_id: str, *, batch: bool
    ) -> _Prepared:
        check_messages(body)
        asked, previous = previous_id(body) if not batch else (False, None)
        max_tokens = _int(body["max_tokens"], "max_tokens")
        if max_tokens < 0:
            raise invalid("max_tokens: Input should be greater than or equal to 0")
        model = self._model(body, start)
        entry = self.book.resolve(model)
        if entry.max_output_tokens is not None and max_tokens > entry.max_output_tokens:
            raise invalid(
                f"max_tokens: {max_tokens} > {entry.max_output_tokens}, which is the maximum allowed "
                f"number of output tokens for {model}"
            )
        raw_thinking = body.get("thinking")
        thinking: Mapping[str, Any] = raw_thinking if isinstance(raw_thinking, Mapping) else {}
        if max_tokens == 0:
            self._check_prewarm(body, thinking, batch=batch)
        elif thinking.get("type") == "enabled":
            budget = _int(thinking.get("budget_tokens"), "thinking.budget_tokens")
            if budget >= max_tokens:
                raise invalid("max_tokens must be greater than thinking.budget_tokens")
        if model in _NO_SYSTEM_ROLE and any(
            isinstance(m, Mapping) and m.get("role") == "system" for m in body.get("messages") or []
        ):
            raise invalid("role 'system' is not supported on this model")
        geo = body.get("inference_geo") or "global"
        speed = body.get("speed") or "standard"
        if geo not in ("global", "us"):
            raise invalid("inference_geo: Input should be 'global' or 'us'")
        if speed not in ("standard", "fast"):
            raise invalid("speed: Input should be 'standard' or 'fast'")
        try:
            if geo == "us":
                self.book.rates(model, start, us_residency=True)
        except PricingError:
            raise invalid(f"inference_geo: data residency is not available for {model}") from None
        if speed == "fast" and not batch:
            try:
                self.book.rates(model, start, fast=True)
            except PricingError:
                speed = "standard"  # fast-mode docs: served standard, no error
        elif batch:
            speed = "standard"
        # The salt sees the speed the request actually runs at (the speed row of the invalidation table).
        plan = layout({**body, "speed": speed}, model, run_markers=self.run_markers)
        minimum = self.book.min_cache_tokens(model, start).tokens
        ticket = self.engine.begin(
            plan, workspace=workspace, start=start, request_id=request_id, min_tokens=minimum
        )
        # The reply depends on the prompt, not on how it is cut: max_tokens and stop
        # sequences only truncate the same text.
        seed_body = {k: v for k, v in body.items() if k not in _NOT_SEEDED}
        seed = hashlib.sha256(json.dumps(seed_body, sort_keys=True).encode()).digest()
        reply = generate(body, seed) if max_tokens > 0 else Reply([], "max_tokens", None, 0)
        usage = {
            "input_tokens": ticket.input_tokens,
            "cache_creation_input_tokens": ticket.cache_creation_input_tokens,
            "cache_read_input_tokens": ticket.cache_read_input_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": ticket.ephemeral_5m_input_tokens,
                "ephemeral_1h_input_tokens": ticket.ephemeral_1h_input_tokens,
            },
            "output_tokens": reply.output_tokens,
            "server_tool_use": None,
            "service_tier": "batch" if batch else "standard",
            "inference_geo": geo,
            "speed": speed,
        }
        message = {
            "id": new_id("msg_011C"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": reply.content,
            "stop_reason": reply.stop_reason,
            "stop_sequence": reply.stop_sequence,
            "usage": usage,
        }
        cached = ticket.cache_read_input_tokens + ticket.cache_creation_input_tokens
        fingerprint = Fingerprint.of(body, model, speed, cached)
        if asked:
            message["diagnostics"] = self.diagnostics.answer(previous, fingerprint)
        if not batch:
            self.diagnostics.remember(str(message["id"]), fingerprint)
        return _Prepared(ticket, message, reply)

    @staticmethod
    def _check_prewarm(body: Mapping[str, Any], thinking: Mapping[str, Any], *, batch: bool) -> None:
        """Where ``max_tokens: 0`` is refused (pre-warming docs). The texts are ours (none is published)."""
        if batch:
            raise invalid("max_tokens: 0 (cache pre-warming) is not supported in Message Batches")
        if body.get("stream") is True:
            raise invalid("max_tokens: 0 (cache pre-warming) cannot be used with stream: true")
        if thinking.get("type") == "enabled":
            raise invalid("max_tokens: 0 (cache pre-warming) cannot be used with thinking.type: 'enabled'")
        output_config = body.get("output_config")
        if isinstance(output_config, Mapping) and output_config.get("format") is not None:
            raise invalid("max_tokens: 0 (cache pre-warming) cannot be used with output_config.format")
        choice = body.get("tool_choice")
        if isinstance(choice, Mapping) and choice.get("type") in ("any", "tool"):
            raise invalid(
                f"max_tokens: 0 (cache pre-warming) cannot be used with tool_choice.type: '{choice['type']}'"
            )

    def _finish(
        self,
        prepared: _Prepared,
        endpoint: Endpoint,
        batch_id: str | None = None,
        custom_id: str | None = None,
        *,
        api_key_id: str | None = None,
    ) -> None:
        """The response begins: the writes become readable and the request is billed."""
        ticket = prepared.ticket
        self.engine.commit(ticket)
        self.billing.record(
            request_id=ticket.request_id,
            message_id=prepared.message["id"],
            time=ticket.start,
            model=ticket.model,
            workspace=ticket.workspace,
            endpoint=endpoint,
            usage=prepared.message["usage"],
            batch_id=batch_id,
            custom_id=custom_id,
            regional=prepared.regional,
            api_key_id=api_key_id,
        )

    def _run_batch_request(
        self, params: Mapping[str, Any], workspace: str, at: datetime, custom_id: str, batch_id: str
    ) -> dict[str, Any]:
        if params.get("stream") is True:
            raise invalid("stream: streaming is not supported in Message Batches")
        prepared = self._prepare(params, workspace, at, new_id("req_011C"), batch=True)
        self._finish(prepared, "batch", batch_id, custom_id)
        return prepared.message

    # -- count_tokens ----------------------------------------------------------------------

    def _count_tokens(self, request: HttpRequest, headers: dict[str, str]) -> HttpResponse:
        body = self._parse(request, MAX_BODY_BYTES)
        fault = self._fault("count_tokens", streaming=False)
        if fault is not None and fault.kind == "delay":
            time.sleep(fault.seconds)
        if fault is not None and fault.kind == "hold" and fault.gate is not None:
            fault.gate.wait(60)
        check_count_tokens(body)
        model = self._model(body, self.now())
        for i, tool in enumerate(body.get("tools") or []):
            kind = str(tool.get("type", "")) if isinstance(tool, Mapping) else ""
            if kind.startswith(COUNT_TOKENS_REFUSED_TOOL_PREFIXES):
                raise invalid(f"tools.{i}: server tools are not supported by count_tokens")
        for i, message in enumerate(body.get("messages") or []):
            content = message.get("content") if isinstance(message, Mapping) else None
            for j, block in enumerate(content if isinstance(content, list) else []):
                source = block.get("source") if isinstance(block, Mapping) else None
                if isinstance(source, Mapping) and source.get("type") in ("url", "file"):
                    raise invalid(
                        f"messages.{i}.content.{j}.source: count_tokens needs base64 sources, "
                        f"not {source['type']}"
                    )
        # Never cached, never billed: the same layout billing uses, total only (the token-counting docs).
        total = layout(body, model, run_markers=self.run_markers).total_tokens
        return _json(200, {"input_tokens": total}, headers)

    # -- models ----------------------------------------------------------------------------

    def _models(self, request: HttpRequest) -> dict[str, Any]:
        args: dict[str, str] = {}
        lifecycles: list[str] = []
        for key, value in request.query:
            if key in ("lifecycle", "lifecycle[]"):
                lifecycles.extend(v for v in value.split(",") if v)
            else:
                args[key] = value
        try:
            limit = int(args.get("limit", "20"))
        except ValueError:
            raise invalid("limit: Input should be a valid integer") from None
        return self.catalog.page(
            self.now(),
            after_id=args.get("after_id"),
            before_id=args.get("before_id"),
            limit=limit,
            lifecycles=lifecycles,
        )

    # -- batches ---------------------------------------------------------------------------

    def _batches(
        self, request: HttpRequest, workspace: str, parts: list[str], method: str, headers: dict[str, str]
    ) -> HttpResponse:
        now = self.now()
        # parts: ["", "v1", "messages", "batches", id?, action?]
        if len(parts) == 4:
            if method == "POST":
                body = self._parse(request, MAX_BATCH_BYTES)
                check_batch(body)
                batch = self.batches.create(body, workspace, now, self.batch_delay, request.base_url)
                return _json(200, batch.as_dict(), headers)
            if method == "GET":
                args = dict(request.query)
                batches = self.batches.listing(workspace, now)
                try:
                    limit = int(args.get("limit", "20"))
                except ValueError:
                    raise invalid("limit: Input should be a valid integer") from None
                page = paginate(
                    [b.as_dict() for b in batches],
                    [b.id for b in batches],
                    args.get("after_id"),
                    args.get("before_id"),
                    limit,
                )
                return _json(200, page, headers)
        if len(parts) == 5:
            if method == "GET":
                return _json(200, self.batches.get(parts[4], workspace, now).as_dict(), headers)
            if method == "DELETE":
                return _json(200, self.batches.delete(parts[4], workspace, now), headers)
        if len(parts) == 6 and parts[5] == "cancel" and method == "POST":
            return _json(200, self.batches.cancel(parts[4], workspace, now).as_dict(), headers)
        if len(parts) == 6 and parts[5] == "results" and method == "GET":
            batch = self.batches.get(parts[4], workspace, now)
            if batch.ended_at is None:
                raise invalid(f"message batch {batch.id} is still processing; results are not ready")
            return HttpResponse(200, {**headers, "content-type": "application/binary"}, batch.jsonl())
        raise not_found(f"{method} {request.path} is not an endpoint of this API")

    # -- control ---------------------------------------------------------------------------

    def _control(self, request: HttpRequest, headers: dict[str, str]) -> HttpResponse:
        method, name = request.method.upper(), request.path.removeprefix("/_emulator/").rstrip("/")
        data: Any = None
        if request.body:
            try:
                data = json.loads(request.body)
            except (ValueError, RecursionError):
                raise EmulatorError(f"/_emulator/{name}: the body is not valid JSON") from None
        if name == "advance" and method == "POST":
            if not isinstance(data, Mapping) or not isinstance(data.get("seconds"), int | float):
                raise EmulatorError('/_emulator/advance: expected {"seconds": N}')
            try:
                now = self.advance(float(data["seconds"]))
            except ValueError as exc:
                raise EmulatorError(f"/_emulator/advance: {exc}") from exc
            return _json(200, {"now": now.isoformat()}, headers)
        if name == "reset" and method == "POST":
            self.reset()
            return _json(200, {"now": self.now().isoformat()}, headers)
        if name == "state" and method == "GET":
            return _json(200, self.state(), headers)
        if name == "bill" and method == "GET":
            return _json(200, {"rows": self.bill(), "total": f"{self.bill_total().normalize():f}"}, headers)
        if name == "faults":
            if method == "POST":
                items = data if isinstance(data, list) else [data]
                faults = [Fault.from_json(item, f"faults.{i}") for i, item in enumerate(items)]
                for fault in faults:
                    self.faults.push(fault)
                return _json(200, {"queued": len(faults)}, headers)
            if method == "GET":
                return _json(200, {"faults": [f.as_dict() for f in self.faults.pending()]}, headers)
            if method == "DELETE":
                self.faults.clear()
                return _json(200, {"faults": []}, headers)
        if name == "config" and method == "POST":
            if not isinstance(data, Mapping) or set(data) != {"run_markers"}:
                raise EmulatorError('/_emulator/config: expected {"run_markers": "block" | "run_end"}')
            try:
                self.set_run_markers(data["run_markers"])
            except EmulatorError as exc:
                raise EmulatorError(f"/_emulator/config: {exc}") from None
            return _json(200, {"run_markers": self.run_markers}, headers)
        if name == "keys" and method == "POST":
            if not isinstance(data, Mapping) or not all(isinstance(v, str) for v in data.values()):
                raise EmulatorError('/_emulator/keys: expected {"api-key": "workspace-id", ...}')
            for key, workspace in data.items():
                self.set_workspace(str(key), workspace)
            return _json(200, {"keys": len(self.keys)}, headers)
        raise ApiError(404, "not_found_error", f"{method} {request.path} is not a control endpoint")
