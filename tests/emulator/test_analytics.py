"""The emulator's Usage and Cost Analytics API over a real socket: the SDK-typed row shapes, the
required beta header, grouping, pagination by rows, and the range rules."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from anthropic.types.beta.organization.analytics import BetaAnalyticsCostItem, BetaAnalyticsUsageItem

from cachewise.emulator import EmulatorServer
from cachewise.emulator.analytics import ANALYTICS_BETA
from tests.fixtures.reconcile_org import ADMIN, Org, build

USAGE = "/v1/organizations/analytics/usage"
COST = "/v1/organizations/analytics/cost"


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build(tmp_path_factory.mktemp("org"))


@pytest.fixture(scope="module")
def http(org: Org) -> Iterator[httpx.Client]:
    with EmulatorServer(org.emu) as running, httpx.Client(base_url=running.base_url) as client:
        yield client


def _get(
    http: httpx.Client, org: Org, path: str, *extra: tuple[str, str], beta: bool = True, key: str = ADMIN
) -> httpx.Response:
    params = [("starting_at", org.since.isoformat()), ("ending_at", org.until.isoformat()), *extra]
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if beta:
        headers["anthropic-beta"] = f"other-beta-2025-01-01,{ANALYTICS_BETA}"
    return http.get(path, params=params, headers=headers)


def test_rows_parse_as_the_sdk_types_and_sum_to_the_bill(org: Org, http: httpx.Client) -> None:
    done = _get(http, org, USAGE, ("time_bucket_width", "1d"), ("group_by[]", "model"), ("limit", "1000"))
    assert done.status_code == 200
    body = done.json()
    rows = [BetaAnalyticsUsageItem.model_validate(row) for row in body["data"]]
    assert body["has_more"] is False and body["next_page"] is None
    bill = org.emu.bill()
    assert sum(r.usage.output_tokens for r in rows) == sum(b["usage"]["output_tokens"] for b in bill)
    assert sum(r.usage.requests or 0 for r in rows) == len(bill)
    assert all(r.group.model == "claude-sonnet-4-6" and r.group.workspace_id is None for r in rows)
    assert all(r.ending_at - r.starting_at == timedelta(days=1) for r in rows)
    for r in rows:
        assert r.usage.total_tokens == (
            r.usage.uncached_input_tokens + r.usage.cache_creation.ephemeral_5m_input_tokens
            + r.usage.cache_creation.ephemeral_1h_input_tokens + r.usage.cache_read_input_tokens
            + r.usage.output_tokens
        )  # fmt: skip
    cost = _get(http, org, COST, ("time_bucket_width", "1d"), ("group_by[]", "workspace_id")).json()
    items = [BetaAnalyticsCostItem.model_validate(row) for row in cost["data"]]
    billed = sum(Decimal(b["cost_total"]) for b in bill)
    assert sum(Decimal(i.cost.amount) for i in items) / 100 == billed > 0
    assert {i.group.workspace_id for i in items} == {"wrkspc_a"} and all(
        i.cost.currency == "USD" for i in items
    )


def test_without_the_beta_header_the_request_is_refused_in_the_api_error_shape(
    org: Org, http: httpx.Client
) -> None:
    for path in (USAGE, COST):
        done = _get(http, org, path, beta=False)
        assert done.status_code == 400
        body = done.json()
        assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
        assert ANALYTICS_BETA in body["error"]["message"] and path in body["error"]["message"]


def test_a_regular_key_is_refused_before_the_beta_header_is_looked_at(org: Org, http: httpx.Client) -> None:
    done = _get(http, org, USAGE, key="sk-ant-api03-regular")
    assert done.status_code == 401 and done.json()["error"]["type"] == "authentication_error"


def test_pages_are_rows_and_the_cursor_walks_them_all(org: Org, http: httpx.Client) -> None:
    base = (("time_bucket_width", "1h"), ("order_by", "time"), ("order", "asc"))
    whole = _get(http, org, USAGE, *base, ("limit", "1000")).json()["data"]
    walked: list[dict[str, Any]] = []
    extra: tuple[tuple[str, str], ...] = ()
    for _ in range(len(whole) + 1):
        body = _get(http, org, USAGE, *base, ("limit", "2"), *extra).json()
        assert len(body["data"]) <= 2
        walked += body["data"]
        if not body["has_more"]:
            break
        extra = (("page", body["next_page"]),)
    assert walked == whole and len(whole) > 2
    assert [r["starting_at"] for r in whole] == sorted(r["starting_at"] for r in whole)


def test_without_a_bucket_width_one_row_covers_the_range_in_whole_hours(org: Org, http: httpx.Client) -> None:
    (row,) = _get(http, org, USAGE).json()["data"]
    assert row["starting_at"] == org.since.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert row["usage"]["requests"] == len(org.emu.bill())


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ((("time_bucket_width", "1w"),), "time_bucket_width"),
        ((("group_by[]", "actor"),), "group_by.0"),
        ((("limit", "1001"),), "limit"),
        ((("page", "nonsense"),), "page"),
        ((("order", "up"),), "order"),
    ],
)
def test_bad_queries_are_refused_naming_the_parameter(
    org: Org, http: httpx.Client, extra: tuple[tuple[str, str], ...], field: str
) -> None:
    done = _get(http, org, USAGE, *extra)
    assert done.status_code == 400 and done.json()["error"]["message"].startswith(field)


def test_a_range_over_31_days_is_refused(org: Org, http: httpx.Client) -> None:
    params = [
        ("starting_at", org.since.isoformat()),
        ("ending_at", (org.since + timedelta(days=32)).isoformat()),
    ]
    headers = {"x-api-key": ADMIN, "anthropic-beta": ANALYTICS_BETA}
    done = http.get(USAGE, params=params, headers=headers)
    assert done.status_code == 400 and "31 days" in done.json()["error"]["message"]


def test_filters_and_the_order_within_a_bucket(org: Org, http: httpx.Client) -> None:
    day = (("time_bucket_width", "1d"), ("group_by[]", "model"))
    assert _get(http, org, USAGE, *day, ("models[]", "claude-opus-4-1")).json()["data"] == []
    assert _get(http, org, USAGE, *day, ("context_windows[]", "200k-1M")).json()["data"] == []
    assert len(_get(http, org, USAGE, *day, ("context_windows[]", "0-200k")).json()["data"]) == 3
    ranked = _get(http, org, COST, *day).json()["data"]  # default: by amount, highest first
    amounts = [Decimal(r["cost"]["amount"]) for r in ranked]
    assert amounts == sorted(amounts, reverse=True) and len(amounts) == 3
    newest = _get(http, org, COST, *day, ("order_by", "time")).json()["data"]
    assert [r["starting_at"] for r in newest] == sorted((r["starting_at"] for r in ranked), reverse=True)


def test_a_start_before_2026_or_over_a_year_back_is_refused(org: Org, http: httpx.Client) -> None:
    headers = {"x-api-key": ADMIN, "anthropic-beta": ANALYTICS_BETA}
    for start in ("2025-12-31T00:00:00Z", (org.emu.now() - timedelta(days=366)).isoformat()):
        done = http.get(USAGE, params={"starting_at": start}, headers=headers)
        assert done.status_code == 400 and "365 days" in done.json()["error"]["message"]
