"""ReuseStats: how arrivals resolve into reused / lapsed outcomes per TTL window (hand-counted)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cachewise.planner.reuse import PRIOR_WEIGHT, TTL_SECONDS, ReuseStats
from cachewise.prompt import Ttl

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


def test_a_new_boundary_is_followed_until_a_later_request_carries_it() -> None:
    stats = ReuseStats()
    stats.expect("doc-a", "fam", 1)
    stats.expect("doc-b", "fam", 1)
    stats.record(["sys", "doc-a"], "fam", None, T0)
    stats.record(["sys", "doc-b"], "fam", None, T0 + timedelta(seconds=30))
    stats.record(["sys", "doc-a"], "fam", None, T0 + timedelta(seconds=60))  # doc-a seen again
    stats.settle(T0 + timedelta(minutes=6))  # doc-b's 5 minutes are over
    depth1 = stats.families["fam"].branches[1]
    assert depth1.counts("5m") == (2, 1)
    assert stats.branches[1].counts("5m") == (2, 1)
    assert stats.branches[0].counts("5m") == (0, 0)
    # The family's rate shrinks toward the global one (2/4) with weight 1: (1 + 1 * 2/4) / (2 + 1).
    assert stats.p_branch("fam", 1, "5m") == pytest.approx((1 + 1 * 0.5) / 3)
    # A prefix already recorded is not a new boundary.
    stats.expect("doc-a", "fam", 1)
    stats.record(["sys", "doc-a"], "fam", None, T0 + timedelta(minutes=7))
    assert stats.families["fam"].branches[1].counts("5m") == (2, 1)


def test_an_open_outcome_counts_as_the_share_of_its_window_it_has_waited() -> None:
    stats = ReuseStats()
    stats.record(["a"], "fam", "tail-a", T0)
    # Nothing resolved: without "now" the rate is the bare prior; with it, tail-a's 3 minutes
    # of waiting are 3/5 of a lapse for 5m and 3/60 for 1h.
    assert stats.p_tail("fam", "5m") == pytest.approx(0.5)
    now = T0 + timedelta(minutes=3)
    assert stats.tails.rate("5m", now) == pytest.approx(1 / (2 + 0.6))
    assert stats.tails.rate("1h", now) == pytest.approx(1 / (2 + 0.05))
    # Once continued it is closed: resolved as reused, no longer open.
    stats.record(["a", "tail-a"], "fam", None, now)
    assert stats.tails.counts("5m") == (1, 1)
    assert stats.tails.rate("5m", now) == pytest.approx(2 / 3)
    assert (stats.tails.open_5m, stats.tails.open_1h) == (0, 0)


def test_pause_chance_is_the_share_of_continuations_after_the_5m_window() -> None:
    stats = ReuseStats()
    assert stats.p_pause("fam") == 0.0  # no continuation seen: no pause assumed
    stats.record(["a"], "fam", "t1", T0)
    stats.record(["a", "t1"], "fam", "t2", T0 + timedelta(minutes=1))  # continued within 5m
    stats.record(["a", "t1", "t2"], "fam", "t3", T0 + timedelta(minutes=12))  # after a pause
    tails = stats.families["fam"].tails
    assert (tails.reused_5m, tails.reused_1h) == (1, 2)
    # Global share of pauses 1 / (2 + 1); the family's 1 of 2 shrunk toward it with weight 0.5,
    # times the family's chance of a continuation within the hour.
    glob = 1 / 3
    share = (1 + 0.5 * glob) / (2 + 0.5)
    assert stats.p_pause("fam") == pytest.approx(stats.p_tail("fam", "1h") * share)
    assert stats.p_pause("other") == pytest.approx(stats.tails.rate("1h") * glob)


def test_a_followed_boundary_counts_its_returns_after_a_lapsed_five_minute_chain() -> None:
    stats = ReuseStats()
    assert stats.p_return("fam", 0) == 0.0  # a return is never assumed
    stats.follow("doc", "fam", 0)
    minutes = (0, 1, 30)  # reused within 5m, then back after 29 minutes (a return)
    for m in minutes:
        stats.record(["sys", "doc"], "fam", None, T0 + timedelta(minutes=m))
    # The arrival at 30 minutes lapses its 5m window, then its hour, with no return.
    stats.settle(T0 + timedelta(hours=2))
    glob = stats.chains[0]
    assert (glob.resolved_5m, glob.reused_5m, glob.resolved_1h, glob.reused_1h) == (3, 1, 3, 2)
    # Two chains ended (after 1 and after 30 minutes), one came back within the hour.
    assert stats.p_return("other", 0) == pytest.approx(1 / 3)
    assert stats.p_return("fam", 0) == pytest.approx((1 + 1 / 3) / 3)
    assert stats.p_return("fam", 1) == 0.0  # other depths learn apart
    assert stats.branches[0].counts("1h") == (0, 0)  # not mixed with the new-boundary outcomes


def _fresh_rates(stats: ReuseStats, family: str, now: datetime) -> dict[str, float]:
    """The rates worked out from the outcomes as they are, past the memo."""
    return {
        **{f"tail {t}": stats._p_tail(family, t, now) for t in ("5m", "1h")},
        **{f"shared {t}": stats.shared.rate(t, now) for t in ("5m", "1h")},
    }


def _asked(stats: ReuseStats, family: str, now: datetime) -> dict[str, float]:
    return {
        **{f"tail {t}": stats.p_tail(family, t, now) for t in ("5m", "1h")},
        **{f"shared {t}": stats.p_shared(t, now) for t in ("5m", "1h")},
    }


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["record", "touch", "forget", "settle", "ask"]),
            st.integers(0, 4000),  # seconds after T0 (not in order: replays and peers are not)
            st.sampled_from(["fam", "other"]),
            st.sampled_from(["a", "b", "c"]),
        ),
        max_size=30,
    )
)
def test_the_rates_memo_answers_what_a_fresh_computation_does(ops: list[tuple[str, int, str, str]]) -> None:
    """Rates asked at one ``now`` are memoised until the outcomes change (an arrival, a window
    closing): after any sequence of changes, each asked rate equals the one worked out afresh."""
    stats = ReuseStats()
    for op, seconds, family, key in ops:
        now = T0 + timedelta(seconds=seconds)
        if op == "record":
            stats.record([key, key + "x"], family, key + "x", now)
        elif op == "touch":
            stats.touch(key, "5m", now, 2000, read=False)
        elif op == "forget":
            stats.forget(key)
        elif op == "settle":
            stats.settle(now)
        for at in (now, T0 + timedelta(seconds=seconds // 2)):  # the same now again, and another
            assert _asked(stats, family, at) == _fresh_rates(stats, family, at)
            assert _asked(stats, family, at) == _fresh_rates(stats, family, at)  # hits now


def test_a_record_at_the_same_now_is_seen_by_the_next_rate() -> None:
    """Virtual time may hold still: a record at the very ``now`` of the memo still changes the rate."""
    stats = ReuseStats()
    stats.record(["a"], "fam", "a", T0)
    before = stats.p_tail("fam", "5m", T0)
    stats.record(["a", "b"], "fam", "b", T0 + timedelta(seconds=30))  # continues tail a
    later = T0 + timedelta(seconds=30)
    assert stats.p_tail("fam", "5m", later) == stats._p_tail("fam", "5m", later)
    assert stats.p_tail("fam", "5m", later) != before


def test_settle_resolves_exactly_the_windows_that_closed() -> None:
    stats = ReuseStats()
    stats.record(["a"], "fam", "a", T0)
    stats.settle(T0 + timedelta(seconds=299))
    assert stats.tails.counts("5m") == (0, 0)
    stats.settle(T0 + timedelta(seconds=300))  # its 5m window closes at exactly 300 s
    assert stats.tails.counts("5m") == (1, 0)
    assert stats.tails.counts("1h") == (0, 0)
    stats.settle(T0 + timedelta(hours=1))
    assert stats.tails.counts("1h") == (1, 0)


def _fresh_prefix(
    stats: ReuseStats, prefix_hash: str, ttl: Ttl, now: datetime, prior: float
) -> tuple[float, int]:
    """``p_prefix`` worked out from the record's arrivals as they are, past what is kept."""
    rec = stats.prefixes.get(prefix_hash)
    if rec is None or not rec.arrivals:
        return prior, 0
    times = [*rec.arrivals]
    if times[-1] < now:
        times.append(now)
    gaps = [g for a, b in itertools.pairwise(times) if (g := (b - a).total_seconds()) > 0]
    if not gaps:
        return prior, 0
    hits = sum(1 for g in gaps if g < TTL_SECONDS[ttl])
    return (hits + PRIOR_WEIGHT * prior) / (len(gaps) + PRIOR_WEIGHT), len(gaps)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["record", "record", "touch", "forget", "ask"]),
            st.integers(0, 8000),  # seconds after T0 (not in order: replays and peers are not)
            st.sampled_from(["a", "b", "c"]),
        ),
        max_size=40,
    ),
    st.integers(1, 3),
)
def test_a_prefixs_reuse_answers_what_its_arrivals_say(ops: list[tuple[str, int, str]], kept: int) -> None:
    """``p_prefix`` keeps each record's gaps between arrivals from one arrival to the next: after any
    sequence of arrivals (out of order, at the same instant, evicted and seen again), touches and
    forgets, it answers what the arrivals as they are say, at ``now`` before, at and after them."""
    stats = ReuseStats(max_prefixes=kept)
    for op, seconds, key in ops:
        now = T0 + timedelta(seconds=seconds)
        if op == "record":
            stats.record([key, key + "x"], "fam", key + "x", now)
        elif op == "touch":
            stats.touch(key, "5m", now, 2000, read=False)
        elif op == "forget":
            stats.forget(key)
        for at in (now, T0 + timedelta(seconds=seconds // 2), now + timedelta(seconds=299.5)):
            for prefix in (key, key + "x"):
                for ttl in ("5m", "1h"):
                    want = _fresh_prefix(stats, prefix, ttl, at, 0.25)
                    assert stats.p_prefix(prefix, ttl, at, 0.25) == want
                    assert stats.p_prefix(prefix, ttl, at, 0.25) == want  # kept now


def test_a_full_window_of_arrivals_keeps_its_gaps_right() -> None:
    """Past 32 arrivals the oldest leave the window: the gaps kept follow it; equal arrivals (a clock
    that stands still) are no gap, and a gap of exactly a TTL is not within it."""
    stats = ReuseStats()
    moments = [0, 10, 10, 310, 310, 311, 3911, *range(4000, 4000 + 240 * 40, 240)]  # gaps of 300 s and 1 h
    for n, second in enumerate(moments):
        at = T0 + timedelta(seconds=second)
        stats.record(["p"], "fam", None, at)
        for later in (at, at + timedelta(seconds=1), at + timedelta(seconds=300), at + timedelta(hours=2)):
            for ttl in ("5m", "1h"):
                assert stats.p_prefix("p", ttl, later, 0.5) == _fresh_prefix(stats, "p", ttl, later, 0.5), n
    rec = stats.prefixes["p"]
    assert len(rec.arrivals) == 32 and rec.appended == len(moments)


def test_the_shared_rate_for_a_size_weighs_families_by_how_close_their_size_is() -> None:
    stats = ReuseStats()
    # Two families of ~1,000 tokens (size class 10) seen again after 20 minutes, one of ~8,000
    # (class 13) never; one of unknown size counts in the size-blind rate only.
    stats.record(["a"], "a", None, T0, family_tokens=1000)
    stats.record(["b"], "b", None, T0, family_tokens=1023)
    stats.record(["c"], "c", None, T0, family_tokens=8000)
    stats.record(["d"], "d", None, T0)
    later = T0 + timedelta(minutes=20)
    stats.record(["a"], "a", None, later, family_tokens=1000)
    stats.record(["b"], "b", None, later, family_tokens=1023)
    stats.settle(T0 + timedelta(hours=2))
    assert stats.p_shared("1h") == pytest.approx((2 + 1) / (4 + 2))
    # Read at class 10: the two at full weight, the one three classes away at 1/8.
    assert stats.p_shared("1h", tokens=1000) == pytest.approx((2 + 1) / (2 + 1 / 8 + 2))
    # Read at class 13: the other way round.
    assert stats.p_shared("1h", tokens=8000) == pytest.approx((2 / 8 + 1) / (2 / 8 + 1 + 2))
    assert stats.p_shared("5m", tokens=1000) == pytest.approx(1 / (2 + 1 / 8 + 2))
    # A size nobody had: the far classes barely move it from the Beta(1, 1) start.
    assert stats.p_shared("1h", tokens=10**9) == pytest.approx(0.5)
