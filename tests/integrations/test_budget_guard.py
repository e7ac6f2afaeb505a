"""wrap(budget=...): a request that would cross the budget is refused before it is sent."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

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
