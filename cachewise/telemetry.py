"""OpenTelemetry spans for the calls cachewise records, after the GenAI semantic conventions.

:class:`SpanSink` is a record sink (:mod:`cachewise.sinks`): each :class:`~cachewise.ledger.CallRecord`
becomes one ``CLIENT`` span named ``chat {model}``, from the call's start to its last byte, with the
attributes docs/observability.md lists (``gen_ai.*`` from the conventions, ``cachewise.*`` for
cost and planning). The span is made where the record is handed over, so it is a child of the span
current there (the caller's, in the wrapper; the server's, when the proxy app is instrumented).

* ``instrument()`` registers one sink for the whole process: every wrapped client and the proxy.
* ``configured()`` says whether a tracer provider is set, without importing OpenTelemetry when the
  application has not (``cachewise proxy`` instruments itself only then).

OpenTelemetry is the optional extra ``otel`` (``opentelemetry-api``); nothing here is imported by
``import cachewise``, and this module imports it only when a sink is made.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from .sinks import register, unregister

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider

    from .ledger.record import CallRecord

__all__ = ["OPERATION", "PROVIDER", "SpanSink", "configured", "instrument", "uninstrument"]

#: ``gen_ai.operation.name`` of a Messages call, and ``gen_ai.provider.name`` (docs/observability.md).
OPERATION = "chat"
PROVIDER = "anthropic"

_installed: SpanSink | None = None


def attributes(record: CallRecord) -> dict[str, Any]:
    """The span attributes of ``record`` (GenAI conventions, then cachewise's own)."""
    u = record.usage
    attrs: dict[str, Any] = {
        "gen_ai.operation.name": OPERATION,
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.system": PROVIDER,  # the name before gen_ai.provider.name, still read by many backends
        "gen_ai.request.model": record.model,
        "gen_ai.response.model": record.model,
        # The Anthropic conventions count every prompt token as input, cached ones included.
        "gen_ai.usage.input_tokens": u.prompt_tokens,
        "gen_ai.usage.output_tokens": u.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": u.cache_read_input_tokens,
        "gen_ai.usage.cache_creation.input_tokens": u.cache_creation_input_tokens,
        "cachewise.request_id": record.request_id,
        "cachewise.endpoint": record.endpoint,
        "cachewise.status": record.status,
        "cachewise.planned": record.planned,
        "cachewise.breakpoints": len(record.breakpoints),
        "cachewise.usage.uncached_input_tokens": u.input_tokens,
        "cachewise.usage.ephemeral_5m_input_tokens": u.ephemeral_5m_input_tokens,
        "cachewise.usage.ephemeral_1h_input_tokens": u.ephemeral_1h_input_tokens,
    }
    if record.message_id:
        attrs["gen_ai.response.id"] = record.message_id
    if record.cost is not None:
        attrs["cachewise.cost_usd"] = float(record.cost.cost_total)
        attrs["cachewise.cost_no_cache_usd"] = float(record.cost.cost_no_cache)
        attrs["cachewise.savings_usd"] = float(record.cost.savings)
    else:
        attrs["cachewise.cost_error"] = record.cost_error or "not priced"
    if record.ttft_ms is not None:
        attrs["cachewise.ttft_ms"] = record.ttft_ms
    if record.error_type:
        attrs["error.type"] = record.error_type
    for key, value in record.tags.items():
        attrs[f"cachewise.tag.{key}"] = value
    return attrs


class SpanSink:
    """Turns each record into a span on ``tracer_provider`` (default: the global one)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        from importlib.metadata import version

        from opentelemetry import trace

        self._trace = trace
        self.tracer = trace.get_tracer("cachewise", version("cachewise"), tracer_provider=tracer_provider)

    def add(self, record: CallRecord) -> None:
        trace = self._trace
        start = int(record.started_at.timestamp() * 1e9)
        end = start + int((record.latency_ms or 0.0) * 1e6)
        span = self.tracer.start_span(
            f"{OPERATION} {record.model}",
            kind=trace.SpanKind.CLIENT,
            attributes=attributes(record),
            start_time=start,
        )
        if record.status == "error" or record.error_type:
            span.set_status(trace.Status(trace.StatusCode.ERROR, record.error_type or record.status))
        span.end(end_time=end)


def configured() -> bool:
    """A tracer provider is set (and OpenTelemetry already imported by the application)."""
    trace = sys.modules.get("opentelemetry.trace")
    if trace is None:
        return False
    provider = trace.get_tracer_provider()
    return not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider)


def instrument(tracer_provider: TracerProvider | None = None) -> SpanSink:
    """Send a span for every call recorded in this process (once; a second call replaces the first)."""
    global _installed
    if _installed is not None:
        unregister(_installed)
    _installed = SpanSink(tracer_provider)
    register(_installed)
    return _installed


def uninstrument() -> None:
    """Stop the spans :func:`instrument` started."""
    global _installed
    if _installed is not None:
        unregister(_installed)
        _installed = None
