"""CPU the gateway adds per Messages request, in process (no sockets), for a 10k-token body.

Run: ``.venv/bin/python benchmarks/gateway_bench.py [--n 2000]``; against another checkout's code
(a before/after): ``PYTHONPATH=/path/to/checkout .venv/bin/python benchmarks/gateway_bench.py``.

Measures, per request, with three budgets in force (key, tag, model) and their spend cached:

* baseline: ``json.loads`` of the request body, which the proxy does for every Messages call anyway;
* ``caller_of``: reading the key id and the ``x-cachewise-tags`` header;
* ``GatewayBudgets.admit`` + ``add``: the whole admission check (caller, estimate, three budgets,
  the estimate held) and then the call's record (the estimate freed, the cost counted), as each
  request does; the spend is cached (no ledger query in the loop);
* ``ProxyMetrics.add`` and ``SpanSink.add`` (OpenTelemetry's no-op tracer, as when a sink is made
  with no provider set; and the SDK's provider with an in-memory exporter): what each recorded call
  costs the sinks. (``cachewise proxy`` makes no span sink at all when no provider is configured.)

Prints microseconds per call and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from starlette.requests import Request

import cachewise.telemetry as telemetry
from cachewise.budget import BudgetSpec
from cachewise.budget.config import key_id
from cachewise.gateway import GatewayBudgets, ProxyMetrics, caller_of
from cachewise.ledger import CallRecord, Ledger
from cachewise.pricing import PriceBook
from cachewise.usage import Usage

KEY = "sk-ant-bench"
BODY: dict[str, Any] = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1024,
    "system": [{"type": "text", "text": " ".join(["tok"] * 9990), "cache_control": {"type": "ephemeral"}}],
    "messages": [{"role": "user", "content": "hi"}],
}
HEADERS = [(b"x-api-key", KEY.encode()), (b"x-cachewise-tags", b"feature=search,team=a")]
CONTENT = json.dumps(BODY).encode()  # what the client sends; its length is the content-length header


def per_call(n: int, call: Callable[[], object]) -> float:
    call()
    start = time.perf_counter()
    for _ in range(n):
        call()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000)
    n = parser.parse_args().n
    content = json.dumps(BODY).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/messages",
        "headers": [*HEADERS, (b"content-length", str(len(CONTENT)).encode())],
        "query_string": b"",
    }
    request = Request(scope)
    record = CallRecord.priced(
        usage=Usage(input_tokens=20, cache_read_input_tokens=10000, output_tokens=300),
        model="claude-sonnet-4-6",
        started_at=datetime.now(UTC),
        request_id="req_bench",
        book=PriceBook.default(),
        tags={"feature": "search"},
    )
    with (
        TemporaryDirectory() as tmp,
        Ledger(Path(tmp) / "bench.sqlite", spool_dir=Path(tmp) / "spool") as ledger,
    ):
        budgets = GatewayBudgets(
            [
                BudgetSpec(name="key", window="day", limit=Decimal(100), api_key=f"bench:{key_id(KEY)}"),
                BudgetSpec(name="tag", window="day", limit=Decimal(100), tags={"feature": "search"}),
                BudgetSpec(name="model", window="month", limit=Decimal(100), model="claude-sonnet-4-6"),
            ],
            ledger,
            refresh_seconds=3600,
        )
        loop = asyncio.new_event_loop()
        assert loop.run_until_complete(budgets.admit(request, BODY)) is None  # first read: the ledger

        def admit() -> None:
            """One request's admission, then its record (which frees the estimate it held)."""
            coro = budgets.admit(request, BODY)
            try:
                coro.send(None)
            except StopIteration as done:
                assert done.value is None, "refused: the budgets should have room"
            else:
                raise AssertionError("admit awaited: the spend should be cached")
            budgets.add(record)

        metrics = ProxyMetrics()
        unset = telemetry.SpanSink()  # the global provider, never set here: OpenTelemetry's no-op spans
        figures = {
            "baseline json.loads(body)": per_call(n, lambda: json.loads(content)),
            "caller_of(headers)": per_call(n, lambda: caller_of(request.headers)),
            "GatewayBudgets.admit + add (3 budgets)": per_call(n, admit),
            "ProxyMetrics.add(record)": per_call(n, lambda: metrics.add(record)),
            "SpanSink.add (no provider set: no-op)": per_call(n, lambda: unset.add(record)),
        }
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

        provider = TracerProvider()
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        sink = telemetry.SpanSink(provider)

        def span() -> None:
            sink.add(record)
            exporter.clear()

        figures["SpanSink.add (SDK, in-memory exporter)"] = per_call(n, span)
        loop.close()
    base = figures["baseline json.loads(body)"]
    print(f"body: {len(content):,} bytes, n={n}")
    for label, micros in figures.items():
        print(f"{label:42s} {micros:9.1f} µs   {micros / base:6.2f}× baseline")


if __name__ == "__main__":
    main()
