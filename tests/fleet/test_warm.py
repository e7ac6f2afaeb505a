"""Warm start: a planner restarted mid-workload, seeded from the ledger, decides as if it never stopped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import httpx2
import pytest

import cachewise
from cachewise.emulator import Emulator, EmulatorTransport
from cachewise.fleet import FleetStats, recent_calls
from cachewise.ledger import CallRecord, Ledger
from cachewise.planner import CachePlanner
from cachewise.workloads import SUITE, Call, Workload
from cachewise.wrap import tracker_of

Decision = tuple[tuple[int, str], ...]


def _workload(name: str) -> Workload:
    return next(w for w in (make(1) for make in SUITE) if w.name == name)


def _client(emulator: Emulator) -> anthropic.Anthropic:
    http = httpx2.Client(transport=EmulatorTransport(emulator), base_url="http://emulator")
    return anthropic.Anthropic(api_key="test", base_url="http://emulator", http_client=http, max_retries=0)


def _replay(
    calls: Sequence[Call], ledger_path: Path, restart_at: int | None, warm_start: bool
) -> tuple[list[Decision], object]:
    """Send ``calls`` through wrapped clients; at ``restart_at`` the process 'restarts' (a new wrap)."""
    emulator = Emulator()
    start = emulator.now()
    ledger = Ledger(ledger_path)
    wrapped = cachewise.wrap(_client(emulator), ledger=ledger, clock=emulator.now)
    for i, call in enumerate(calls):
        if i == restart_at:
            ledger.flush()
            ledger.close()
            ledger = Ledger(ledger_path)  # a new process: only the ledger and the memo file remain
            wrapped = cachewise.wrap(
                _client(emulator), ledger=ledger, clock=emulator.now, warm_start=warm_start
            )
            # Warmed, the planner's window is the ledger-keyed one; cold, the planner's own.
            assert isinstance(tracker_of(wrapped).planner, CachePlanner)
            assert isinstance(tracker_of(wrapped).planner.stats, FleetStats) is warm_start
        lag = call.at - (emulator.now() - start).total_seconds()
        if lag > 0:
            emulator.advance(lag)
        wrapped.messages.create(**call.request)
    ledger.flush()
    rows = ledger.calls()
    ledger.close()
    decisions = [tuple((b.position, b.ttl) for b in row.breakpoints) for row in rows]
    return decisions, emulator.bill_total()


@pytest.mark.parametrize("name", ["few-shot", "agent loop", "chat"])
def test_restarted_planner_seeded_from_the_ledger_decides_as_one_that_never_stopped(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = list(_workload(name).calls())
    half = len(calls) // 2
    results = {}
    for label, restart, warm in (("never", None, True), ("warm", half, True), ("cold", half, False)):
        # Each run its own memo file: a restart keeps it (it is a file), a new run starts empty.
        monkeypatch.setenv("CACHEWISE_TOKEN_MEMO", str(tmp_path / f"{label}-memo.sqlite3"))
        results[label] = _replay(calls, tmp_path / f"{label}.db", restart, warm)
    never, warm, cold = results["never"], results["warm"], results["cold"]
    assert warm == never
    # The comparison can fail: without the warm start the restarted planner relearns and decides otherwise.
    assert cold[0] != never[0]


def test_a_busy_ledger_is_read_for_its_most_recent_calls_only(tmp_path: Path) -> None:
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    ages = [1, 2, 3, 10, 20, 40, 70, 100, 200]  # minutes before now
    with Ledger(tmp_path / "ledger.db") as ledger:
        for i, age in enumerate(ages):
            ledger.record(CallRecord(f"req_{i}", "claude-sonnet-4-5", now - timedelta(minutes=age)))
        ledger.flush()
        assert [c.request_id for c in recent_calls(ledger, now)] == [
            f"req_{i}" for i in (7, 6, 5, 4, 3, 2, 1, 0)
        ]
        # At most a few: the window stops widening at the first that holds them (5, then 15 minutes).
        assert {c.request_id for c in recent_calls(ledger, now, max_calls=3)} == {"req_0", "req_1", "req_2"}
        assert len(recent_calls(ledger, now, max_calls=4)) == 4  # 15 minutes: four calls
        assert len(recent_calls(ledger, now, horizon=timedelta(hours=4))) == len(ages)


def test_fleet_stats_read_a_familys_pauses_on_their_short_keys() -> None:
    from cachewise.planner.reuse import ReuseStats

    t0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    fam, tails = "f" * 64, [c * 64 for c in "abc"]
    plain, fleet = ReuseStats(), FleetStats()
    for stats in (plain, fleet):
        stats.record(["s" * 64], fam, tails[0], t0)
        stats.record(["s" * 64, tails[0]], fam, tails[1], t0 + timedelta(minutes=1))
        stats.record(["s" * 64, tails[0], tails[1]], fam, tails[2], t0 + timedelta(minutes=12))
    assert plain.p_pause(fam) > plain.p_pause("another family")
    assert fleet.p_pause(fam) == pytest.approx(plain.p_pause(fam))


def test_the_warm_start_carries_how_often_contexts_of_a_size_came_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large context that came back every 20-40 minutes, then a restart, then a new large context:
    warm, the new one's first write is for the hour (the shared prior, by size, from the ledger's
    replay points); cold, it is a 5-minute one."""
    from cachewise.workloads.suite import sparse_large_context

    history = list(sparse_large_context(1, seed=6).calls())
    new = next(iter(sparse_large_context(1).calls()))
    calls = [*history, Call(history[-1].at + 60, new.request)]
    ttls = {}
    for label, warm in (("warm", True), ("cold", False)):
        monkeypatch.setenv("CACHEWISE_TOKEN_MEMO", str(tmp_path / f"{label}-memo.sqlite3"))
        decisions, _ = _replay(calls, tmp_path / f"{label}.db", len(history), warm)
        ttls[label] = {ttl for _, ttl in decisions[-1]}
    assert "1h" in ttls["warm"]
    assert ttls["cold"] == {"5m"}
