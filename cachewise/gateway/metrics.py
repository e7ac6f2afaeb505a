"""Prometheus metrics of the gateway, served at ``/metrics`` (docs/observability.md lists them).

:class:`ProxyMetrics` is a record sink: each call recorded counts its tokens by kind, its cost and
net savings (USD, float: metrics are for dashboards; the ledger keeps the exact ``Decimal``), and its
upstream latency. The gateway app counts HTTP requests; the budget guard its refusals and reads.
The cache hit ratio (read ÷ every input token) is computed when scraped, from the token counters.

With several workers (``--workers``) each process has its own counters. Set
``PROMETHEUS_MULTIPROC_DIR`` to an empty directory before the proxy starts and every worker
writes there; ``/metrics`` then serves the sum over workers (prometheus-client's multiprocess mode).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import generate_latest
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from ..ledger.record import CallRecord
    from .budgets import Refusal

__all__ = ["CONTENT_TYPE_LATEST", "LATENCY_BUCKETS", "TOKEN_KINDS", "ProxyMetrics"]

#: Upstream latency buckets (seconds): a short reply to a long stream.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
#: The ``kind`` label of ``cachewise_tokens_total``, from the API's usage fields.
TOKEN_KINDS = ("input", "cache_read", "cache_creation", "output")
_INPUT_KINDS = ("input", "cache_read", "cache_creation")
#: Labelled children kept for quick access (the metrics keep them all regardless).
_MAX_CHILDREN = 4096
_Labelled = Counter | Gauge | Histogram


class _HitRatio(Collector):
    """Everything ``source`` collects, plus ``cachewise_cache_hit_ratio`` per model from its tokens."""

    def __init__(self, source: Collector) -> None:
        self.source = source

    def collect(self) -> Iterator[Metric]:
        families = list(self.source.collect())
        read: dict[str, float] = {}
        prompt: dict[str, float] = {}
        for family in families:
            if family.name != "cachewise_tokens":
                continue
            for sample in family.samples:
                if not sample.name.endswith("_total") or sample.labels.get("kind") not in _INPUT_KINDS:
                    continue
                model = sample.labels.get("model", "")
                prompt[model] = prompt.get(model, 0.0) + sample.value
                if sample.labels["kind"] == "cache_read":
                    read[model] = read.get(model, 0.0) + sample.value
        yield from families
        ratio = GaugeMetricFamily(
            "cachewise_cache_hit_ratio",
            "Cache read tokens over every input token (read + written + uncached), per model",
            labels=["model"],
        )
        for model, total in sorted(prompt.items()):
            if total > 0:
                ratio.add_metric([model], read.get(model, 0.0) / total)
        yield ratio


class ProxyMetrics:
    """The gateway's counters in their own registry (or the multiprocess directory, when set)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cachewise_proxy_requests", "HTTP requests answered by the proxy", ["route", "status"], registry=r
        )
        self.calls = Counter(
            "cachewise_calls", "Messages calls recorded", ["model", "endpoint", "status"], registry=r
        )
        self.tokens = Counter("cachewise_tokens", "Tokens of recorded calls", ["model", "kind"], registry=r)
        self.cost = Counter("cachewise_cost_usd", "Cost of recorded calls (USD)", ["model"], registry=r)
        self.cost_no_cache = Counter(
            "cachewise_cost_no_cache_usd",
            "What the recorded calls would have cost uncached (USD)",
            ["model"],
            registry=r,
        )
        # Net savings go down when a cache write is not read back: a gauge, summed over workers.
        self.savings = Gauge(
            "cachewise_savings_usd",
            "Net saving of caching: cost uncached minus cost (USD; negative when writes were wasted)",
            ["model"],
            registry=r,
            multiprocess_mode="sum",
        )
        self.unpriced = Counter(
            "cachewise_unpriced_calls", "Calls recorded without a price", ["model"], registry=r
        )
        self.latency = Histogram(
            "cachewise_upstream_latency_seconds",
            "From sending a Messages call upstream to its last byte",
            ["model", "endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.refusals = Counter(
            "cachewise_budget_refusals", "Requests refused by a budget", ["budget", "reason"], registry=r
        )
        self.budget_spent = Gauge(
            "cachewise_budget_spent_usd",
            "A budget's spend in its window at the last ledger read (USD)",
            ["budget"],
            registry=r,
            multiprocess_mode="max",
        )
        self.budget_limit = Gauge(
            "cachewise_budget_limit_usd",
            "A budget's limit (USD)",
            ["budget"],
            registry=r,
            multiprocess_mode="max",
        )
        self._children: dict[tuple[object, ...], Any] = {}
        self._model_tokens: dict[str, tuple[Any, ...]] = {}

    # -- sinks and callbacks ---------------------------------------------------------------------

    def add(self, record: CallRecord) -> None:
        """Count one recorded call (a record sink)."""
        model = record.model
        self._labelled(self.calls, model, record.endpoint, record.status).inc()
        u = record.usage
        tokens = self._model_tokens.get(model)
        if tokens is None:
            if len(self._model_tokens) >= _MAX_CHILDREN:
                self._model_tokens.clear()
            tokens = self._model_tokens[model] = tuple(self.tokens.labels(model, k) for k in TOKEN_KINDS)
        values = (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens, u.output_tokens)
        for child, value in zip(tokens, values, strict=True):
            if value:
                child.inc(value)
        if record.cost is not None:
            self._labelled(self.cost, model).inc(float(record.cost.cost_total))
            self._labelled(self.cost_no_cache, model).inc(float(record.cost.cost_no_cache))
            self._labelled(self.savings, model).inc(float(record.cost.savings))
        elif record.status != "error":
            self._labelled(self.unpriced, model).inc()
        if record.latency_ms is not None:
            self._labelled(self.latency, model, record.endpoint).observe(record.latency_ms / 1000)

    def _labelled(self, metric: _Labelled, *labels: str) -> Any:
        """``metric.labels(*labels)``, looked up once per metric and labels (prometheus-client takes
        a lock and checks the labels on every call; a child, once made, stays in its metric)."""
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= _MAX_CHILDREN:  # unbounded label values: do not keep them all
                self._children.clear()
            child = self._children[key] = metric.labels(*labels)
        return child

    def refused(self, refusal: Refusal) -> None:
        self.refusals.labels(refusal.budget, refusal.reason).inc()

    def budget_read(self, name: str, spent: Decimal, limit: Decimal) -> None:
        self.budget_spent.labels(name).set(float(spent))
        self.budget_limit.labels(name).set(float(limit))

    def request(self, route: str, status: int) -> None:
        self._labelled(self.requests, route, str(status)).inc()

    # -- exposition ------------------------------------------------------------------------------

    def collectors(self) -> Iterable[Collector]:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return [merged]
        return [self.registry]

    def exposition(self) -> bytes:
        """The text format served at ``/metrics``."""
        served = CollectorRegistry()
        for source in self.collectors():
            served.register(_HitRatio(source))
        return generate_latest(served)
