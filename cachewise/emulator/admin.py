"""The Admin API's usage and cost reports, served from the emulator's own bill.

``GET /v1/organizations/usage_report/messages`` and ``GET /v1/organizations/cost_report``
(docs/api-notes.md §11.1-§11.3), the legacy Usage and Cost API: time buckets
``{starting_at, ending_at, results}`` snapped to the UTC minute, hour or day, ``group_by[]``
dimensions, and ``has_more``/``next_page`` pagination over buckets. Every figure is summed
from :class:`~cachewise.emulator.bill.BillRow` values, so a reconciliation against the
emulator compares the ledger with what the emulator billed, not with a copy of the ledger.

Admin keys start with ``sk-ant-admin``; any other key is refused here (401
``authentication_error``), and an admin key is refused by the Messages API (our texts: the
docs publish none). The cost report's ``amount`` is a decimal string in cents.
"""

from __future__ import annotations

import base64
import binascii
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .bill import BillRow
from .errors import ApiError, invalid, not_found

__all__ = [
    "ADMIN_KEY_PREFIX",
    "COST_GROUP_BY",
    "USAGE_GROUP_BY",
    "WIDTHS",
    "admin_key",
    "check_admin",
    "context_window",
    "cost_report",
    "serve",
    "usage_report",
]

ADMIN_KEY_PREFIX = "sk-ant-admin"
USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
#: bucket width -> (length, default limit, maximum limit) (docs/api-notes.md §11.1).
WIDTHS: dict[str, tuple[timedelta, int, int]] = {
    "1m": (timedelta(minutes=1), 60, 1440),
    "1h": (timedelta(hours=1), 24, 168),
    "1d": (timedelta(days=1), 7, 31),
}
USAGE_GROUP_BY = (
    "api_key_id",
    "workspace_id",
    "model",
    "service_tier",
    "context_window",
    "inference_geo",
    "speed",
)
#: account_id and service_account_id: the emulator has no users; accepted, always null.
_USAGE_NULL_GROUPS = ("account_id", "service_account_id")
COST_GROUP_BY = ("workspace_id", "description")
#: The cost report's token types and the bill's cost components they come from.
_TOKEN_TYPES = (
    ("uncached_input_tokens", "input"),
    ("cache_creation.ephemeral_5m_input_tokens", "cache_write_5m"),
    ("cache_creation.ephemeral_1h_input_tokens", "cache_write_1h"),
    ("cache_read_input_tokens", "cache_read"),
    ("output_tokens", "output"),
)
_LONG_CONTEXT = 200_000
_CENTS = Decimal(100)


def admin_key(headers: Mapping[str, str]) -> str | None:
    """The request's key (``x-api-key`` or a bearer token), or ``None``."""
    key = headers.get("x-api-key")
    auth = headers.get("authorization", "")
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:].strip()
    return key or None


def check_admin(headers: Mapping[str, str], path: str) -> None:
    key = admin_key(headers)
    if key is None:
        raise ApiError(401, "authentication_error", "x-api-key header is required")
    if not key.startswith(ADMIN_KEY_PREFIX):
        raise ApiError(
            401,
            "authentication_error",
            f"{path} needs an Admin API key ({ADMIN_KEY_PREFIX}...); this is a regular API key",
        )


def context_window(usage: Mapping[str, Any]) -> str:
    """``0-200k`` or ``200k-1M``: the request's whole input, cached or not (§11.1)."""
    total = sum(
        int(usage.get(name) or 0)
        for name in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return "200k-1M" if total > _LONG_CONTEXT else "0-200k"


def _dimension(row: BillRow, name: str) -> str | None:
    if name == "api_key_id":
        return row.api_key_id
    if name == "workspace_id":
        return row.workspace
    if name == "model":
        return row.model
    if name == "context_window":
        return context_window(row.usage)
    if name in ("service_tier", "inference_geo", "speed"):
        value = row.usage.get(name)
        return str(value) if value is not None else None
    return None


# -- the query ----------------------------------------------------------------------------------


def _values(query: Sequence[tuple[str, str]], name: str) -> list[str]:
    """A repeated parameter: ``name[]=a&name[]=b``, ``name=a&name=b`` or ``name=a,b``."""
    out: list[str] = []
    for key, value in query:
        if key in (name, f"{name}[]"):
            out.extend(v for v in value.split(",") if v)
    return out


def _one(query: Sequence[tuple[str, str]], name: str) -> str | None:
    found = [value for key, value in query if key == name]
    return found[-1] if found else None


def _time(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise invalid(f"{name}: Input should be a valid datetime (RFC 3339), got {value!r}") from None
    if moment.tzinfo is None:
        raise invalid(f"{name}: {value!r} has no timezone; RFC 3339 needs one")
    return moment.astimezone(UTC)


def _snap(moment: datetime, width: str) -> datetime:
    if width == "1d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if width == "1h":
        return moment.replace(minute=0, second=0, microsecond=0)
    return moment.replace(second=0, microsecond=0)


def _page_token(start: datetime) -> str:
    return "page_" + base64.urlsafe_b64encode(start.isoformat().encode()).decode()


def _page_start(token: str) -> datetime:
    try:
        raw = base64.urlsafe_b64decode(token.removeprefix("page_").encode())
        return _time(raw.decode(), "page")
    except (binascii.Error, UnicodeDecodeError, ApiError):
        raise invalid(f"page: {token!r} is not a next_page token of this report") from None


class _Window:
    """The buckets one page covers, from the query (limits per width: §11.1)."""

    def __init__(self, query: Sequence[tuple[str, str]], now: datetime, widths: Sequence[str]) -> None:
        width = _one(query, "bucket_width") or "1d"
        if width not in widths:
            raise invalid(f"bucket_width: Input should be {' or '.join(repr(w) for w in widths)}")
        self.width = width
        length, default, maximum = WIDTHS[width]
        self.length = length
        starting = _one(query, "starting_at")
        if starting is None:
            raise invalid("starting_at: Field required")
        self.start = _snap(_time(starting, "starting_at"), width)
        ending = _one(query, "ending_at")
        self.end = _time(ending, "ending_at") if ending else now
        if self.end <= self.start:
            raise invalid("ending_at: must be after starting_at")
        raw_limit = _one(query, "limit")
        try:
            limit = int(raw_limit) if raw_limit is not None else default
        except ValueError:
            raise invalid("limit: Input should be a valid integer") from None
        if not 1 <= limit <= maximum:
            raise invalid(f"limit: must be between 1 and {maximum} for bucket_width {width!r}")
        self.limit = limit
        token = _one(query, "page")
        self.first = _page_start(token) if token else self.start

    def buckets(self) -> tuple[list[datetime], datetime | None]:
        """This page's bucket starts and the next page's first bucket (``None``: last page)."""
        starts: list[datetime] = []
        at = self.first
        while at < self.end and len(starts) < self.limit:
            starts.append(at)
            at += self.length
        return starts, (at if at < self.end else None)


def _filters(query: Sequence[tuple[str, str]]) -> dict[str, set[str]]:
    names = {
        "api_key_ids": "api_key_id",
        "workspace_ids": "workspace_id",
        "models": "model",
        "service_tiers": "service_tier",
        "context_window": "context_window",
        "inference_geos": "inference_geo",
        "speeds": "speed",
    }
    return {dim: set(vals) for param, dim in names.items() if (vals := _values(query, param))}


def _group_by(query: Sequence[tuple[str, str]], allowed: Sequence[str], extra: Sequence[str]) -> list[str]:
    groups = _values(query, "group_by")
    for i, name in enumerate(groups):
        if name not in allowed and name not in extra:
            raise invalid(f"group_by.{i}: Input should be one of {', '.join(repr(a) for a in allowed)}")
    return groups


def _selected(
    rows: Iterable[BillRow], filters: Mapping[str, set[str]], start: datetime, end: datetime
) -> list[BillRow]:
    out = []
    for row in rows:
        if not start <= row.time < end:
            continue
        if all(_dimension(row, dim) in allowed for dim, allowed in filters.items()):
            out.append(row)
    return out


def _page(data: list[dict[str, Any]], following: datetime | None) -> dict[str, Any]:
    return {
        "data": data,
        "has_more": following is not None,
        "next_page": _page_token(following) if following is not None else None,
    }


# -- the reports ----------------------------------------------------------------------------------


def usage_report(rows: Iterable[BillRow], query: Sequence[tuple[str, str]], now: datetime) -> dict[str, Any]:
    """One page of the Messages usage report (§11.1)."""
    window = _Window(query, now, ("1m", "1h", "1d"))
    groups = _group_by(query, (*USAGE_GROUP_BY, *_USAGE_NULL_GROUPS), ())
    filters = _filters(query)
    starts, following = window.buckets()
    billed = _selected(rows, filters, window.first, window.end)
    data = []
    for start in starts:
        end = start + window.length
        sums: dict[tuple[str | None, ...], dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(("uncached", "w5m", "w1h", "read", "output", "search"), 0)
        )
        for row in billed:
            if not start <= row.time < end:
                continue
            key = tuple(_dimension(row, name) for name in groups)
            usage = row.usage
            creation = usage.get("cache_creation") or {}
            total = sums[key]
            total["uncached"] += int(usage.get("input_tokens") or 0)
            total["w5m"] += int(creation.get("ephemeral_5m_input_tokens") or 0)
            total["w1h"] += int(creation.get("ephemeral_1h_input_tokens") or 0)
            total["read"] += int(usage.get("cache_read_input_tokens") or 0)
            total["output"] += int(usage.get("output_tokens") or 0)
            tools = usage.get("server_tool_use") or {}
            total["search"] += int(tools.get("web_search_requests") or 0)
        results = []
        for key, total in sorted(sums.items(), key=lambda item: tuple(v or "" for v in item[0])):
            result: dict[str, Any] = dict.fromkeys(USAGE_GROUP_BY)
            result.update(zip(groups, key, strict=True))
            result.update(
                {
                    "uncached_input_tokens": total["uncached"],
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": total["w5m"],
                        "ephemeral_1h_input_tokens": total["w1h"],
                    },
                    "cache_read_input_tokens": total["read"],
                    "output_tokens": total["output"],
                    "server_tool_use": {"web_search_requests": total["search"]},
                }
            )
            results.append(result)
        data.append({"starting_at": _iso(start), "ending_at": _iso(end), "results": results})
    return _page(data, following)


def _description(model: str, token_type: str) -> str:
    return f"{model} usage - {token_type}"


def cost_report(rows: Iterable[BillRow], query: Sequence[tuple[str, str]], now: datetime) -> dict[str, Any]:
    """One page of the cost report: daily buckets, amounts in cents as decimal strings (§11.2)."""
    window = _Window(query, now, ("1d",))
    groups = _group_by(query, COST_GROUP_BY, ())
    filters = {k: v for k, v in _filters(query).items() if k == "workspace_id"}
    starts, following = window.buckets()
    billed = [row for row in _selected(rows, filters, window.first, window.end) if row.cost is not None]
    by_description = "description" in groups
    by_workspace = "workspace_id" in groups
    data = []
    for start in starts:
        end = start + window.length
        sums: dict[tuple[Any, ...], Decimal] = defaultdict(Decimal)
        for row in billed:
            if not start <= row.time < end:
                continue
            assert row.cost is not None
            workspace = row.workspace if by_workspace else None
            tier = str(row.usage.get("service_tier") or "standard")
            window_name = context_window(row.usage)
            for token_type, component in _TOKEN_TYPES:
                amount = getattr(row.cost, component)
                if by_description:
                    sums[(workspace, row.model, "tokens", token_type, tier, window_name)] += amount
                else:
                    sums[(workspace, None, None, None, None, None)] += amount
            if row.cost.web_search:
                if by_description:
                    sums[(workspace, row.model, "web_search", None, tier, window_name)] += row.cost.web_search
                else:
                    sums[(workspace, None, None, None, None, None)] += row.cost.web_search
        results = []
        for key, amount in sorted(sums.items(), key=lambda item: tuple(v or "" for v in item[0])):
            workspace, model, cost_type, token_type, tier, window_name = key
            if by_description and not amount and cost_type == "tokens":
                continue  # no line item for a token type the day did not use
            results.append(
                {
                    "amount": _cents(amount),
                    "currency": "USD",
                    "workspace_id": workspace,
                    "description": _description(model, token_type or cost_type) if model else None,
                    "cost_type": cost_type,
                    "token_type": token_type,
                    "model": model,
                    "service_tier": tier,
                    "context_window": window_name,
                }
            )
        data.append({"starting_at": _iso(start), "ending_at": _iso(end), "results": results})
    return _page(data, following)


def _cents(dollars: Decimal) -> str:
    return f"{(dollars * _CENTS).normalize():f}"


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def serve(
    method: str,
    path: str,
    query: Sequence[tuple[str, str]],
    rows: Iterable[BillRow],
    now: datetime,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The body of one admin request (the key is checked by the caller, :func:`check_admin`)."""
    from . import analytics  # the successor API (analytics.py) reuses this module's helpers

    path = path.rstrip("/")
    if method.upper() == "GET" and path in (analytics.ANALYTICS_USAGE_PATH, analytics.ANALYTICS_COST_PATH):
        analytics.check_beta(headers or {}, path)
        if path == analytics.ANALYTICS_USAGE_PATH:
            return analytics.analytics_usage(rows, query, now)
        return analytics.analytics_cost(rows, query, now)
    if method.upper() == "GET" and path == USAGE_PATH:
        return usage_report(rows, query, now)
    if method.upper() == "GET" and path == COST_PATH:
        return cost_report(rows, query, now)
    raise not_found(f"{method.upper()} {path} is not an Admin API endpoint of this emulator")
