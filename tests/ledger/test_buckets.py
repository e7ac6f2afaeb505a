"""The ledger summed per bucket x model (x tag) in SQL, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from cachewise.ledger import Ledger
from cachewise.ledger.buckets import read_buckets

from .conftest import T0, costs, make_record


def _fill(ledger: Ledger) -> list[int]:
    # Day 0: calls 0..3 at T0 + i minutes (12:00-12:03); day 1: calls 4, 5 at T0 + 1 day + 2 h.
    moments = [T0 + timedelta(minutes=i) for i in range(4)]
    moments += [T0 + timedelta(days=1, hours=2), T0 + timedelta(days=1, hours=2, minutes=30)]
    for i, at in enumerate(moments):
        tags = {"workspace_id": "wrkspc_a" if i % 2 else "wrkspc_b"}
        model = "claude-test-2" if i == 3 else "claude-test-1"
        ledger.record(make_record(i, started_at=at, tags=tags, model=model))
    ledger.record(make_record(6, started_at=T0 + timedelta(days=1), priced=False))
    ledger.flush()
    return list(range(7))


def test_daily_buckets_sum_each_counter_and_the_exact_cost(ledger: Ledger) -> None:
    _fill(ledger)
    rows = read_buckets(ledger, since=T0 - timedelta(hours=1), until=T0 + timedelta(days=2), width="1d")
    day0 = T0.replace(hour=0)
    got = {(r.starting_at, r.model): r for r in rows}
    assert set(got) == {
        (day0, "claude-test-1"),
        (day0, "claude-test-2"),
        (day0 + timedelta(days=1), "claude-test-1"),
    }
    first = got[(day0, "claude-test-1")]
    assert first.calls == 3
    assert first.input_tokens == 100 + 101 + 102
    assert first.cache_read_input_tokens == 2000 * (0 + 1 + 2)
    assert first.ephemeral_5m_input_tokens == 50 * (0 + 1 + 2)
    assert first.ephemeral_1h_input_tokens == 10 * (0 + 1 + 2)
    assert first.cost == costs(0).cost_total + costs(1).cost_total + costs(2).cost_total
    second_day = got[(day0 + timedelta(days=1), "claude-test-1")]
    assert second_day.calls == 3
    assert second_day.unpriced_calls == 1
    assert second_day.cost == costs(4).cost_total + costs(5).cost_total


@pytest.mark.parametrize(("width", "count"), [("1h", 3), ("1m", 7)])
def test_narrower_buckets_split_the_same_calls(ledger: Ledger, width: str, count: int) -> None:
    _fill(ledger)
    rows = read_buckets(ledger, since=T0, until=T0 + timedelta(days=2), width=width)
    assert len({r.starting_at for r in rows}) == count
    assert sum(r.calls for r in rows) == 7
    assert all(r.starting_at.tzinfo is not None for r in rows)
    if width == "1m":
        assert T0 + timedelta(minutes=3) in {r.starting_at for r in rows}


def test_a_tag_splits_the_buckets_and_untagged_calls_have_no_group(ledger: Ledger) -> None:
    _fill(ledger)
    rows = read_buckets(ledger, since=T0, until=T0 + timedelta(days=2), width="1d", group_tag="workspace_id")
    groups = {(r.starting_at.day, r.model, r.group): r.calls for r in rows}
    assert groups == {
        (T0.day, "claude-test-1", "wrkspc_a"): 1,
        (T0.day, "claude-test-1", "wrkspc_b"): 2,
        (T0.day, "claude-test-2", "wrkspc_a"): 1,
        (T0.day + 1, "claude-test-1", "wrkspc_a"): 1,
        (T0.day + 1, "claude-test-1", "wrkspc_b"): 1,
        (T0.day + 1, "claude-test-1", None): 1,
    }


def test_the_window_is_half_open_and_a_bad_width_is_refused(ledger: Ledger) -> None:
    _fill(ledger)
    rows = read_buckets(ledger, since=T0 + timedelta(minutes=1), until=T0 + timedelta(minutes=3), width="1m")
    assert sorted(r.starting_at for r in rows) == [T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)]
    with pytest.raises(ValueError, match="bucket width"):
        read_buckets(ledger, since=T0, until=T0 + timedelta(days=1), width="1w")
    assert read_buckets(ledger, since=T0 + timedelta(days=5), until=T0 + timedelta(days=6)) == []
    assert isinstance(rows[0].cost, Decimal)
