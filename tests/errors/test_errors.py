"""Every exception's message and context attributes, exactly as a user sees them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from cachewise import errors

AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)

CASES: list[tuple[errors.CachewiseError, type[errors.CachewiseError], str, dict[str, Any]]] = [
    (
        errors.NoPriceError("claude-foo-9", AT, "pricing/anthropic.yaml"),
        errors.PricingError,
        "no price for claude-foo-9 on 2026-11-20 in pricing/anthropic.yaml; "
        "add one with a 'from' date on or before it, or pass --price-table",
        {"model": "claude-foo-9", "at": AT, "source": "pricing/anthropic.yaml"},
    ),
    (
        errors.NoPriceError("m", AT, "t.yaml", what="server tool price"),
        errors.PricingError,
        "no server tool price for m on 2026-11-20 in t.yaml; "
        "add one with a 'from' date on or before it, or pass --price-table",
        {"model": "m", "at": AT, "source": "t.yaml"},
    ),
    (
        errors.ModifierNotAvailable("m", "fast mode", AT, "t.yaml"),
        errors.PricingError,
        "fast mode is not priced for m on 2026-11-20 in t.yaml; "
        "the API does not offer it then, or the table lacks it",
        {"model": "m", "modifier": "fast mode", "at": AT, "source": "t.yaml"},
    ),
    (
        errors.PriceTableError("t.yaml", "models[0].id", "expected a string", "3"),
        errors.PricingError,
        "t.yaml: models[0].id is 3: expected a string",
        {"path": "t.yaml", "field": "models[0].id", "problem": "expected a string", "value": "3"},
    ),
    (
        errors.PriceTableError("t.yaml", "models", "missing"),
        errors.PricingError,
        "t.yaml: models: missing",
        {"path": "t.yaml", "field": "models", "problem": "missing", "value": None},
    ),
    (
        errors.UsageError("input_tokens", "cannot be negative", "-5"),
        errors.CachewiseError,
        "usage.input_tokens is -5: cannot be negative",
        {"field": "input_tokens", "problem": "cannot be negative", "value": "-5"},
    ),
    (
        errors.UsageError("<root>", "a billed reply must report its usage"),
        errors.CachewiseError,
        "usage: a billed reply must report its usage",
        {"field": "<root>", "value": None},
    ),
    (
        errors.BudgetConfigError("pyproject.toml", "budget.limit", "expected a number"),
        errors.CachewiseError,
        "pyproject.toml: budget.limit: expected a number",
        {"path": "pyproject.toml", "key": "budget.limit", "problem": "expected a number"},
    ),
    (
        errors.UnpricedSpend("ci", Decimal("5"), 2, "no price"),
        errors.BudgetExceeded,
        "budget 'ci' of $5 cannot be enforced: 2 call(s) in its window have no price (no price); "
        "add the model to a price overlay (--price-table) or fix the ledger",
        {"budget": "ci", "limit": Decimal("5"), "calls": 2, "spent": Decimal(0), "estimate": Decimal(0)},
    ),
]


@pytest.mark.parametrize(("error", "parent", "message", "context"), CASES, ids=lambda v: type(v).__name__)
def test_message_and_context(
    error: errors.CachewiseError, parent: type[errors.CachewiseError], message: str, context: dict[str, Any]
) -> None:
    assert isinstance(error, parent)
    assert error.args == (message,)
    assert str(error) == message
    for name, value in context.items():
        assert getattr(error, name) == value, name


def test_price_lookups_are_distinct_branches() -> None:
    """A handler for one lookup failure never catches the other."""
    assert not issubclass(errors.ModifierNotAvailable, errors.NoPriceError)
    assert not issubclass(errors.NoPriceError, errors.ModifierNotAvailable)
