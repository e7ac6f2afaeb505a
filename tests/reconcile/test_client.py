"""Bad input at the Admin API: a refused key, a page that fails part-way, a page not in the report's
shape. Each is a ReconcileError naming the endpoint and page; the ledger is left byte for byte."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from cachewise.ledger import Ledger
from cachewise.reconcile import AdminClient, ReconcileError, reconcile
from tests.fixtures.reconcile_org import Org, admin_client, build

USAGE = "/v1/organizations/usage_report/messages"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _attempt(org: Org, admin: AdminClient) -> ReconcileError:
    before = _digest(org.ledger_path)
    with (
        Ledger(org.ledger_path, create=False, upgrade=False, flush_on_signal=False) as ledger,
        admin,
        pytest.raises(ReconcileError) as info,
    ):
        reconcile(ledger, admin, since=org.since, until=org.until, limit=2)
    assert _digest(org.ledger_path) == before  # nothing written by reconciliation
    return info.value


@pytest.fixture(scope="module")
def org(tmp_path_factory: pytest.TempPathFactory) -> Org:
    return build(tmp_path_factory.mktemp("org"))


def test_a_regular_key_is_refused_and_the_error_says_what_key_is_needed(org: Org) -> None:
    error = _attempt(org, admin_client(org.emu, key="sk-ant-api03-not-admin"))
    assert (error.endpoint, error.page, error.status) == (USAGE, 1, 401)
    assert "authentication_error" in str(error) and "sk-ant-admin" in str(error)


def test_no_key_at_all_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_ADMIN_API_KEY", raising=False)
    with pytest.raises(ReconcileError, match=r"\$ANTHROPIC_ADMIN_API_KEY"):
        AdminClient()


def test_a_page_that_fails_part_way_names_the_page_and_nothing_is_compared(org: Org) -> None:
    org.emu.faults.add("overloaded", endpoint="admin", after=2)
    error = _attempt(org, admin_client(org.emu))
    assert (error.endpoint, error.page, error.status) == (USAGE, 3, 529)
    assert "overloaded_error" in str(error)
    org.emu.faults.add("api_error", endpoint="admin", after=3)  # the usage report's 3 pages pass; cost fails
    error = _attempt(org, admin_client(org.emu))
    assert (error.endpoint, error.page, error.status) == ("/v1/organizations/cost_report", 1, 500)


def _mock(pages: list[Any]) -> AdminClient:
    served = iter(pages)

    def handler(request: httpx.Request) -> httpx.Response:
        page = next(served)
        return httpx.Response(200, content=page if isinstance(page, bytes) else json.dumps(page).encode())

    return AdminClient(
        "sk-ant-admin01-mock", base_url="http://admin.local", transport=httpx.MockTransport(handler)
    )


BUCKET = {"starting_at": "2026-11-20T00:00:00Z", "ending_at": "2026-11-21T00:00:00Z"}
ROW = {
    "model": "claude-sonnet-4-6",
    "uncached_input_tokens": 1,
    "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
    "cache_read_input_tokens": 0,
    "output_tokens": 1,
}
GOOD = {"data": [{**BUCKET, "results": [ROW]}], "has_more": True, "next_page": "page_2"}


@pytest.mark.parametrize(
    ("second", "page", "bucket", "problem"),
    [
        (b"<html>gateway</html>", 2, None, "not a JSON object"),
        ({"data": "nope", "has_more": False}, 2, None, "no 'data' list"),
        ({"data": [], "has_more": "yes"}, 2, None, "'has_more' should be true or false"),
        ({"data": [], "has_more": True, "next_page": None}, 2, None, "'next_page' is missing"),
        ({"data": [], "has_more": True, "next_page": "page_2"}, 2, None, "repeats an earlier page"),
        ({"data": [{**BUCKET, "results": {}}], "has_more": False}, 2, "2026-11-20T00:00:00Z", "'results'"),
        (
            {"data": [{"starting_at": "yesterday", "results": []}], "has_more": False},
            2, "yesterday", "RFC 3339",
        ),
        (
            {"data": [{**BUCKET, "results": [{**ROW, "output_tokens": -4}]}], "has_more": False},
            2, "2026-11-20T00:00:00Z", "output_tokens should be a count",
        ),
        (
            {"data": [{**BUCKET, "results": [{**ROW, "cache_creation": None}]}], "has_more": False},
            2, "2026-11-20T00:00:00Z", "cache_creation.ephemeral_5m_input_tokens",
        ),
        (
            {"data": [{**BUCKET, "results": [{**ROW, "model": 5}]}], "has_more": False},
            2, "2026-11-20T00:00:00Z", "results.0.model",
        ),
    ],
)  # fmt: skip
def test_pages_in_an_unexpected_shape_name_the_endpoint_page_and_bucket(
    org: Org, second: Any, page: int, bucket: str | None, problem: str
) -> None:
    error = _attempt(org, _mock([GOOD, second]))
    assert (error.endpoint, error.page, error.bucket) == (USAGE, page, bucket)
    assert problem in str(error)
    assert str(error).startswith(USAGE + f" page {page}")


@pytest.mark.parametrize(
    ("result", "problem"),
    [
        ({"amount": 12.5, "currency": "USD"}, "decimal string of cents"),
        ({"amount": "NaN", "currency": "USD"}, "decimal string of cents"),
        ({"amount": "1", "currency": "EUR"}, "not 'USD'"),
    ],
)
def test_a_cost_page_in_an_unexpected_shape_is_refused(
    org: Org, result: dict[str, Any], problem: str
) -> None:
    usage = {"data": [], "has_more": False}
    cost = {"data": [{**BUCKET, "results": [result]}], "has_more": False}
    error = _attempt(org, _mock([usage, cost]))
    assert (error.endpoint, error.page, error.bucket) == (
        "/v1/organizations/cost_report",
        1,
        BUCKET["starting_at"],
    )
    assert problem in str(error)


def test_a_server_that_cannot_be_reached_is_a_reconcile_error(org: Org) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    admin = AdminClient(
        "sk-ant-admin01-x", base_url="http://admin.local", transport=httpx.MockTransport(refuse)
    )
    error = _attempt(org, admin)
    assert "request failed" in str(error) and error.page == 1
