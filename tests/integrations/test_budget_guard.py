"""wrap(budget=...): a request that would cross the budget is refused before it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import anthropic
import pytest

import cachewise
from cachewise import BudgetExceeded, RuntimeBudget, UnpricedSpend
from cachewise.emulator import EmulatorServer
from cachewise.ledger import Ledger

from .conftest import API_KEY

BODY = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": "hi " * 200}],
}


@pytest.fixture
def client(emulator: EmulatorServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=API_KEY, base_url=emulator.base_url, max_retries=0) as opened:
        yield opened


def test_budget_refuses_before_sending(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    budget = RuntimeBudget(Decimal("0.01"))
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False, budget=budget)
    sent = 0
    refused: BudgetExceeded | None = None
    for _ in range(50):
        try:
            wrapped.messages.create(**BODY)  # type: ignore[arg-type]
        except BudgetExceeded as exc:
            refused = exc
            break
        sent += 1
    assert refused is not None
    assert 0 < sent < 50
    assert len(emulator.emulator.bill()) == sent  # the refused request never reached the API
    assert budget.spent() <= Decimal("0.01")
    assert refused.limit == Decimal("0.01")


def test_unknown_model_fails_closed(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False, budget=RuntimeBudget(Decimal(100)))
    with pytest.raises(UnpricedSpend):
        wrapped.messages.create(**{**BODY, "model": "claude-foo-9"})  # type: ignore[arg-type]
    assert emulator.emulator.bill() == []


LONG = {
    "model": "claude-sonnet-4-6",
    "max_tokens": 1000,
    "system": [
        {
            "type": "text",
            "text": "You answer questions about the manual. " * 600,
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ],
    "messages": [{"role": "user", "content": "What does chapter 3 say?"}],
}


def test_counted_estimate_allows_what_the_byte_guess_refused(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    from cachewise import TokenCounter
    from cachewise.budget import estimate_cost
    from cachewise.pricing import PriceBook
    from cachewise.tokens import TokenMemo

    book = PriceBook.default()
    guess = estimate_cost(LONG, LONG["model"], book, emulator.emulator.now())  # the old byte guess
    counter = TokenCounter(client, memo=TokenMemo(None))
    budget = RuntimeBudget(Decimal(0), counter=counter)
    with pytest.raises(BudgetExceeded) as probe:
        budget.check_request(LONG, book=book)
    honest = probe.value.estimate
    assert budget.last_size is not None and budget.last_size.source == "count_tokens"
    assert honest < guess / 2  # counted tokens, not bytes
    limit = honest * 3 / 2  # over the honest estimate, under the old guess
    assert limit < guess
    budget = RuntimeBudget(limit, counter=counter)
    wrapped = cachewise.wrap(client, ledger=ledger, planner=False, budget=budget)
    wrapped.messages.create(**LONG)  # type: ignore[arg-type]  # allowed: its true cost fits
    (first,) = emulator.emulator.bill()
    true_cost = Decimal(first["cost_total"])
    assert true_cost <= honest  # the estimate bounds the true cost (the emulator's own bill)
    assert budget.spent() == true_cost
    with pytest.raises(BudgetExceeded):  # spent + the same call's estimate is over: refused unsent
        wrapped.messages.create(**LONG)  # type: ignore[arg-type]
    assert len(emulator.emulator.bill()) == 1


def test_the_planner_counts_for_the_budget(
    emulator: EmulatorServer,
    client: anthropic.Anthropic,
    ledger: Ledger,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cachewise.budget import estimate_cost
    from cachewise.pricing import PriceBook

    monkeypatch.setenv("CACHEWISE_TOKEN_MEMO", str(tmp_path / "memo.sqlite3"))
    budget = RuntimeBudget(Decimal(10))
    wrapped = cachewise.wrap(client, ledger=ledger, budget=budget)  # the default planner, counting
    wrapped.messages.create(**LONG)  # type: ignore[arg-type]
    size = budget.last_size
    assert size is not None and size.counted and size.source in ("plan", "count_tokens")
    assert size.writes is not None and size.writes[0][1] == "1h"  # the caller's 1h marker, from the plan
    (row,) = emulator.emulator.bill()
    assert size.tokens >= row["usage"]["input_tokens"] + row["usage"]["cache_creation_input_tokens"]
    guess = estimate_cost(LONG, LONG["model"], PriceBook.default(), emulator.emulator.now())
    assert budget.spent() < guess / 2


def test_a_budget_with_the_older_check_request_still_works(
    emulator: EmulatorServer, client: anthropic.Anthropic, ledger: Ledger
) -> None:
    """A user's budget whose check_request takes no plan= or counter= is called as before."""
    from datetime import datetime
    from typing import Any

    from cachewise.ledger.record import CallRecord
    from cachewise.pricing import PriceBook

    seen: list[dict[str, Any]] = []

    class OldBudget:
        def check_request(
            self, request_body: Any, *, book: PriceBook | None = None, at: datetime | None = None
        ) -> Decimal:
            seen.append(dict(request_body))
            return Decimal(0)

        def add(self, record: CallRecord) -> None:
            pass

    wrapped = cachewise.wrap(client, ledger=ledger, budget=OldBudget())
    wrapped.messages.create(**BODY)  # type: ignore[arg-type]
    assert len(seen) == 1 and len(emulator.emulator.bill()) == 1
