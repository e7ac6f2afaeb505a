"""The Admin API's usage and cost reports, served from the emulator's bill (docs/api-notes.md §11)."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import anthropic
import pytest
from emulator_helpers import MODEL, sdk, text

from cachewise.emulator import Emulator, HttpRequest
from cachewise.emulator.admin import context_window

ADMIN = "sk-ant-admin01-test"
USAGE = "/v1/organizations/usage_report/messages"
COST = "/v1/organizations/cost_report"


def _get(emu: Emulator, path: str, query: list[tuple[str, str]], key: str = ADMIN) -> tuple[int, Any]:
    answer = emu.handle(HttpRequest("GET", path, query=query, headers={"x-api-key": key}))
    return answer.status, json.loads(answer.body)


def _start(emu: Emulator) -> str:
    return emu.clock.start.replace(hour=0, minute=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def _call(client: anthropic.Anthropic, n: int = 1100, ttl: str | None = None) -> None:
    client.messages.create(
        model=MODEL,
        max_tokens=20,
        system=[text(n, ttl, mark=True)],
        messages=[{"role": "user", "content": "hi"}],
    )


@pytest.fixture
def billed(emu: Emulator) -> Emulator:
    """Two keys (two workspaces), three calls on day 0 at minutes 0, 1 and 61, one on day 1."""
    emu.set_workspace("sk-a", "wrkspc_a")
    emu.set_workspace("sk-b", "wrkspc_b")
    with sdk(emu, "sk-a") as a, sdk(emu, "sk-b") as b:
        _call(a)  # writes 5m
        emu.advance(60)
        _call(a)  # reads
        emu.advance(3600)
        _call(b, ttl="1h")  # another workspace: writes 1h
        emu.advance(86400)
        _call(a, n=1500)
    return emu


def test_daily_buckets_grouped_by_model_and_workspace_sum_the_bill(billed: Emulator) -> None:
    query = [("starting_at", _start(billed)), ("ending_at", "2026-11-23T00:00:00Z")]
    query += [("group_by[]", "model"), ("group_by[]", "workspace_id")]
    status, page = _get(billed, USAGE, query)
    assert status == 200
    assert page["has_more"] is False and page["next_page"] is None
    assert [b["starting_at"] for b in page["data"]] == [
        "2026-11-20T00:00:00Z", "2026-11-21T00:00:00Z", "2026-11-22T00:00:00Z"
    ]  # fmt: skip
    assert page["data"][2]["results"] == []  # an empty bucket is listed, with no rows
    day0 = {r["workspace_id"]: r for r in page["data"][0]["results"]}
    rows = [row for row in billed.bill() if row["time"].startswith("2026-11-20")]
    for workspace, result in day0.items():
        mine = [r["usage"] for r in rows if r["workspace"] == workspace]
        assert result["model"] == MODEL
        assert result["uncached_input_tokens"] == sum(u["input_tokens"] for u in mine)
        assert result["cache_read_input_tokens"] == sum(u["cache_read_input_tokens"] for u in mine)
        assert result["output_tokens"] == sum(u["output_tokens"] for u in mine)
        for ttl in ("5m", "1h"):
            name = f"ephemeral_{ttl}_input_tokens"
            assert result["cache_creation"][name] == sum(u["cache_creation"][name] for u in mine)
        assert result["api_key_id"] is None  # not grouped: null
    assert day0["wrkspc_a"]["cache_read_input_tokens"] > 0
    assert day0["wrkspc_b"]["cache_creation"]["ephemeral_1h_input_tokens"] > 0


@pytest.mark.parametrize(("width", "buckets", "used"), [("1h", 24, 2), ("1m", 60, 2)])
def test_narrow_buckets_snap_to_the_utc_hour_or_minute(
    billed: Emulator, width: str, buckets: int, used: int
) -> None:
    start = "2026-11-20T12:00:30Z" if width == "1m" else "2026-11-20T12:10:00Z"
    status, page = _get(billed, USAGE, [("starting_at", start), ("bucket_width", width)])
    assert status == 200
    assert page["data"][0]["starting_at"] == "2026-11-20T12:00:00Z"
    assert len(page["data"]) == buckets  # the documented default limit for the width
    assert sum(1 for b in page["data"] if b["results"]) == used
    assert page["has_more"] is True


def test_pages_follow_next_page_until_has_more_is_false(billed: Emulator) -> None:
    query = [("starting_at", "2026-11-15T00:00:00Z"), ("ending_at", "2026-11-22T00:00:00Z"), ("limit", "3")]
    starts: list[str] = []
    token: str | None = None
    for _ in range(5):
        status, page = _get(billed, USAGE, query + ([("page", token)] if token else []))
        assert status == 200
        starts += [b["starting_at"] for b in page["data"]]
        token = page["next_page"]
        if not page["has_more"]:
            break
    assert token is None
    assert len(starts) == 7 and len(set(starts)) == 7
    assert starts[-1] == "2026-11-21T00:00:00Z"


def test_group_by_api_key_and_the_request_dimensions(billed: Emulator) -> None:
    groups = ["api_key_id", "service_tier", "context_window", "inference_geo", "speed"]
    query = [("starting_at", _start(billed)), ("limit", "1"), *(("group_by[]", g) for g in groups)]
    _, page = _get(billed, USAGE, query)
    results = page["data"][0]["results"]
    assert len({r["api_key_id"] for r in results}) == 2
    assert all(r["api_key_id"].startswith("apikey_emu") for r in results)
    assert {(r["service_tier"], r["context_window"], r["inference_geo"], r["speed"]) for r in results} == {
        ("standard", "0-200k", "global", "standard")
    }
    assert all(r["model"] is None for r in results)
    assert context_window({"input_tokens": 150_000, "cache_read_input_tokens": 60_000}) == "200k-1M"


def test_the_cost_report_gives_cents_per_model_and_token_type(billed: Emulator) -> None:
    query = [("starting_at", _start(billed)), ("limit", "2"), ("group_by[]", "description")]
    status, page = _get(billed, COST, query)
    assert status == 200
    day0 = page["data"][0]["results"]
    assert {r["token_type"] for r in day0} >= {
        "uncached_input_tokens", "cache_read_input_tokens", "output_tokens",
        "cache_creation.ephemeral_5m_input_tokens", "cache_creation.ephemeral_1h_input_tokens",
    }  # fmt: skip
    assert all(r["currency"] == "USD" and r["cost_type"] == "tokens" and r["model"] == MODEL for r in day0)
    billed_day0 = sum(Decimal(r["cost_total"]) for r in billed.bill() if r["time"].startswith("2026-11-20"))
    assert sum(Decimal(r["amount"]) for r in day0) == billed_day0 * 100
    _, plain = _get(billed, COST, [("starting_at", _start(billed)), ("limit", "1")])
    (total,) = plain["data"][0]["results"]
    assert Decimal(total["amount"]) == billed_day0 * 100 and total["model"] is None


@pytest.mark.parametrize(
    ("path", "query", "message"),
    [
        (COST, [("bucket_width", "1h")], "bucket_width"),
        (USAGE, [("limit", "32")], "limit: must be between 1 and 31"),
        (USAGE, [("bucket_width", "1h"), ("limit", "169")], "between 1 and 168"),
        (USAGE, [("group_by[]", "colour")], "group_by.0"),
        (COST, [("group_by[]", "model")], "group_by.0"),
        (USAGE, [("page", "not-a-token!")], "page"),
    ],
)
def test_bad_queries_are_400s_naming_the_parameter(
    emu: Emulator, path: str, query: list[tuple[str, str]], message: str
) -> None:
    status, body = _get(emu, path, [("starting_at", "2026-11-20T00:00:00Z"), *query])
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert message in body["error"]["message"]
    status, body = _get(emu, path, [])
    assert (status, body["error"]["message"]) == (400, "starting_at: Field required")


def test_a_regular_key_is_refused_with_the_apis_error_shape(emu: Emulator) -> None:
    status, body = _get(emu, USAGE, [("starting_at", "2026-11-20T00:00:00Z")], key="sk-ant-api03-normal")
    assert status == 401
    assert body["type"] == "error" and body["error"]["type"] == "authentication_error"
    assert "Admin API key" in body["error"]["message"] and body["request_id"].startswith("req_")
    with sdk(emu, ADMIN) as admin_as_api, pytest.raises(anthropic.AuthenticationError):
        _call(admin_as_api)  # and an admin key cannot call the Messages API
    assert emu.bill() == []


def test_admin_faults_hit_the_report_pages_after_the_first(billed: Emulator) -> None:
    billed.faults.add("api_error", endpoint="admin", after=1)
    query = [("starting_at", "2026-11-15T00:00:00Z"), ("limit", "2")]
    first, _ = _get(billed, USAGE, query)
    second, body = _get(billed, USAGE, query)
    third, _ = _get(billed, USAGE, query)
    assert (first, second, third) == (200, 500, 200)
    assert body["error"]["type"] == "api_error"
    assert billed.now() - billed.clock.start == timedelta(seconds=60 + 3600 + 86400)


def test_an_admin_fault_over_http_and_a_negative_after_is_refused(emu: Emulator) -> None:
    body = json.dumps([{"kind": "rate_limit", "endpoint": "admin", "after": -1}]).encode()
    answer = emu.handle(HttpRequest("POST", "/_emulator/faults", body=body))
    assert answer.status == 400 and b"faults.0.after" in answer.body
    body = json.dumps([{"kind": "rate_limit", "endpoint": "admin"}]).encode()
    assert emu.handle(HttpRequest("POST", "/_emulator/faults", body=body)).status == 200
    status, refused = _get(emu, USAGE, [("starting_at", "2026-11-20T00:00:00Z")])
    assert (status, refused["error"]["type"]) == (429, "rate_limit_error")
