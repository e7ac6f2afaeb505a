"""The runtime guard: estimate_cost is an upper bound; RuntimeBudget refuses before sending."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cachewise.budget import RuntimeBudget, estimate_cost, prompt_token_bound
from cachewise.errors import BudgetExceeded, UnknownModelError, UnpricedSpend
from cachewise.ledger import Ledger
from cachewise.pricing import PriceBook
from tests.fixtures.frames import HAIKU, SONNET, UNKNOWN, records_from_rows, row, write_ledger

AT = datetime(2026, 11, 1, 12, tzinfo=UTC)
BOOK = PriceBook.default()
M = Decimal(1_000_000)


def body(**extra: object) -> dict[str, object]:
    return {
        "model": SONNET,
        "max_tokens": 1000,
        "messages": [{"role": "user", "content": "héllo " * 100}],
    } | extra


def test_token_bound_is_json_bytes() -> None:
    request = body()
    size = len(json.dumps({"messages": request["messages"]}, ensure_ascii=False).encode())
    assert prompt_token_bound(request) == size
    assert prompt_token_bound(body(tools=[{"name": "t", "input_schema": {}}])) > size + 999  # tool overhead
    image = {"type": "image", "source": {"type": "url", "url": "https://x/y.png"}}
    assert prompt_token_bound(body(messages=[{"role": "user", "content": [image]}])) >= 2000
    doc = {"type": "document", "source": {"type": "file", "file_id": "f1"}}
    with pytest.raises(ValueError, match="pass prompt_tokens"):
        prompt_token_bound(body(messages=[{"role": "user", "content": [doc]}]))


def test_estimate_cost_rates() -> None:
    # 10,000 prompt tokens x $3/M + 1000 output x $15/M = .03 + .015
    assert estimate_cost(body(), SONNET, BOOK, AT, prompt_tokens=10_000) == Decimal("0.045")
    # with a 1h marker the whole prompt may be written at $6/M: .06 + .015
    marked = body(system=[{"type": "text", "text": "s", "cache_control": {"type": "ephemeral", "ttl": "1h"}}])
    assert estimate_cost(marked, SONNET, BOOK, AT, prompt_tokens=10_000) == Decimal("0.075")
    # 5m marker: $3.75/M
    five = body(cache_control={"type": "ephemeral"})
    assert estimate_cost(five, SONNET, BOOK, AT, prompt_tokens=10_000) == Decimal("0.0525")
    # web search with max_uses 5: + 5 x $10/1000
    search = body(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 5}])
    assert estimate_cost(search, SONNET, BOOK, AT, prompt_tokens=10_000) == Decimal("0.095")
    # the byte bound is never below the real count of a plain text prompt (one token >= one byte)
    bound = estimate_cost(body(), SONNET, BOOK, AT)
    assert bound == Decimal(prompt_token_bound(body())) * 3 / M + Decimal("0.015")
    with pytest.raises(UnknownModelError):
        estimate_cost(body(), UNKNOWN, BOOK, AT, prompt_tokens=10)  # fails closed, never $0


def test_process_window_refuses_before_crossing() -> None:
    guard = RuntimeBudget(Decimal("0.05"), clock=lambda: AT)
    guard.check(Decimal("0.05"))  # exactly at the limit is allowed
    (first,) = records_from_rows([row("2026-11-01T11:00:00", SONNET, request_id="r1", input_tokens=10_000)])
    guard.record(first)  # .03
    assert guard.spent() == Decimal("0.03")
    guard.check(Decimal("0.02"))
    with pytest.raises(BudgetExceeded) as caught:
        guard.check(Decimal("0.0201"))
    assert caught.value.spent == Decimal("0.03") and caught.value.estimate == Decimal("0.0201")
    (bad,) = records_from_rows(
        [row("2026-11-01T11:01:00", UNKNOWN, request_id="r2", cost_error="x", input_tokens=5)]
    )
    guard.record(bad)
    with pytest.raises(UnpricedSpend, match="cannot be enforced"):
        guard.check(Decimal(0))


def test_day_window_reads_the_ledger(tmp_path: Path) -> None:
    now = [datetime(2026, 11, 2, 12, tzinfo=UTC)]
    db = write_ledger(tmp_path / "l.db", [
        row("2026-11-01T23:00:00", HAIKU, request_id="yesterday", input_tokens=1_000_000),  # $1, not today
        row("2026-11-02T09:00:00", HAIKU, request_id="today", input_tokens=100_000),  # $.10
    ])  # fmt: skip
    with Ledger(db) as ledger:
        guard = RuntimeBudget(Decimal("0.15"), "day", ledger, clock=lambda: now[0], refresh_seconds=0)
        assert guard.spent() == Decimal("0.1")
        (later,) = records_from_rows(
            [row("2026-11-02T11:00:00", HAIKU, request_id="new", input_tokens=40_000)]
        )
        guard.record(later)  # +.04, not yet in the ledger
        assert guard.spent() == Decimal("0.14")
        with pytest.raises(BudgetExceeded):
            guard.check(Decimal("0.02"))
        ledger.record(later)  # once it is in the ledger it is counted once, not twice
        ledger.flush()
        assert guard.spent() == Decimal("0.14")
        now[0] += timedelta(days=1)  # a new day
        assert guard.spent() == Decimal(0)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="non-negative Decimal"):
        RuntimeBudget(1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="window"):
        RuntimeBudget(Decimal(1), "week")  # type: ignore[arg-type]


def test_check_request_fails_closed() -> None:
    guard = RuntimeBudget(Decimal("1"), clock=lambda: AT)
    assert guard.check_request(body(), book=BOOK, prompt_tokens=10_000) == Decimal("0.045")
    with pytest.raises(UnpricedSpend, match="cannot be estimated: no model 'claude-unknown-9'"):
        guard.check_request(body(model=UNKNOWN), book=BOOK)
    with pytest.raises(BudgetExceeded):
        guard.check_request(body(max_tokens=100_000), book=BOOK)  # 100k x $15/M = $1.50 > $1
