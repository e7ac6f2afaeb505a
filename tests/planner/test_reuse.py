"""ReuseStats: how arrivals resolve into reused / lapsed outcomes per TTL window (hand-counted)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cachewise.planner.reuse import ReuseStats

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_reuse_and_lapse_counts_per_window() -> None:
    stats = ReuseStats()
    assert stats.record(["a"], "fam", "tail-a", T0) is None
    # 10 minutes on: both pending items lapsed their 5m window; the family and tail-a are then
    # reused within the hour.
    assert stats.record(["a", "tail-a"], "fam", "tail-b", T0 + timedelta(minutes=10)) == "tail-a"
    # Two hours on: tail-b lapsed both windows and is no longer an open tail.
    assert stats.record(["x"], "fam", None, T0 + timedelta(hours=2, minutes=10)) is None

    assert stats.shared.counts("5m") == (1, 0)
    assert stats.shared.counts("1h") == (1, 1)
    assert stats.tails.counts("5m") == (2, 0)
    assert stats.tails.counts("1h") == (2, 1)
    assert stats.families["fam"].open_tails == {}
    assert stats.p_shared("5m") == pytest.approx(1 / 3)
    assert stats.p_shared("1h") == pytest.approx(2 / 3)
    # Family tails (2 seen, 0 / 1 reused) shrunk toward the global tail rates 1/4 and 2/4.
    assert stats.p_tail("fam", "5m") == pytest.approx((0 + 0.5 * 0.25) / 2.5)
    assert stats.p_tail("fam", "1h") == pytest.approx((1 + 0.5 * 0.5) / 2.5)
    assert stats.p_tail("other", "1h") == pytest.approx(0.5)
