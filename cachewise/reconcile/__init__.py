"""Reconciliation: the ledger against Anthropic's Admin API usage and cost reports (docs/reconcile.md).

::

    from cachewise.reconcile import AdminClient, reconcile

    with AdminClient() as client:                       # $ANTHROPIC_ADMIN_API_KEY
        result = reconcile(ledger, client, since=since, until=until)
    for gap in result.gaps:
        print(gap.kind, gap.starting_at, gap.model, gap.cost_gap)
"""

from __future__ import annotations

from .client import ADMIN_KEY_ENV, AdminClient
from .compare import EXPLANATIONS, Gap, GapKind, Reconciliation, compare
from .errors import ReconcileError
from .reports import COUNTERS, Figures, fetch_cost, fetch_usage
from .run import reconcile

__all__ = [
    "ADMIN_KEY_ENV",
    "COUNTERS",
    "EXPLANATIONS",
    "AdminClient",
    "Figures",
    "Gap",
    "GapKind",
    "ReconcileError",
    "Reconciliation",
    "compare",
    "fetch_cost",
    "fetch_usage",
    "reconcile",
]
