"""The runtime guard: estimate_cost is an upper bound; RuntimeBudget refuses before sending."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from cachewise.breakpoints import Breakpoint
from cachewise.budget import RuntimeBudget, estimate_cost, prompt_token_bound
from cachewise.budget.runtime import TOOL_OVERHEAD_TOKENS, PromptSize, prompt_size
from cachewise.errors import BudgetExceeded, UnknownModelError, UnpricedSpend
from cachewise.ledger import Ledger
from cachewise.planner import Plan
from cachewise.pricing import PriceBook
from cachewise.prompt import Prompt
from cachewise.tokens import TokenCounter, TokenMemo
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


def _plan(request: dict[str, object], marks: list[Breakpoint]) -> Plan:
    positions = len(Prompt(request))
    return Plan(
        request=dict(request), model=SONNET, planned_at=AT, breakpoints=tuple(marks), positions=positions
    )


def test_plan_writes_price_segments_not_the_whole_prompt() -> None:
    # 10,000 prompt tokens, a 1h breakpoint at 4,000 and a 5m one at 8,000:
    # 4,000 x $6 + 4,000 x $3.75 + 2,000 x $3 (per M) + 1000 x $15/M
    request = body()
    writes = [(4_000, "1h"), (8_000, "5m")]
    cost = estimate_cost(request, SONNET, BOOK, AT, prompt_tokens=10_000, writes=writes)
    assert cost == Decimal("0.024") + Decimal("0.015") + Decimal("0.006") + Decimal("0.015")
    # a plan with no breakpoints: the whole prompt at the input rate
    assert estimate_cost(request, SONNET, BOOK, AT, prompt_tokens=10_000, writes=()) == Decimal("0.045")


def test_prompt_size_sources() -> None:
    request = body(system=[{"type": "text", "text": "rules " * 2000}])
    bytes_bound = prompt_token_bound(request)
    assert prompt_size(request) == PromptSize(bytes_bound, False, "bytes")
    # the plan counted the prefix at the last position: that is the whole prompt, exactly
    last = len(Prompt(request)) - 1
    counted = _plan(request, [Breakpoint(position=last, ttl="1h", tokens=2_345, counted=True)])
    assert prompt_size(request, plan=counted) == PromptSize(2_345, True, "plan", ((2_345, "1h"),))
    # a counted shorter prefix bounds the whole from above: its count + the bytes after it
    system_end = _plan(request, [Breakpoint(position=0, tokens=2_001, counted=True, high=2_001)])
    size = prompt_size(request, plan=system_end)
    assert not size.counted and size.source == "plan"
    assert 2_001 < size.tokens < bytes_bound and size.writes == ((2_001, "5m"),)
    # no plan count: one count_tokens call through the counter, memoised
    seen: list[dict[str, object]] = []

    def count(sent: dict[str, object]) -> int:
        seen.append(sent)
        return 2_100

    counter = TokenCounter(count, memo=TokenMemo(None))
    assert prompt_size(request, counter=counter) == PromptSize(2_100, True, "count_tokens")
    assert prompt_size(request, counter=counter).tokens == 2_100 and len(seen) == 1

    # the counter fails (or runs out of its budget): the bound, never a failed call
    def broken(sent: dict[str, object]) -> int:
        raise RuntimeError("down")

    assert prompt_size(request, counter=TokenCounter(broken, memo=TokenMemo(None))).source == "bytes"
    # server tools are left out of count_tokens: their overhead is added back
    searching = body(tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 1}])
    assert prompt_size(searching, counter=counter).tokens == 2_100 + TOOL_OVERHEAD_TOKENS


def test_honest_estimate_allows_a_call_the_guess_refused_and_refuses_one_truly_over() -> None:
    # A 20,000-character prompt of ~2,500 tokens, cached for 1h: the byte guess prices ~20,000 tokens
    # at the 1h write rate; counted, it is 2,500 tokens of which 2,400 are written.
    hour = {"type": "ephemeral", "ttl": "1h"}
    request = body(system=[{"type": "text", "text": "policy " * 2_800, "cache_control": hour}])
    guess = estimate_cost(request, SONNET, BOOK, AT)
    assert guess == Decimal("0.137652")  # the old guess
    plan = _plan(request, [Breakpoint(position=0, ttl="1h", tokens=2_400, counted=True, source="caller")])
    counter = TokenCounter(lambda sent: 2_500, memo=TokenMemo(None))
    true_bound = (Decimal(2_400) * 6 + Decimal(100) * 3 + Decimal(1000) * 15) / M
    guard = RuntimeBudget((true_bound + guess) / 2, clock=lambda: AT, counter=counter)
    assert guess > guard.limit
    assert guard.check_request(request, book=BOOK, plan=plan) == true_bound  # allowed
    (made,) = records_from_rows([row("2026-11-01T11:59:00", SONNET, request_id="m1", input_tokens=30_000)])
    guard.record(made)  # $0.09 spent: the same call now truly crosses the limit
    with pytest.raises(BudgetExceeded) as caught:
        guard.check_request(request, book=BOOK, plan=plan)
    assert caught.value.estimate == true_bound
