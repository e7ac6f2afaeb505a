"""The comparison alone: each gap kind from hand-made sides, and the gap measures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from cachewise.ledger.buckets import BucketSums
from cachewise.reconcile import Figures, compare

DAY = datetime(2026, 11, 20, tzinfo=UTC)
SINCE, UNTIL = DAY, DAY + timedelta(days=3)
M = "claude-sonnet-4-6"


def _mine(day: int = 0, *, cost: str = "0.5", input_tokens: int = 100, calls: int = 2) -> BucketSums:
    return BucketSums(
        DAY + timedelta(days=day), M, None, calls, input_tokens, 10, 0, 50, 20, Decimal(cost), 0
    )


def _theirs(*, input_tokens: int = 100) -> Figures:
    return Figures(
        input_tokens=input_tokens, ephemeral_5m_input_tokens=10, cache_read_input_tokens=50, output_tokens=20
    )


def _key(day: int = 0) -> tuple[datetime, str, None]:
    return (DAY + timedelta(days=day), M, None)


def test_agreeing_sides_have_no_gap() -> None:
    result = compare([_mine()], {_key(): _theirs()}, {_key(): Decimal("0.5")}, since=SINCE, until=UNTIL)
    assert result.gaps == [] and result.gap == 0 and result.gap_ratio == 0 and result.keys == 1


@pytest.mark.parametrize(
    ("mine", "theirs", "cost", "kind", "gap"),
    [
        ([], {0: 100}, {0: "0.5"}, "missing_in_ledger", "0.5"),
        ([_mine()], {}, {}, "missing_in_report", "0.5"),
        ([_mine(input_tokens=60, cost="0.4")], {0: 100}, {0: "0.5"}, "bypassed", "0.1"),
        ([_mine(input_tokens=140, cost="0.6")], {0: 100}, {0: "0.5"}, "ledger_extra", "0.1"),
        ([_mine(cost="0.4")], {0: 100}, {0: "0.5"}, "priced_differently", "0.1"),
    ],
)
def test_each_kind(
    mine: list[BucketSums], theirs: dict[int, int], cost: dict[int, str], kind: str, gap: str
) -> None:
    usage = {_key(d): _theirs(input_tokens=n) for d, n in theirs.items()}
    costs = {_key(d): Decimal(v) for d, v in cost.items()}
    result = compare(mine, usage, costs, since=SINCE, until=UNTIL)
    (found,) = result.gaps
    assert found.kind == kind and result.kinds == {kind: 1}
    assert result.gap == Decimal(gap)
    assert found.as_dict()["explanation"] == found.explanation
    assert found.ending_at - found.starting_at == timedelta(days=1)


def test_a_ledger_row_of_zero_tokens_and_cost_is_no_gap() -> None:
    empty = BucketSums(DAY, M, None, 1, 0, 0, 0, 0, 0, Decimal(0), 1)
    assert compare([empty], {}, {}, since=SINCE, until=UNTIL).gaps == []


def test_without_a_cost_report_the_gap_is_in_tokens_and_costs_need_daily_buckets() -> None:
    result = compare(
        [_mine(input_tokens=60)], {_key(): _theirs()}, None, since=SINCE, until=UNTIL, width="1h"
    )
    assert result.measure == "tokens" and result.gap == 40
    assert result.gap_ratio == Decimal(40) / Decimal(180)
    assert result.gaps[0].cost_gap is None and result.gaps[0].ending_at - result.gaps[
        0
    ].starting_at == timedelta(hours=1)
    with pytest.raises(ValueError, match="daily"):
        compare([], {}, {}, since=SINCE, until=UNTIL, width="1h")
    infinite = compare([_mine()], {}, {}, since=SINCE, until=UNTIL)
    assert infinite.gap_ratio.is_infinite() and infinite.as_dict()["gap_ratio"] is None
