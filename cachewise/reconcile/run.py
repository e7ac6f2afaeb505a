"""One reconciliation, end to end: fetch both reports, read the ledger, compare. Never writes."""

from __future__ import annotations

from datetime import datetime

from ..ledger import Ledger
from ..ledger.buckets import read_buckets
from .client import AdminClient
from .compare import Reconciliation, compare
from .reports import GroupBy, fetch_cost, fetch_usage

__all__ = ["reconcile"]


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
) -> Reconciliation:
    """The ledger's ``[since, until)`` against the organisation's usage (and, at ``1d``, cost) report.

    ``group_by`` (``workspace_id`` or ``api_key_id``) splits the report; ``group_tag`` names the
    ledger tag that holds the same value (the ledger stores no key or workspace itself), and
    defaults to ``group_by``'s own name. Both reports are fetched in full before anything is
    compared, so a page that fails part-way raises and nothing is half-reported.
    """
    usage = fetch_usage(client, since, until, width=width, group_by=group_by, limit=limit)
    cost = None
    if width == "1d" and group_by != "api_key_id":  # the cost report: daily, no api_key_id grouping (§11.2)
        cost = fetch_cost(client, since, until, group_by=group_by, limit=limit)
    tag = group_tag or group_by
    buckets = read_buckets(ledger, since=since, until=until, width=width, group_tag=tag if group_by else None)
    return compare(buckets, usage, cost, since=since, until=until, width=width, group_by=group_by)
