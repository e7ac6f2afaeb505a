"""What ``cachewise proxy`` adds to the proxy: the budget guard, metrics, spans, health.

:func:`gateway_parts` reads the budget file and returns the record sinks for the tracker, the
``admit`` hook for :func:`~cachewise.integrations.proxy.create_proxy_app` and the wrapper
(:class:`~.app.GatewayApp`) around it.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..budget.config import load_budgets
from .app import ASGIApp, GatewayApp
from .budgets import GatewayBudgets

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ..ledger import Ledger
    from ..sinks import RecordSink
    from .metrics import ProxyMetrics

__all__ = ["GatewayParts", "gateway_parts", "metrics_enabled"]


@dataclass
class GatewayParts:
    """The pieces to assemble: ``sinks`` for the tracker, ``admit`` for the proxy, ``wrap`` for its app."""

    budgets: GatewayBudgets | None = None
    metrics: ProxyMetrics | None = None
    spans: bool = False
    sinks: list[RecordSink] = field(default_factory=list)

    @property
    def admit(self) -> Callable[[Request, Any], Awaitable[Response | None]] | None:
        return self.budgets.admit if self.budgets is not None else None

    def wrap(self, app: ASGIApp) -> GatewayApp:
        return GatewayApp(app, metrics=self.metrics, budgets=self.budgets)

    def summary(self, *, metrics_served: bool | None = None) -> list[str]:
        """What is on, one line each (``metrics_served``: say so for metrics built elsewhere)."""
        served = self.metrics is not None if metrics_served is None else metrics_served
        lines = []
        if self.budgets is not None:
            names = ", ".join(b.name for b in self.budgets.budgets) or "none"
            lines.append(f"budgets enforced: {names}")
            if self.budgets.skipped:
                skipped = ", ".join(self.budgets.skipped)
                lines.append(f"budgets not enforced here (no limit, or a run window): {skipped}")
        lines.append("metrics at /metrics" if served else "metrics off")
        if self.spans:
            lines.append("OpenTelemetry spans: on (a tracer provider is configured)")
        return lines


def metrics_enabled(metrics: bool | None) -> bool:
    """``--metrics/--no-metrics``, and when neither is given: whether prometheus-client is installed."""
    return importlib.util.find_spec("prometheus_client") is not None if metrics is None else metrics


def gateway_parts(
    ledger: Ledger,
    budgets_file: Path | None,
    *,
    metrics: bool | None = None,
    plan: bool = True,
    workers: int = 1,
) -> GatewayParts:
    """The gateway for ``ledger``: budgets from ``budgets_file``, metrics (``None``: if installed),
    spans when a tracer provider is configured (:func:`cachewise.telemetry.configured`).
    ``workers``: how many processes of this gateway share the budgets (they split the headroom)."""
    parts = GatewayParts()
    if metrics_enabled(metrics):
        from .metrics import ProxyMetrics

        parts.metrics = ProxyMetrics()
        parts.sinks.append(parts.metrics)
    if budgets_file is not None:
        m = parts.metrics
        parts.budgets = GatewayBudgets(
            load_budgets(budgets_file),
            ledger,
            planned=plan,
            workers=workers,
            on_refusal=m.refused if m is not None else None,
            on_read=m.budget_read if m is not None else None,
        )
        parts.sinks.append(parts.budgets)
    from ..telemetry import configured, instrument

    if configured():
        instrument()
        parts.spans = True
    return parts
