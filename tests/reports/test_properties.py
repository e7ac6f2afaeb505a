"""Invariants of the report frames, on generated ledgers (hypothesis)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings

from cachewise.reports import spend, totals
from tests.fixtures.frames import HAIKU, SONNET, UNKNOWN, frame, row
from tests.strategies import ledger_calls

START = datetime(2026, 11, 1)

calls = ledger_calls([SONNET, HAIKU, UNKNOWN])


def build(items: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    rows = []
    for i, c in enumerate(items):
        at = (START + timedelta(minutes=int(c["minute"]))).isoformat()  # type: ignore[call-overload]
        rows.append(
            row(at, str(c["model"]), request_id=f"r{i}", prefix=c["prefix"],  # type: ignore[arg-type]
                tags={"feature": str(c["feature"])},
                cost_error="no price" if c["model"] == UNKNOWN else None,
                input_tokens=c["input"], ephemeral_5m_input_tokens=c["w5"],  # type: ignore[arg-type]
                ephemeral_1h_input_tokens=c["w1"], cache_read_input_tokens=c["read"],  # type: ignore[arg-type]
                output_tokens=c["out"])  # type: ignore[arg-type]
        )  # fmt: skip
    return frame(rows)


@settings(max_examples=15, deadline=None)
@given(calls)
def test_groups_add_up_to_the_total(items: list[dict[str, object]]) -> None:
    data = build(items)
    whole = totals(data)
    for keys in (["model"], ["day", "tag:feature"], ["prefix_hash"]):
        table = spend(data, by=keys)
        assert int(table["calls"].sum()) == whole["calls"]
        assert int(table["unpriced_calls"].sum()) == whole["unpriced_calls"]
        money = sum((v for v in table["cost_total"] if v is not None), Decimal(0))
        assert money == (whole["cost_total"] or Decimal(0))
        assert int(table["wasted_write_tokens"].sum()) == whole["wasted_write_tokens"]


@settings(max_examples=15, deadline=None)
@given(calls)
def test_waste_and_ratios_bounded(items: list[dict[str, object]]) -> None:
    whole = totals(build(items))
    written = whole["cache_creation_input_tokens"]
    assert 0 <= whole["wasted_write_tokens"] + whole["unattributed_write_tokens"] <= written
    assert whole["hit_ratio"] is None or 0 <= whole["hit_ratio"] <= 1
    if whole["calls"]:
        assert whole["cost_total"] is None or whole["cost_total"] >= 0
        assert whole["wasted_write_cost"] is None or whole["wasted_write_cost"] <= whole["cost_cache_write"]
