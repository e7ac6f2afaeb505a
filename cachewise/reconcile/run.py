"""One reconciliation, end to end: fetch both reports, read the ledger, compare. Never writes."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from ..ledger import Ledger
from ..ledger.buckets import read_buckets
from .analytics import ANALYTICS_USAGE_PATH, fetch_analytics_cost, fetch_analytics_usage
from .client import AdminClient
from .compare import Reconciliation, compare
from .errors import ReconcileError
from .reports import Figures, GroupBy, Key, fetch_cost, fetch_usage

__all__ = ["SOURCES", "Source", "reconcile"]

Source = Literal["usage_report", "analytics", "auto"]
SOURCES: tuple[str, ...] = ("usage_report", "analytics", "auto")


def _legacy(
    client: AdminClient, since: datetime, until: datetime, width: str, group_by: GroupBy, limit: int | None
) -> tuple[dict[Key, Figures], dict[Key, Decimal] | None]:
    usage = fetch_usage(client, since, until, width=width, group_by=group_by, limit=limit)
    cost = None
    if width == "1d" and group_by != "api_key_id":  # the cost report: daily, no api_key_id grouping (§11.2)
        cost = fetch_cost(client, since, until, group_by=group_by, limit=limit)
    return usage, cost


def _analytics(
    client: AdminClient, since: datetime, until: datetime, width: str, group_by: GroupBy, limit: int | None
) -> tuple[dict[Key, Figures], dict[Key, Decimal]]:
    usage = fetch_analytics_usage(client, since, until, width=width, group_by=group_by, limit=limit)
    cost = fetch_analytics_cost(client, since, until, width=width, group_by=group_by, limit=limit)
    return usage, cost


def reconcile(
    ledger: Ledger,
    client: AdminClient,
    *,
    since: datetime,
    until: datetime,
    width: str = "1d",
    group_by: GroupBy = None,
    group_tag: str | None = None,
    limit: int | None = None,
    source: Source = "usage_report",
) -> Reconciliation:
    """The ledger's ``[since, until)`` against the organisation's usage (and, at ``1d``, cost) report.

    ``group_by`` (``workspace_id`` or ``api_key_id``) splits the report; ``group_tag`` names the
    ledger tag that holds the same value (the ledger stores no key or workspace itself), and
    defaults to ``group_by``'s own name. Both reports are fetched in full before anything is
    compared, so a page that fails part-way raises and nothing is half-reported.

    ``source``: ``usage_report`` (the legacy usage and cost reports, the default), ``analytics``
    (the Usage and Cost Analytics API: costs at every width and per API key), or ``auto``:
    analytics, and the legacy reports only when the analytics usage endpoint answers 404 (not
    served to this organisation); any other refusal (a bad key, a missing scope) is raised, not
    hidden behind a fallback. The result's ``source`` says which was read.
    """
    used = "analytics" if source in ("analytics", "auto") else "usage_report"
    cost: dict[Key, Decimal] | None
    if used == "analytics":
        try:
            usage, cost = _analytics(client, since, until, width, group_by, limit)
        except ReconcileError as exc:
            fallback = (exc.endpoint, exc.page, exc.status) == (ANALYTICS_USAGE_PATH, 1, 404)
            if source != "auto" or not fallback:
                raise
            used = "usage_report"
    if used == "usage_report":
        usage, cost = _legacy(client, since, until, width, group_by, limit)
    tag = group_tag or group_by
    buckets = read_buckets(ledger, since=since, until=until, width=width, group_tag=tag if group_by else None)
    return compare(
        buckets, usage, cost, since=since, until=until, width=width, group_by=group_by, source=used
    )
