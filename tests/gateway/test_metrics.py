"""``/metrics`` scraped and parsed as Prometheus text, after calls through the gateway; ``/healthz``."""

from __future__ import annotations

import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import anthropic
import httpx2
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cachewise.budget import BudgetSpec
from cachewise.emulator import EmulatorServer
from cachewise.gateway import ProxyMetrics
from cachewise.ledger import Ledger

from .conftest import BODY, Gateway

MARKED = {"type": "text", "text": BODY["system"], "cache_control": {"type": "ephemeral"}}
CACHED = {**BODY, "system": [MARKED]}


def scrape(base_url: str) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    reply = httpx2.get(f"{base_url}/metrics")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/plain")
    samples: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return samples


def test_metrics_count_calls_tokens_cost_and_refusals(
    gateway: Gateway, emulator: EmulatorServer, ledger: Ledger
) -> None:
    metrics = ProxyMetrics()
    limit = BudgetSpec(name="haiku-cap", window="day", model="claude-haiku-4-5", limit=Decimal("0.0001"))
    base = gateway([limit], metrics=metrics)
    with anthropic.Anthropic(api_key="sk-ant-metrics", base_url=base, max_retries=0) as client:
        for _ in range(2):
            client.messages.create(**CACHED)
            emulator.emulator.advance(5)
        with client.messages.stream(**CACHED) as stream:
            stream.until_done()
        try:
            client.messages.create(**{**BODY, "model": "claude-haiku-4-5"})
        except anthropic.RateLimitError:
            pass
    ledger.flush()
    rows = ledger.calls()
    assert len(rows) == 3
    got = scrape(base)
    model = rows[0].model
    calls = got["cachewise_calls_total"]
    assert calls[(("endpoint", "messages"), ("model", model), ("status", "ok"))] == 2
    assert calls[(("endpoint", "stream"), ("model", model), ("status", "ok"))] == 1
    tokens = got["cachewise_tokens_total"]
    for kind, field in (
        ("input", "input_tokens"),
        ("cache_read", "cache_read_input_tokens"),
        ("cache_creation", "cache_creation_input_tokens"),
        ("output", "output_tokens"),
    ):
        expected = sum(getattr(r.usage, field) for r in rows)
        assert tokens.get((("kind", kind), ("model", model)), 0) == expected, kind
    total = sum(r.cost.cost_total for r in rows if r.cost is not None)
    assert abs(got["cachewise_cost_usd_total"][(("model", model),)] - float(total)) < 1e-9
    saved = sum(r.cost.savings for r in rows if r.cost is not None)
    assert saved > 0
    assert abs(got["cachewise_savings_usd"][(("model", model),)] - float(saved)) < 1e-9
    uncached = sum(r.cost.cost_no_cache for r in rows if r.cost is not None)
    assert abs(got["cachewise_cost_no_cache_usd_total"][(("model", model),)] - float(uncached)) < 1e-9
    read = sum(r.usage.cache_read_input_tokens for r in rows)
    prompt = sum(r.usage.prompt_tokens for r in rows)
    assert abs(got["cachewise_cache_hit_ratio"][(("model", model),)] - read / prompt) < 1e-12
    latency = got["cachewise_upstream_latency_seconds_count"]
    assert latency[(("endpoint", "messages"), ("model", model))] == 2
    assert got["cachewise_budget_refusals_total"][(("budget", "haiku-cap"), ("reason", "limit"))] == 1
    assert got["cachewise_budget_limit_usd"][(("budget", "haiku-cap"),)] == 0.0001
    assert got["cachewise_budget_spent_usd"][(("budget", "haiku-cap"),)] == 0
    requests = got["cachewise_proxy_requests_total"]
    assert requests[(("route", "messages"), ("status", "200"))] == 3
    assert requests[(("route", "messages"), ("status", "429"))] == 1


def test_healthz_answers_without_the_upstream(gateway: Gateway, emulator: EmulatorServer) -> None:
    base = gateway()
    reply = httpx2.get(f"{base}/healthz")
    assert reply.status_code == 200
    assert reply.json()["status"] == "ok"
    assert emulator.emulator.bill() == []


RECORD_ONE = """
from datetime import UTC, datetime
from cachewise.gateway import ProxyMetrics
from cachewise.ledger import CallRecord
from cachewise.usage import Usage

record = CallRecord.priced(
    usage=Usage(input_tokens=100, cache_read_input_tokens=300, output_tokens=7),
    model="claude-sonnet-4-6", started_at=datetime.now(UTC), request_id=REQUEST_ID, latency_ms=120.0,
)
ProxyMetrics().add(record)
"""

SERVE = """
from cachewise.gateway import ProxyMetrics
print(ProxyMetrics().exposition().decode())
"""


@pytest.mark.slow
def test_multiprocess_mode_sums_the_workers(tmp_path: Path) -> None:
    """With PROMETHEUS_MULTIPROC_DIR, /metrics in any worker serves what every worker counted."""
    shared = tmp_path / "prom"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    for worker in range(2):
        code = f"REQUEST_ID = 'req_worker_{worker}'\n" + RECORD_ONE
        subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
    served = subprocess.run(
        [sys.executable, "-c", SERVE], env=env, check=True, cwd=tmp_path, capture_output=True, text=True
    ).stdout
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(served)
        for s in family.samples
    }
    model = (("model", "claude-sonnet-4-6"),)
    assert samples[("cachewise_tokens_total", (("kind", "cache_read"), *model))] == 600
    assert samples[("cachewise_cache_hit_ratio", model)] == 0.75
    assert samples[("cachewise_upstream_latency_seconds_count", (("endpoint", "messages"), *model))] == 2
