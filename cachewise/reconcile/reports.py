"""The usage and cost reports, fetched page by page and read into rows (docs/api-notes.md §11).

A row is one bucket × model × group (the workspace or API key id, or ``None``) with the
report's counters; the cost report adds its amount, read from cents (decimal text) into USD.
Anything not in the documented shape is a :class:`ReconcileError` naming the endpoint, the
page and the bucket.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from .client import AdminClient
from .errors import ReconcileError

__all__ = [
    "COST_PATH",
    "COUNTERS",
    "USAGE_PATH",
    "Figures",
    "GroupBy",
    "Key",
    "fetch_cost",
    "fetch_usage",
    "read_cost_page",
    "read_usage_page",
]

USAGE_PATH = "/v1/organizations/usage_report/messages"
COST_PATH = "/v1/organizations/cost_report"
#: The compared counters, with the ledger's names; the usage report's names are in _USAGE_NAMES.
COUNTERS: tuple[str, ...] = (
    "input_tokens",
    "ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens",
    "cache_read_input_tokens",
    "output_tokens",
)
GroupBy = Literal["workspace_id", "api_key_id"] | None
#: A bucket's start, the model, the group's value.
Key = tuple[datetime, str, str | None]
UNATTRIBUTED = "(no model)"
_CENTS = Decimal(100)


@dataclass(slots=True)
class Figures:
    """What one side says about one key: the counters, the cost in USD (``None``: not reported)."""

    input_tokens: int = 0
    ephemeral_5m_input_tokens: int = 0
    ephemeral_1h_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    output_tokens: int = 0
    cost: Decimal | None = None
    calls: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def tokens(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def add_cost(self, amount: Decimal) -> None:
        self.cost = amount if self.cost is None else self.cost + amount


def _time(value: Any, what: str, endpoint: str, page: int, bucket: str | None) -> datetime:
    if not isinstance(value, str):
        raise ReconcileError(
            endpoint, f"{what} should be an RFC 3339 string, got {value!r}", page=page, bucket=bucket
        )
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise ReconcileError(
            endpoint, f"{what} {value!r} is not an RFC 3339 time", page=page, bucket=bucket
        ) from None
    if moment.tzinfo is None:
        raise ReconcileError(endpoint, f"{what} {value!r} has no timezone", page=page, bucket=bucket)
    return moment.astimezone(UTC)


def _buckets(body: Mapping[str, Any], endpoint: str, page: int) -> Iterable[tuple[datetime, str, list[Any]]]:
    for i, bucket in enumerate(body["data"]):
        if not isinstance(bucket, Mapping):
            raise ReconcileError(endpoint, f"data.{i} should be a bucket object, got {bucket!r}", page=page)
        name = str(bucket.get("starting_at", f"data.{i}"))
        start = _time(bucket.get("starting_at"), "starting_at", endpoint, page, name)
        _time(bucket.get("ending_at"), "ending_at", endpoint, page, name)
        results = bucket.get("results")
        if not isinstance(results, list):
            raise ReconcileError(
                endpoint, f"'results' should be a list, got {results!r}", page=page, bucket=name
            )
        yield start, name, results


def _count(result: Mapping[str, Any], path: str, endpoint: str, page: int, bucket: str) -> int:
    value: Any = result
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ReconcileError(
            endpoint,
            f"{path} should be a count (a whole number >= 0), got {value!r}",
            page=page,
            bucket=bucket,
        )
    return value


_USAGE_NAMES = {
    "input_tokens": "uncached_input_tokens",
    "ephemeral_5m_input_tokens": "cache_creation.ephemeral_5m_input_tokens",
    "ephemeral_1h_input_tokens": "cache_creation.ephemeral_1h_input_tokens",
    "cache_read_input_tokens": "cache_read_input_tokens",
    "output_tokens": "output_tokens",
}


def _group(result: Mapping[str, Any], group_by: GroupBy, endpoint: str, page: int, bucket: str) -> str | None:
    if group_by is None:
        return None
    value = result.get(group_by)
    if value is not None and not isinstance(value, str):
        raise ReconcileError(
            endpoint, f"{group_by} should be a string, got {value!r}", page=page, bucket=bucket
        )
    return value


def read_usage_page(body: Mapping[str, Any], page: int, group_by: GroupBy, into: dict[Key, Figures]) -> None:
    """Add one usage report page's rows to ``into``."""
    endpoint = USAGE_PATH
    for start, name, results in _buckets(body, endpoint, page):
        for j, result in enumerate(results):
            if not isinstance(result, Mapping):
                raise ReconcileError(endpoint, f"results.{j} should be an object", page=page, bucket=name)
            model = result.get("model")
            if model is not None and not isinstance(model, str):
                raise ReconcileError(
                    endpoint, f"results.{j}.model should be a model id or null, got {model!r}",
                    page=page, bucket=name,
                )  # fmt: skip
            key = (start, model or UNATTRIBUTED, _group(result, group_by, endpoint, page, name))
            figures = into.setdefault(key, Figures())
            for counter, path in _USAGE_NAMES.items():
                setattr(
                    figures, counter, getattr(figures, counter) + _count(result, path, endpoint, page, name)
                )


def read_cost_page(body: Mapping[str, Any], page: int, group_by: GroupBy, into: dict[Key, Decimal]) -> None:
    """Add one cost report page's amounts (USD) to ``into``, per bucket × model (× workspace)."""
    endpoint = COST_PATH
    for start, name, results in _buckets(body, endpoint, page):
        for j, result in enumerate(results):
            if not isinstance(result, Mapping):
                raise ReconcileError(endpoint, f"results.{j} should be an object", page=page, bucket=name)
            usd = _usd(result, f"results.{j}", endpoint, page, name)
            model = result.get("model")
            if model is not None and not isinstance(model, str):
                raise ReconcileError(
                    endpoint, f"results.{j}.model should be a string", page=page, bucket=name
                )
            group = (
                _group(result, "workspace_id", endpoint, page, name) if group_by == "workspace_id" else None
            )
            key = (start, model or UNATTRIBUTED, group)
            into[key] = into.get(key, Decimal(0)) + usd


def _usd(entry: Mapping[str, Any], where: str, endpoint: str, page: int, bucket: str) -> Decimal:
    """``entry``'s ``amount`` (cents as decimal text, ``currency`` USD) in USD, or a ReconcileError."""
    currency = entry.get("currency")
    if currency != "USD":
        raise ReconcileError(
            endpoint, f"{where}.currency is {currency!r}, not 'USD'", page=page, bucket=bucket
        )
    amount = entry.get("amount")
    try:
        cents = Decimal(amount) if isinstance(amount, str) else None
    except InvalidOperation:
        cents = None
    if cents is None or not cents.is_finite():
        raise ReconcileError(
            endpoint, f"{where}.amount should be a decimal string of cents, got {amount!r}",
            page=page, bucket=bucket,
        )  # fmt: skip
    return cents / _CENTS


def _params(
    since: datetime, until: datetime, width: str, groups: list[str], limit: int | None
) -> list[tuple[str, str]]:
    params = [
        ("starting_at", since.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("ending_at", until.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ("bucket_width", width),
    ]
    params += [("group_by[]", g) for g in groups]
    if limit is not None:
        params.append(("limit", str(limit)))
    return params


def fetch_usage(
    client: AdminClient,
    since: datetime,
    until: datetime,
    *,
    width: str = "1d",
    group_by: GroupBy = None,
    limit: int | None = None,
) -> dict[Key, Figures]:
    """The Messages usage report for ``[since, until)``, grouped by model (and ``group_by``)."""
    groups = ["model", *([group_by] if group_by else [])]
    out: dict[Key, Figures] = {}
    for number, body in enumerate(client.pages(USAGE_PATH, _params(since, until, width, groups, limit)), 1):
        read_usage_page(body, number, group_by, out)
    return out


def fetch_cost(
    client: AdminClient,
    since: datetime,
    until: datetime,
    *,
    group_by: GroupBy = None,
    limit: int | None = None,
) -> dict[Key, Decimal]:
    """The cost report (daily) for ``[since, until)``, per model via ``description`` (and workspace)."""
    groups = ["description", *(["workspace_id"] if group_by == "workspace_id" else [])]
    out: dict[Key, Decimal] = {}
    for number, body in enumerate(client.pages(COST_PATH, _params(since, until, "1d", groups, limit)), 1):
        read_cost_page(body, number, group_by, out)
    return out
