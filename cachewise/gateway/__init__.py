"""The proxy as a team gateway: budgets per key, tag and model, Prometheus metrics, health.

``cachewise proxy --budgets cachewise.toml`` builds it with :func:`gateway`; in code::

    tracker = CallTracker(ledger=ledger, sinks=[budgets, metrics])
    app = GatewayApp(create_proxy_app(tracker, admit=budgets.admit), metrics=metrics)

docs/budgets.md ("At the gateway") and docs/observability.md describe it.
"""

from __future__ import annotations

from .app import GatewayApp
from .budgets import GatewayBudgets, Refusal, SpendSource, enforced
from .caller import TAGS_HEADER, Caller, TagHeaderError, caller_of, parse_tags_header
from .metrics import ProxyMetrics

__all__ = [
    "TAGS_HEADER",
    "Caller",
    "GatewayApp",
    "GatewayBudgets",
    "ProxyMetrics",
    "Refusal",
    "SpendSource",
    "TagHeaderError",
    "caller_of",
    "enforced",
    "parse_tags_header",
]
