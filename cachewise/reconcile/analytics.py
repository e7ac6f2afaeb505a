"""The successor reports: the Usage and Cost Analytics API, read into the same rows (docs/api-notes.md §11.4).

``GET /v1/organizations/analytics/usage`` and ``/cost`` (beta header
``analytics-usage-cost-2026-08-24``) return flat rows ``{starting_at, ending_at, group,
usage | cost}``, one per time bucket × group, ``limit`` rows per page. They are read into the
same :data:`~cachewise.reconcile.reports.Key` rows as the legacy reports, so the comparison and
every gap kind are the same whichever source was read. Unlike the legacy cost report, the
analytics cost is served at every bucket width and per API key.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .client import AdminClient
from .errors import ReconcileError
from .reports import _USAGE_NAMES, UNATTRIBUTED, Figures, GroupBy, Key, _count, _time, _usd

__all__ = [
    "ANALYTICS_BETA",
    "ANALYTICS_COST_PATH",
    "ANALYTICS_USAGE_PATH",
    "fetch_analytics_cost",
    "fetch_analytics_usage",
    "read_analytics_cost_page",
    "read_analytics_usage_page",
    "windows",
]

ANALYTICS_USAGE_PATH = "/v1/organizations/analytics/usage"
ANALYTICS_COST_PATH = "/v1/organizations/analytics/cost"
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
_HEADERS = {"anthropic-beta": ANALYTICS_BETA}
#: Rows per page: the most the API allows (SDK: 1-1000, default 20).
MAX_LIMIT = 1000


def _rows(body: Mapping[str, Any], endpoint: str, page: int, metrics: str) -> Any:
    for i, row in enumerate(body["data"]):
        if not isinstance(row, Mapping):
            raise ReconcileError(endpoint, f"data.{i} should be a row object, got {row!r}", page=page)
        name = str(row.get("starting_at", f"data.{i}"))
        start = _time(row.get("starting_at"), "starting_at", endpoint, page, name)
        _time(row.get("ending_at"), "ending_at", endpoint, page, name)
        group = row.get("group")
        if not isinstance(group, Mapping):
            raise ReconcileError(
                endpoint, f"data.{i}.group should be an object, got {group!r}", page=page, bucket=name
            )
        values = row.get(metrics)
        if not isinstance(values, Mapping):
            raise ReconcileError(
                endpoint, f"data.{i}.{metrics} should be an object, got {values!r}", page=page, bucket=name
            )
        yield i, start, name, group, values


def _key(
    start: datetime, group: Mapping[str, Any], group_by: GroupBy, where: tuple[str, int, str, int]
) -> Key:
    endpoint, page, bucket, i = where
    model = group.get("model")
    if model is not None and not isinstance(model, str):
        raise ReconcileError(
            endpoint,
            f"data.{i}.group.model should be a model id or null, got {model!r}",
            page=page,
            bucket=bucket,
        )
    value = group.get(group_by) if group_by else None
    if value is not None and not isinstance(value, str):
        raise ReconcileError(
            endpoint, f"data.{i}.group.{group_by} should be a string, got {value!r}", page=page, bucket=bucket
        )
    return start, model or UNATTRIBUTED, value


def read_analytics_usage_page(
    body: Mapping[str, Any], page: int, group_by: GroupBy, into: dict[Key, Figures]
) -> None:
    """Add one analytics usage page's rows to ``into``."""
    endpoint = ANALYTICS_USAGE_PATH
    for i, start, name, group, usage in _rows(body, endpoint, page, "usage"):
        figures = into.setdefault(_key(start, group, group_by, (endpoint, page, name, i)), Figures())
        for counter, path in _USAGE_NAMES.items():
            setattr(figures, counter, getattr(figures, counter) + _count(usage, path, endpoint, page, name))


def read_analytics_cost_page(
    body: Mapping[str, Any], page: int, group_by: GroupBy, into: dict[Key, Decimal]
) -> None:
    """Add one analytics cost page's ``amount`` (cents, decimal text) to ``into``, in USD."""
    endpoint = ANALYTICS_COST_PATH
    for i, start, name, group, cost in _rows(body, endpoint, page, "cost"):
        usd = _usd(cost, f"data.{i}.cost", endpoint, page, name)
        key = _key(start, group, group_by, (endpoint, page, name, i))
        into[key] = into.get(key, Decimal(0)) + usd


def _params(
    since: datetime, until: datetime, width: str, group_by: GroupBy, limit: int | None
) -> list[tuple[str, str]]:
    params = [
        ("starting_at", since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ending_at", until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("time_bucket_width", width),
        ("group_by[]", "model"),
        *([("group_by[]", group_by)] if group_by else []),
        ("order_by", "time"),
        ("order", "asc"),
        ("limit", str(limit or MAX_LIMIT)),
    ]
    return params


def windows(since: datetime, until: datetime, width: str) -> list[tuple[datetime, datetime]]:
    """``[since, until)`` cut into the ranges one request may span (31 days; 24 hours at ``1m``).

    Cuts fall on UTC midnights, so no bucket is split between two requests.
    """
    span = timedelta(hours=24) if width == "1m" else timedelta(days=31)
    out: list[tuple[datetime, datetime]] = []
    start = since
    cut = since.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + span
    while start < until:
        end = min(cut, until)
        out.append((start, end))
        start, cut = end, cut + span
    return out


def fetch_analytics_usage(
    client: AdminClient,
    since: datetime,
    until: datetime,
    *,
    width: str = "1d",
    group_by: GroupBy = None,
    limit: int | None = None,
) -> dict[Key, Figures]:
    """The analytics usage rows for ``[since, until)``, per bucket × model (× ``group_by``)."""
    out: dict[Key, Figures] = {}
    for number, body in _pages(client, ANALYTICS_USAGE_PATH, since, until, width, group_by, limit):
        read_analytics_usage_page(body, number, group_by, out)
    return out


def fetch_analytics_cost(
    client: AdminClient,
    since: datetime,
    until: datetime,
    *,
    width: str = "1d",
    group_by: GroupBy = None,
    limit: int | None = None,
) -> dict[Key, Decimal]:
    """The analytics cost (USD) for ``[since, until)``, per bucket × model (× ``group_by``), any width."""
    out: dict[Key, Decimal] = {}
    for number, body in _pages(client, ANALYTICS_COST_PATH, since, until, width, group_by, limit):
        read_analytics_cost_page(body, number, group_by, out)
    return out


def _pages(
    client: AdminClient,
    path: str,
    since: datetime,
    until: datetime,
    width: str,
    group_by: GroupBy,
    limit: int | None,
) -> Iterator[tuple[int, Any]]:
    """Every page of ``path`` over ``[since, until)``, window by window, numbered from 1."""
    number = 0
    for start, end in windows(since, until, width):
        for body in client.pages(path, _params(start, end, width, group_by, limit), headers=_HEADERS):
            number += 1
            yield number, body
