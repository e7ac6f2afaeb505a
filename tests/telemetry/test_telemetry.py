"""Spans after the GenAI semantic conventions, checked with OpenTelemetry's in-memory exporter:
from the wrapper (a sink, and ``instrument()`` for the whole process) and from the gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import cachewise
import cachewise.telemetry as telemetry
from cachewise.emulator import EmulatorServer
from cachewise.gateway import GatewayApp
from cachewise.integrations.proxy import create_proxy_app
from cachewise.integrations.tracker import CallTracker
from cachewise.ledger import Ledger
from tests.fixtures.servers import serve

KEY = "sk-ant-telemetry"
BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 16,
    "system": [
        {
            "type": "text",
            "text": "A long and stable operating manual. " * 500,
            "cache_control": {"type": "ephemeral"},
        }
    ],
    "messages": [{"role": "user", "content": "How do I reset my password?"}],
}


@pytest.fixture
def emulator(claude_emulator: EmulatorServer) -> EmulatorServer:
    return claude_emulator


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    made = TracerProvider()
    made.add_span_processor(SimpleSpanProcessor(exporter))
    yield made
    made.shutdown()


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite", spool_dir=tmp_path / "spool") as opened:
        yield opened


def _check_call_span(span: ReadableSpan, ledger: Ledger) -> None:
    ledger.flush()
    by_id = {r.request_id: r for r in ledger.calls()}
    attrs = dict(span.attributes or {})
    row = by_id[str(attrs["cachewise.request_id"])]
    assert span.kind == SpanKind.CLIENT
    assert span.name == f"chat {row.model}"
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "anthropic"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == row.model
    assert attrs["gen_ai.response.id"] == row.message_id
    u = row.usage
    assert attrs["gen_ai.usage.input_tokens"] == u.input_tokens + u.cache_read_input_tokens + (
        u.cache_creation_input_tokens
    )
    assert attrs["gen_ai.usage.output_tokens"] == u.output_tokens
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == u.cache_read_input_tokens
    assert attrs["gen_ai.usage.cache_creation.input_tokens"] == u.cache_creation_input_tokens
    assert row.cost is not None
    assert attrs["cachewise.cost_usd"] == pytest.approx(float(row.cost.cost_total), abs=1e-12)
    assert attrs["cachewise.savings_usd"] == pytest.approx(float(row.cost.savings), abs=1e-12)
    assert span.start_time == int(row.started_at.timestamp() * 1e9)
    assert span.end_time is not None and span.end_time >= span.start_time
    assert span.status.status_code == StatusCode.UNSET


def test_wrapped_client_sink_makes_one_span_per_call(
    emulator: EmulatorServer, ledger: Ledger, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    sink = telemetry.SpanSink(provider)
    raw = anthropic.Anthropic(api_key=KEY, base_url=emulator.base_url, max_retries=0)
    with cachewise.wrap(raw, ledger=ledger, planner=None, sinks=[sink]) as client:
        first = client.messages.create(**BODY)
        emulator.emulator.advance(5)
        with client.messages.stream(**BODY) as stream:
            stream.until_done()
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        _check_call_span(span, ledger)
    cached = [dict(s.attributes or {})["gen_ai.usage.cache_read.input_tokens"] for s in spans]
    assert cached[0] == 0 and cached[1] > 0  # the write, then the read
    assert first.usage.cache_creation_input_tokens > 0


def test_the_span_is_a_child_of_the_callers_span(
    emulator: EmulatorServer, ledger: Ledger, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    raw = anthropic.Anthropic(api_key=KEY, base_url=emulator.base_url, max_retries=0)
    sink = telemetry.SpanSink(provider)
    tracer = provider.get_tracer("app")
    with (
        cachewise.wrap(raw, ledger=ledger, planner=None, sinks=[sink]) as client,
        tracer.start_as_current_span("handle request") as outer,
    ):
        client.messages.create(**BODY)
    call, parent = exporter.get_finished_spans()
    assert parent.name == "handle request"
    assert call.parent is not None
    assert call.parent.span_id == outer.get_span_context().span_id
    assert call.context is not None and call.context.trace_id == outer.get_span_context().trace_id


def test_instrument_covers_every_tracker_and_errors_are_error_spans(
    emulator: EmulatorServer, ledger: Ledger, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    telemetry.instrument(provider)
    try:
        raw = anthropic.Anthropic(api_key=KEY, base_url=emulator.base_url, max_retries=0)
        with (
            cachewise.wrap(raw, ledger=ledger, planner=None) as client,
            pytest.raises(anthropic.NotFoundError),
        ):
            client.messages.create(**{**BODY, "model": "claude-nope-1"})
    finally:
        telemetry.uninstrument()
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code == StatusCode.ERROR
    assert dict(span.attributes or {})["error.type"] == "not_found_error"
    assert dict(span.attributes or {})["cachewise.status"] == "error"
    with cachewise.wrap(anthropic.Anthropic(api_key=KEY, base_url=emulator.base_url, max_retries=0)) as c:
        c.messages.create(**BODY)
    assert len(exporter.get_finished_spans()) == 1  # uninstrumented: no more spans


def test_gateway_spans_carry_the_callers_tags(
    emulator: EmulatorServer, ledger: Ledger, provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    tracker = CallTracker(ledger=ledger, sinks=[telemetry.SpanSink(provider)])
    running = serve(GatewayApp(create_proxy_app(tracker, upstream=emulator.base_url)))
    base = next(running)
    try:
        headers = {"x-cachewise-tags": "feature=search"}
        with anthropic.Anthropic(api_key=KEY, base_url=base, max_retries=0, default_headers=headers) as c:
            c.messages.create(**BODY)
            with c.messages.stream(**BODY) as stream:
                stream.until_done()
    finally:
        next(running, None)
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    for span in spans:
        _check_call_span(span, ledger)
        assert dict(span.attributes or {})["cachewise.tag.feature"] == "search"
        assert KEY not in json.dumps(dict(span.attributes or {}))


def test_configured_needs_a_real_tracer_provider(tmp_path: Path) -> None:
    code = (
        "import sys, cachewise.telemetry as t\n"
        "print(t.configured(), 'opentelemetry.sdk' in sys.modules)\n"
        "from opentelemetry import trace\n"
        "print(t.configured())\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "trace.set_tracer_provider(TracerProvider())\n"
        "print(t.configured())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "False", "True"]
