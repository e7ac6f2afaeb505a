"""The Usage and Cost Analytics API (the legacy reports' successor), served from the emulator's bill.

``GET /v1/organizations/analytics/usage`` and ``GET /v1/organizations/analytics/cost``
(docs/api-notes.md §11.4), in the shapes the installed SDK types
(``types/beta/organization/analytics/beta_analytics_usage_item.py``, ``..._cost_item.py``):
flat rows ``{starting_at, ending_at, group, usage | cost}``, one per time bucket × combination
of the ``group_by[]`` dimensions that has usage, ``limit`` rows per page (1-1000, default 20),
``has_more``/``next_page`` cursors. Without ``time_bucket_width`` one row covers the whole
range, its bounds rounded down to the hour. The beta header
``anthropic-beta: analytics-usage-cost-2026-08-24`` is required; without it the request is
refused with 400 ``invalid_request_error`` (our text: the docs publish none).

Served subset: grouping by ``api_key_id``, ``workspace_id``, ``model``, ``service_tier``,
``context_window``, ``inference_geo``, ``speed`` (the emulator has no users, products or
agents: any other dimension is refused, as are ``cost_type`` / ``token_type``); ``order_by``
``time`` or the default metric, ``order`` ``asc`` / ``desc``; ``starting_at`` within the last
365 days and not before 2026-01-01, ranges of at most 31 days (24 hours at ``1m``).
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .admin import USAGE_GROUP_BY, _cents, _dimension, _filters, _iso, _one, _selected, _snap, _time, _values
from .bill import BillRow
from .errors import invalid

__all__ = [
    "ANALYTICS_BETA",
    "ANALYTICS_COST_PATH",
    "ANALYTICS_GROUP_BY",
    "ANALYTICS_USAGE_PATH",
    "analytics_cost",
    "analytics_usage",
    "check_beta",
]

ANALYTICS_USAGE_PATH = "/v1/organizations/analytics/usage"
ANALYTICS_COST_PATH = "/v1/organizations/analytics/cost"
ANALYTICS_BETA = "analytics-usage-cost-2026-08-24"
ANALYTICS_GROUP_BY = USAGE_GROUP_BY  # the same dimensions as the legacy usage report
#: Every dimension of the SDK's group object (BetaAnalyticsUsageGroup): null unless grouped.
_GROUP_FIELDS = (
    "actor",
    "actor_type",
    "agent_id",
    "api_key_id",
    "claude_tag_category",
    "claude_tag_user_id",
    "context_window",
    "deployment_id",
    "environment_id",
    "inference_geo",
    "model",
    "organization_id",
    "product",
    "rbac_group_id",
    "service_tier",
    "session_id",
    "slack_channel_id",
    "speed",
    "user_profile_id",
    "workspace_id",
)
_WIDTHS = {"1m": timedelta(minutes=1), "1h": timedelta(hours=1), "1d": timedelta(days=1)}
_MAX_RANGE = timedelta(days=31)
_MAX_GROUPS = 5
_EARLIEST = datetime(2026, 1, 1, tzinfo=UTC)


def check_beta(headers: Mapping[str, str], path: str) -> None:
    """Refuse an analytics request that does not send the beta header."""
    sent = {b.strip() for b in (headers.get("anthropic-beta") or "").split(",")}
    if ANALYTICS_BETA not in sent:
        raise invalid(f"{path} is in beta: send the header 'anthropic-beta: {ANALYTICS_BETA}'")


def _bounds(query: Sequence[tuple[str, str]], now: datetime) -> tuple[datetime, datetime, str | None]:
    width = _one(query, "time_bucket_width")
    if width is not None and width not in _WIDTHS:
        raise invalid("time_bucket_width: Input should be '1d', '1h' or '1m'")
    starting = _one(query, "starting_at")
    if starting is None:
        raise invalid("starting_at: Field required")
    start = _time(starting, "starting_at")
    if start < _EARLIEST or start < now - timedelta(days=365):
        raise invalid(
            "starting_at: must be within the last 365 days and no earlier than 2026-01-01T00:00:00Z"
        )
    ending = _one(query, "ending_at")
    if width is not None and ending is None:
        raise invalid("ending_at: Field required when time_bucket_width is set")
    end = _time(ending, "ending_at") if ending else min(now, start + _MAX_RANGE)
    if end <= start:
        raise invalid("ending_at: must be after starting_at")
    if end - start > _MAX_RANGE:
        raise invalid("ending_at: the range may span at most 31 days")
    if width == "1m" and end - start > timedelta(hours=24):
        raise invalid("ending_at: with time_bucket_width '1m' the range may span at most 24 hours")
    if width is None:  # one row over the whole range, rounded down to the hour
        return _snap(start, "1h"), _snap(end, "1h"), None
    return _snap(start, width), end, width


def _groups(query: Sequence[tuple[str, str]]) -> list[str]:
    groups = _values(query, "group_by")
    for i, name in enumerate(groups):
        if name not in ANALYTICS_GROUP_BY:
            raise invalid(
                f"group_by.{i}: {name!r} is not served by this emulator; it serves "
                + ", ".join(repr(g) for g in ANALYTICS_GROUP_BY)
            )
    if len(set(groups)) > _MAX_GROUPS:
        raise invalid(f"group_by: at most {_MAX_GROUPS} dimensions")
    return list(dict.fromkeys(groups))


def _limit(query: Sequence[tuple[str, str]]) -> int:
    raw = _one(query, "limit")
    try:
        limit = int(raw) if raw is not None else 20
    except ValueError:
        raise invalid("limit: Input should be a valid integer") from None
    if not 1 <= limit <= 1000:
        raise invalid("limit: must be between 1 and 1000")
    return limit


def _cursor(offset: int) -> str:
    return "page_" + base64.urlsafe_b64encode(f"row:{offset}".encode()).decode()


def _offset(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token.removeprefix("page_").encode()).decode()
        offset = int(raw.removeprefix("row:")) if raw.startswith("row:") else -1
    except (binascii.Error, UnicodeDecodeError, ValueError):
        offset = -1
    if offset < 0:
        raise invalid(f"page: {token!r} is not a next_page cursor of this report")
    return offset


def _bucket(row: BillRow, start: datetime, width: str | None) -> datetime:
    return start if width is None else _snap(row.time, width)


def _rows(
    rows: Iterable[BillRow], query: Sequence[tuple[str, str]], now: datetime
) -> tuple[dict[tuple[Any, ...], list[BillRow]], list[str], datetime, datetime, str | None]:
    start, end, width = _bounds(query, now)
    groups = _groups(query)
    filters = _filters(query)
    if windows := set(_values(query, "context_windows")):  # the successor's plural spelling
        filters["context_window"] = windows
    selected = _selected(rows, filters, start, end)
    cells: dict[tuple[Any, ...], list[BillRow]] = defaultdict(list)
    for row in selected:
        key = (_bucket(row, start, width), *(_dimension(row, name) for name in groups))
        cells[key].append(row)
    return cells, groups, start, end, width


def _page(
    items: list[tuple[Any, dict[str, Any]]], query: Sequence[tuple[str, str]], metric: str
) -> dict[str, Any]:
    """Order the rows (``order_by`` / ``order``), cut one page at ``page`` and ``limit``."""
    order_by = _one(query, "order_by") or metric
    order = _one(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise invalid("order: Input should be 'asc' or 'desc'")
    if order_by == "time":  # by bucket, and within a bucket by the metric, highest first
        items.sort(key=lambda item: item[0], reverse=True)
        items.sort(key=lambda item: str(item[1]["starting_at"]), reverse=order == "desc")
    else:
        items.sort(key=lambda item: (item[0], item[1]["starting_at"]), reverse=order == "desc")
    limit = _limit(query)
    token = _one(query, "page")
    first = _offset(token) if token else 0
    chunk = [row for _, row in items[first : first + limit]]
    following = first + limit if first + limit < len(items) else None
    return {
        "data": chunk,
        "has_more": following is not None,
        "next_page": _cursor(following) if following is not None else None,
    }


def _row_bounds(bucket: datetime, end: datetime, width: str | None) -> tuple[str, str]:
    if width is None:
        return _iso(bucket), _iso(end)
    return _iso(bucket), _iso(bucket + _WIDTHS[width])


def _group(groups: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    group: dict[str, Any] = dict.fromkeys(_GROUP_FIELDS)
    group.update(zip(groups, values, strict=True))
    return group


def analytics_usage(
    rows: Iterable[BillRow], query: Sequence[tuple[str, str]], now: datetime
) -> dict[str, Any]:
    """One page of ``GET /v1/organizations/analytics/usage`` (SDK ``BetaAnalyticsUsageItem`` rows)."""
    cells, groups, _start, end, width = _rows(rows, query, now)
    metric = _one(query, "order_by") or "total_tokens"
    if metric not in ("output_tokens", "requests", "time", "total_tokens", "uncached_input_tokens"):
        raise invalid(f"order_by: {metric!r} is not a usage metric")
    items: list[tuple[Any, dict[str, Any]]] = []
    for (bucket, *values), billed in cells.items():
        totals = dict.fromkeys(("uncached", "w5m", "w1h", "read", "output", "search"), 0)
        for row in billed:
            usage = row.usage
            creation = usage.get("cache_creation") or {}
            totals["uncached"] += int(usage.get("input_tokens") or 0)
            totals["w5m"] += int(creation.get("ephemeral_5m_input_tokens") or 0)
            totals["w1h"] += int(creation.get("ephemeral_1h_input_tokens") or 0)
            totals["read"] += int(usage.get("cache_read_input_tokens") or 0)
            totals["output"] += int(usage.get("output_tokens") or 0)
            totals["search"] += int((usage.get("server_tool_use") or {}).get("web_search_requests") or 0)
        total_tokens = sum(totals[k] for k in ("uncached", "w5m", "w1h", "read", "output"))
        starting, ending = _row_bounds(bucket, end, width)
        metrics: dict[str, Any] = {
            "uncached_input_tokens": totals["uncached"],
            "cache_creation": {
                "ephemeral_5m_input_tokens": totals["w5m"],
                "ephemeral_1h_input_tokens": totals["w1h"],
            },
            "cache_read_input_tokens": totals["read"],
            "output_tokens": totals["output"],
            "server_tool_use": {"web_search_requests": totals["search"]},
            "requests": len(billed),
            "total_tokens": total_tokens,
        }
        rank = metrics[metric] if metric != "time" else total_tokens
        item: dict[str, Any] = {
            "starting_at": starting,
            "ending_at": ending,
            "group": _group(groups, values),
            "usage": metrics,
        }
        items.append(((rank, tuple(v or "" for v in values)), item))
    return _page(items, query, "total_tokens")


def analytics_cost(
    rows: Iterable[BillRow], query: Sequence[tuple[str, str]], now: datetime
) -> dict[str, Any]:
    """One page of ``GET /v1/organizations/analytics/cost`` (SDK ``BetaAnalyticsCostItem`` rows).

    ``amount`` and ``list_amount`` are decimal strings of cents (the emulator bills list prices,
    so both are the same); the row's cost is the bill's whole cost, every component included.
    """
    cells, groups, _start, end, width = _rows(rows, query, now)
    metric = _one(query, "order_by") or "amount"
    if metric not in ("amount", "list_amount", "time"):
        raise invalid(f"order_by: {metric!r} is not a cost metric")
    items: list[tuple[Any, dict[str, Any]]] = []
    for (bucket, *values), billed in cells.items():
        priced = [row for row in billed if row.cost is not None]
        if not priced:
            continue
        amount = sum((row.cost.total for row in priced if row.cost is not None), Decimal(0))
        starting, ending = _row_bounds(bucket, end, width)
        group = _group(groups, values)
        group.update(cost_type=None, token_type=None)
        cost = {
            "amount": _cents(amount),
            "currency": "USD",
            "list_amount": _cents(amount),
            "requests": len(priced),
        }
        item: dict[str, Any] = {"starting_at": starting, "ending_at": ending, "group": group, "cost": cost}
        items.append(((amount, tuple(v or "" for v in values)), item))
    return _page(items, query, "amount")
