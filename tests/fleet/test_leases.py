"""Fan-out leases in the fleet's store: a cold prefix seen by two processes at once is led by one.

Each ``FanOut`` here has its own lease client (its own connection), as two processes would; the
multi-process figures are ``benchmarks/fanout_bench.py --processes 2``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import anthropic
import psycopg
import pytest

import cachewise
from cachewise.breakpoints import Breakpoint
from cachewise.emulator import DEFAULT_START
from cachewise.failopen import internal_failures, reset_failures
from cachewise.fleet import PostgresLeases, RedisLeases, open_leases
from cachewise.integrations.fanout import FanOut
from cachewise.integrations.tracker import Prepared
from cachewise.ledger import Ledger
from cachewise.planner import Plan

MODEL = "claude-sonnet-4-6"
LEASE_FAILURE = "fanout lease (the request goes as if alone)"


def _prepared(prefix: str = "p1") -> Prepared:
    plan = Plan(
        request={},
        model=MODEL,
        planned_at=DEFAULT_START,
        breakpoints=(Breakpoint(position=0, ttl="5m", prefix_hash=prefix),),
    )
    return Prepared(original={}, body={}, started_at=DEFAULT_START, started=0.0, plan=plan)


@pytest.fixture(params=["redis", "postgres"])
def store_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue("redis_store_url" if request.param == "redis" else "pg_store_url"))


@pytest.fixture
def leases(store_url: str) -> Iterator[tuple[RedisLeases | PostgresLeases, RedisLeases | PostgresLeases]]:
    a, b = open_leases(store_url), open_leases(store_url)
    assert a is not None and b is not None
    yield a, b
    a.close()
    b.close()


@pytest.fixture
def fanout_on(store_url: str) -> Iterator[Callable[[float], FanOut]]:
    """Makes FanOuts with lease clients of their own on the store (closed after the test)."""
    made: list[RedisLeases | PostgresLeases] = []

    def make(timeout: float = 10.0) -> FanOut:
        leases = open_leases(store_url)
        assert leases is not None
        made.append(leases)
        return FanOut("hold", timeout=timeout, leases=leases)

    yield make
    for leases in made:
        leases.close()


def test_one_claim_leads_the_other_is_held_until_warm_then_warm_until_its_ttl(
    leases: tuple[RedisLeases | PostgresLeases, RedisLeases | PostgresLeases],
) -> None:
    a, b = leases
    now = DEFAULT_START
    assert a.claim("k", "A", 5.0, now) == "lead"
    assert b.claim("k", "B", 5.0, now) == "held"
    assert b.state("k", now) == "held"
    b.drop("k", "B")  # not B's to drop
    assert b.state("k", now) == "held"
    a.warm("k", "A", now + timedelta(minutes=5), 300.0)
    assert b.state("k", now) == "warm"
    assert b.claim("k", "B", 5.0, now) == "warm"
    # Past the entry's TTL on the caller's clock, the prefix is cold again and can be claimed.
    later = now + timedelta(minutes=6)
    assert b.state("k", later) == "free"
    assert b.claim("k", "B", 5.0, later) == "lead"
    assert a.claim("k", "A", 5.0, later) == "held"
    b.drop("k", "B")  # the lead failed: released
    assert a.state("k", later) == "free"
    assert a.claim("k", "A", 5.0, later) == "lead"


def test_a_lease_ends_by_itself_after_the_hold(
    leases: tuple[RedisLeases | PostgresLeases, RedisLeases | PostgresLeases],
) -> None:
    a, b = leases
    assert a.claim("k", "A", 0.05, DEFAULT_START) == "lead"
    time.sleep(0.2)  # the holder died: nobody waits on it past its bounded hold
    assert b.state("k", DEFAULT_START) == "free"
    assert b.claim("k", "B", 5.0, DEFAULT_START) == "lead"


def test_two_fanouts_on_one_store_write_a_cold_prefix_once(fanout_on: Callable[[float], FanOut]) -> None:
    one, two = fanout_on(10), fanout_on(10)
    lead = one.admit(_prepared(), DEFAULT_START)
    assert lead.leads and lead.claimed and not lead.waits
    followers = [two.admit(_prepared(), DEFAULT_START) for _ in range(3)]
    assert all(f.waits and not f.leads for f in followers)
    assert two.counts["fleet_held"] == 1  # one watch of the store for the three
    threads = [threading.Thread(target=two.wait, args=(f,)) for f in followers]
    for t in threads:
        t.start()
    time.sleep(0.1)
    assert all(t.is_alive() for t in threads)  # held while the other process's lead is in flight
    one.release(lead, ok=True, now=DEFAULT_START)
    for t in threads:
        t.join(5)
    assert not any(t.is_alive() for t in threads)
    assert not any(f.leads or f.timed_out for f in followers)
    assert two.in_flight() == 0
    # Warm in the fleet: a newcomer in either process neither waits nor leads.
    assert not two.admit(_prepared(), DEFAULT_START).leads
    assert not one.admit(_prepared(), DEFAULT_START).leads
    assert two.admit(_prepared("p2"), DEFAULT_START).leads  # another prefix is still cold


def test_when_the_other_process_lead_fails_a_follower_leads_it(fanout_on: Callable[[float], FanOut]) -> None:
    one, two = fanout_on(10), fanout_on(10)
    lead = one.admit(_prepared(), DEFAULT_START)
    follower = two.admit(_prepared(), DEFAULT_START)
    waiter = threading.Thread(target=two.wait, args=(follower,))
    waiter.start()
    one.release(lead, ok=False, now=DEFAULT_START)  # e.g. a 529: nothing written
    waiter.join(5)
    assert not waiter.is_alive()
    assert follower.leads and follower.claimed and not follower.timed_out
    assert one.admit(_prepared(), DEFAULT_START).waits  # now the other process waits for it
    two.release(follower, ok=True, now=DEFAULT_START)


def test_the_hold_on_another_process_is_bounded(fanout_on: Callable[[float], FanOut]) -> None:
    one, two = fanout_on(10), fanout_on(0.2)
    one.admit(_prepared(), DEFAULT_START)  # never released: a lead that hangs
    follower = two.admit(_prepared(), DEFAULT_START)
    started = time.monotonic()
    two.wait(follower)
    assert follower.timed_out and two.counts["timeouts"] == 1
    assert time.monotonic() - started < 5  # bounded by the hold, not by the other's lease
    # The store's watch ends after twice the hold (0.4 s); a loaded runner may take longer to get there.
    deadline = time.monotonic() + 10
    while two.in_flight() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert two.in_flight() == 0


def test_a_redis_store_that_is_down_lets_every_request_lead_as_if_alone() -> None:
    reset_failures()
    leases = RedisLeases("redis://127.0.0.1:1/0")  # Redis connects lazily: the claim fails
    fanout = FanOut("hold", timeout=10, leases=leases)
    admission = fanout.admit(_prepared(), DEFAULT_START)
    assert admission.leads and not admission.waits and not admission.claimed
    assert internal_failures().get(LEASE_FAILURE, 0) >= 1
    fanout.release(admission, ok=True, now=DEFAULT_START)  # nothing claimed: nothing to tell
    assert fanout.in_flight() == 0
    leases.close()


def test_wrap_shares_fanout_through_the_store_and_fails_open_when_it_is_down(redis_store_url: str) -> None:
    ledger = Ledger("sqlite://")
    raw = anthropic.Anthropic(api_key="k", base_url="http://127.0.0.1:1", max_retries=0)
    shared = cachewise.wrap(raw, ledger=ledger, reuse_store=redis_store_url, warm_start=False)
    assert isinstance(_fanout_of(shared).leases, RedisLeases)
    assert _fanout_of(cachewise.wrap(raw, ledger=ledger, warm_start=False)).leases is None
    reset_failures()
    down = "postgresql://postgres@127.0.0.1:1/test"
    with pytest.raises(psycopg.OperationalError):
        open_leases(down)
    alone = cachewise.wrap(raw, ledger=ledger, reuse_store=down, warm_start=False)
    assert _fanout_of(alone).leases is None  # logged; fan-out is held within this process
    assert internal_failures().get("fanout leases (fan-out is held within this process only)") == 1
    leases = _fanout_of(shared).leases
    assert leases is not None
    leases.close()  # type: ignore[attr-defined]
    ledger.close()


def _fanout_of(client: Any) -> FanOut:
    middleware = next(m for m in client._middleware if hasattr(m, "fanout"))
    fanout = middleware.fanout
    assert isinstance(fanout, FanOut)
    return fanout
