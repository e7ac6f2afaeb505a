"""Reconciliation read from the Usage and Cost Analytics API (the legacy reports' successor).

The same organisation as tests/reconcile/test_run.py, the emulator serving the analytics
endpoints from its bill: a clean run reports zero gap, the planted gaps are found with the same
kinds, pages are followed, and a refused key or a missing beta header names the endpoint.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from cachewise.emulator import HttpxEmulatorTransport
from cachewise.ledger import Ledger
from cachewise.reconcile import AdminClient, ReconcileError, Reconciliation, reconcile
from cachewise.reconcile.analytics import (
    ANALYTICS_COST_PATH,
    ANALYTICS_USAGE_PATH,
    fetch_analytics_cost,
    fetch_analytics_usage,
    windows,
)
from cachewise.reconcile.reports import fetch_cost, fetch_usage
from tests.fixtures.reconcile_org import Org, admin_client, build


def _run(org: Org, client: AdminClient | None = None, **options: Any) -> Reconciliation:
    with (
        Ledger.open_existing(org.ledger_path, flush_on_signal=False) as ledger,
        client or admin_client(org.emu) as admin,
    ):
        return reconcile(ledger, admin, since=org.since, until=org.until, **options)


def test_a_clean_run_from_the_analytics_api_reports_zero_gap(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=())
    result = _run(org, source="analytics", limit=1)
    assert result.source == "analytics" and result.as_dict()["source"] == "analytics"
    assert result.gaps == [] and result.gap == 0
    billed = sum(Decimal(row["cost_total"]) for row in org.emu.bill())
    assert result.report_cost == result.ledger_cost == billed > 0
    assert result.report_tokens == result.ledger_tokens > 0


def test_a_call_around_the_wrapper_is_found_through_the_analytics_api(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=("bypass",))
    result = _run(org, source="analytics")
    (gap,) = result.gaps
    around = [r for r in org.emu.bill() if r["time"].startswith("2026-11-20")][-1]
    assert gap.kind == "bypassed" and gap.starting_at.day == 20
    assert gap.token_gap["input_tokens"] == around["usage"]["input_tokens"]
    assert gap.cost_gap == Decimal(around["cost_total"])


def test_every_planted_gap_has_the_same_kind_from_either_source(tmp_path: Path) -> None:
    org = build(tmp_path)
    legacy = _run(org, limit=2)
    analytics = _run(org, source="analytics", limit=1)
    assert [(g.kind, g.starting_at, g.token_gap, g.cost_gap) for g in analytics.gaps] == [
        (g.kind, g.starting_at, g.token_gap, g.cost_gap) for g in legacy.gaps
    ]
    assert {g.kind for g in analytics.gaps} == {
        "bypassed", "priced_differently", "missing_in_ledger", "missing_in_report",
    }  # fmt: skip


def test_the_analytics_rows_equal_the_legacy_reports_row_for_row(tmp_path: Path) -> None:
    org = build(tmp_path)
    with admin_client(org.emu) as admin:
        for width in ("1d", "1h"):
            for group in (None, "workspace_id"):
                new = fetch_analytics_usage(admin, org.since, org.until, width=width, group_by=group, limit=1)
                old = fetch_usage(admin, org.since, org.until, width=width, group_by=group)
                assert new == {k: v for k, v in old.items() if any(v.tokens().values())}
        cost = fetch_analytics_cost(admin, org.since, org.until, limit=1)
        assert cost == {k: v for k, v in fetch_cost(admin, org.since, org.until).items() if v}


def test_pages_are_followed_one_row_at_a_time(tmp_path: Path) -> None:
    org = build(tmp_path)
    seen: list[httpx.Request] = []
    transport = HttpxEmulatorTransport(org.emu)

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return transport.handle_request(request)

    client = AdminClient(
        "sk-ant-admin01-scenario", base_url="http://emulator.local", transport=httpx.MockTransport(spy)
    )
    with client:
        usage = fetch_analytics_usage(client, org.since, org.until, limit=1)
    assert len(usage) == 3  # days 0, 1 and 2 billed (day 3's row is the ledger's alone)
    assert len(seen) == 3 and "page" not in seen[0].url.params
    assert all(r.url.params.get("page") for r in seen[1:])
    assert all(r.headers["anthropic-beta"] == "analytics-usage-cost-2026-08-24" for r in seen)


def test_cost_is_compared_hourly_and_per_api_key_from_the_analytics_api(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=("bypass",))
    hourly = _run(org, source="analytics", width="1h")
    (gap,) = hourly.gaps
    assert hourly.measure == "cost" and gap.kind == "bypassed" and gap.cost_gap and gap.cost_gap > 0
    legacy_hourly = _run(org, width="1h")
    assert legacy_hourly.measure == "tokens"


def test_a_regular_key_is_refused_naming_the_analytics_endpoint(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=())
    with pytest.raises(ReconcileError) as caught:
        _run(org, admin_client(org.emu, key="sk-ant-api03-bot"), source="analytics")
    assert (caught.value.endpoint, caught.value.status, caught.value.page) == (ANALYTICS_USAGE_PATH, 401, 1)
    assert "sk-ant-admin" in str(caught.value) and ANALYTICS_USAGE_PATH in str(caught.value)


def test_auto_does_not_hide_a_refused_key_behind_the_legacy_reports(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=())
    with pytest.raises(ReconcileError) as caught:
        _run(org, admin_client(org.emu, key="sk-ant-api03-bot"), source="auto")
    assert caught.value.endpoint == ANALYTICS_USAGE_PATH


def _without(path: str, org: Org) -> httpx.MockTransport:
    """The emulator, as an organisation whose API does not serve ``path`` yet (404)."""
    transport = HttpxEmulatorTransport(org.emu)

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == path:
            body = {"type": "error", "error": {"type": "not_found_error", "message": "Not Found"}}
            return httpx.Response(404, json=body)
        return transport.handle_request(request)

    return httpx.MockTransport(handler)


def test_auto_falls_back_to_the_legacy_reports_on_404_and_says_so(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=("bypass",))
    client = AdminClient(
        "sk-ant-admin01-scenario",
        base_url="http://emulator.local",
        transport=_without(ANALYTICS_USAGE_PATH, org),
    )
    result = _run(org, client, source="auto")
    assert result.source == "usage_report" and [g.kind for g in result.gaps] == ["bypassed"]
    assert _run(org, source="auto").source == "analytics"
    forced = AdminClient(
        "sk-ant-admin01-scenario",
        base_url="http://emulator.local",
        transport=_without(ANALYTICS_USAGE_PATH, org),
    )
    with pytest.raises(ReconcileError) as caught:
        _run(org, forced, source="analytics")
    assert (caught.value.endpoint, caught.value.status) == (ANALYTICS_USAGE_PATH, 404)


def test_a_failing_cost_endpoint_is_not_a_fallback(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=())
    client = AdminClient(
        "sk-ant-admin01-scenario",
        base_url="http://emulator.local",
        transport=_without(ANALYTICS_COST_PATH, org),
    )
    with pytest.raises(ReconcileError) as caught:
        _run(org, client, source="auto")
    assert (caught.value.endpoint, caught.value.status) == (ANALYTICS_COST_PATH, 404)


def test_a_row_in_an_unexpected_shape_names_the_endpoint_page_and_bucket(tmp_path: Path) -> None:
    org = build(tmp_path, gaps=("repriced",))
    transport = HttpxEmulatorTransport(org.emu)

    def handler(request: httpx.Request) -> httpx.Response:
        response = transport.handle_request(request)
        response.read()
        body = response.json()
        if request.url.params.get("page"):
            body["data"][0]["usage"]["output_tokens"] = "many"
        return httpx.Response(response.status_code, json=body)

    client = AdminClient(
        "sk-ant-admin01-scenario", base_url="http://emulator.local", transport=httpx.MockTransport(handler)
    )
    with client, pytest.raises(ReconcileError) as caught:
        fetch_analytics_usage(client, org.since, org.until, limit=1)
    error = caught.value
    assert (error.endpoint, error.page, error.bucket) == (ANALYTICS_USAGE_PATH, 2, "2026-11-21T00:00:00Z")
    assert "output_tokens" in str(error)


def test_long_windows_are_cut_at_midnight_into_ranges_the_api_accepts() -> None:
    since = datetime(2026, 9, 1, 15, 30, tzinfo=UTC)
    until = since + timedelta(days=70)
    cuts = windows(since, until, "1d")
    assert cuts[0][0] == since and cuts[-1][1] == until
    assert all(a[1] == b[0] for a, b in itertools.pairwise(cuts))
    assert all(end - start <= timedelta(days=31) for start, end in cuts)
    assert all(end.time().isoformat() == "00:00:00" for _, end in cuts[:-1])
    minutes = windows(since, since + timedelta(hours=30), "1m")
    assert len(minutes) == 2 and all(end - start <= timedelta(hours=24) for start, end in minutes)


def test_a_page_that_fails_part_way_is_raised_and_auto_does_not_fall_back(tmp_path: Path) -> None:
    org = build(tmp_path)
    before = org.ledger_path.read_bytes()
    for source in ("analytics", "auto"):
        org.emu.faults.add("overloaded", endpoint="admin", after=1)
        with pytest.raises(ReconcileError) as caught:
            _run(org, source=source, limit=1)
        assert (caught.value.endpoint, caught.value.page, caught.value.status) == (
            ANALYTICS_USAGE_PATH,
            2,
            529,
        )
        assert "overloaded_error" in str(caught.value)
    assert org.ledger_path.read_bytes() == before  # nothing written


def test_a_request_without_the_beta_header_is_an_error_naming_the_endpoint_and_the_header(
    tmp_path: Path,
) -> None:
    org = build(tmp_path, gaps=())
    params = [("starting_at", "2026-11-20T00:00:00Z"), ("ending_at", "2026-11-21T00:00:00Z")]
    with admin_client(org.emu) as admin, pytest.raises(ReconcileError) as caught:
        list(admin.pages(ANALYTICS_COST_PATH, params))
    error = caught.value
    assert (error.endpoint, error.page, error.status) == (ANALYTICS_COST_PATH, 1, 400)
    assert str(error).startswith(f"{ANALYTICS_COST_PATH} page 1: HTTP 400 invalid_request_error")
    assert "anthropic-beta: analytics-usage-cost-2026-08-24" in str(error)
