"""Reconciliation: the ledger against Anthropic's Admin API usage and cost reports (docs/reconcile.md).

::

    from cachewise.reconcile import AdminClient, reconcile

    with AdminClient() as client:                       # $ANTHROPIC_ADMIN_API_KEY
        result = reconcile(ledger, client, since=since, until=until)  # source="analytics" | "auto"
    for gap in result.gaps:
        print(gap.kind, gap.starting_at, gap.model, gap.cost_gap)
"""

from __future__ import annotations

from .analytics import ANALYTICS_BETA, fetch_analytics_cost, fetch_analytics_usage
from .client import ADMIN_KEY_ENV, AdminClient
from .compare import EXPLANATIONS, Gap, GapKind, Reconciliation, compare
from .errors import ReconcileError
from .reports import COUNTERS, Figures, fetch_cost, fetch_usage
from .run import SOURCES, Source, reconcile

__all__ = [
    "ADMIN_KEY_ENV",
    "ANALYTICS_BETA",
    "COUNTERS",
    "EXPLANATIONS",
    "SOURCES",
    "AdminClient",
    "Figures",
    "Gap",
    "GapKind",
    "ReconcileError",
    "Reconciliation",
    "Source",
    "compare",
    "fetch_analytics_cost",
    "fetch_analytics_usage",
    "fetch_cost",
    "fetch_usage",
    "reconcile",
]
