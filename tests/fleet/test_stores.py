"""The fleet's stores and its failure modes: counts shared and kept, a store that is down, bad URLs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import anthropic
import pytest

import cachewise
from cachewise.failopen import internal_failures, reset_failures
from cachewise.fleet import Fleet, FleetMemo, FleetStats, attach, open_store
from cachewise.fleet.events import decode, from_micros, micros
from cachewise.planner import CachePlanner
from cachewise.tokens import TokenCounter, TokenMemo
from cachewise.workloads import SUITE

T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
FAILURE = "reuse store (planning goes on locally)"


def _body() -> dict[str, object]:
    workload = next(w for w in (make(1) for make in SUITE) if w.name == "few-shot")
    return next(iter(workload.calls())).request


def _planner() -> CachePlanner:
    counter = TokenCounter(lambda body: len(str(body)) // 4, memo=TokenMemo(None))
    return CachePlanner(counter, clock=lambda: T0)


@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_counts_minimums_and_observations_reach_the_other_process_and_a_newcomer(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_store_url" if backend == "redis" else "pg_store_url")
    one, two = _planner(), _planner()
    fleets = [attach(one, store=url), attach(two, store=url)]
    assert all(isinstance(f, Fleet) for f in fleets)
    plan = one.plan(_body())
    assert plan.breakpoints
    one.observe(plan, {"input_tokens": 10, "cache_creation_input_tokens": plan.breakpoints[-1].tokens})
    for fleet in fleets:
        assert fleet is not None and fleet.sync()
    for fleet in fleets:
        assert fleet is not None and fleet.sync()
    assert isinstance(two.stats, FleetStats) and isinstance(two.counter, TokenCounter)
    assert isinstance(two.counter.memo, FleetMemo)
    mark = plan.breakpoints[-1]
    assert mark.prefix_hash is not None
    # The other process sees the entry as live, knows the arrival, the count and the minimum.
    assert two.stats.live(mark.prefix_hash, T0 + timedelta(seconds=60)) == mark.ttl
    assert two.stats.requests == 1
    model = str(_body()["model"])
    assert two.counter.memo.lookup(two.counter.namespace, model) == one.counter.memo.lookup(
        one.counter.namespace, model
    )
    assert two.counter.learned_minimum(model) == one.counter.learned_minimum(model)
    assert two.counter.learned_minimum(model).at_most is not None
    # A process that joins later starts with all of it (the log and the durable counts).
    late = _planner()
    fleet = attach(late, store=url)
    assert fleet is not None
    assert isinstance(late.counter, TokenCounter)
    assert late.counter.memo.lookup(late.counter.namespace, model) == one.counter.memo.lookup(
        one.counter.namespace, model
    )
    assert late.stats.live(mark.prefix_hash, T0 + timedelta(seconds=60)) == mark.ttl
    for f in (*fleets, fleet):
        assert f is not None
        f.close()


def test_a_redis_store_that_is_down_is_logged_and_planning_goes_on_locally() -> None:
    reset_failures()
    planner = _planner()
    fleet = attach(planner, store="redis://127.0.0.1:1/0", startup_wait=0.5)
    assert fleet is not None
    plan = planner.plan(_body())
    assert plan.breakpoints  # planned as a lone process would
    planner.observe(plan, {"input_tokens": 10, "cache_creation_input_tokens": plan.breakpoints[-1].tokens})
    assert fleet.sync(0.5) is False
    assert internal_failures().get(FAILURE, 0) >= 1
    assert fleet.counters.failures >= 1
    fleet.close(0.1)


def test_a_postgres_store_that_is_down_leaves_the_planner_as_it_was() -> None:
    reset_failures()
    planner = _planner()
    stats = planner.stats
    assert attach(planner, store="postgresql://postgres@127.0.0.1:1/test") is None
    assert planner.stats is stats
    assert internal_failures().get(FAILURE) == 1
    assert planner.plan(_body()).breakpoints


def test_an_unknown_store_url_is_refused_naming_the_kinds_it_knows(tmp_path: Path) -> None:
    client = anthropic.Anthropic(api_key="x")
    with pytest.raises(ValueError, match=r"'mysql'.*redis://HOST:PORT/DB or postgresql://"):
        cachewise.wrap(client, ledger=tmp_path / "ledger.db", reuse_store="mysql://u:secret@db/x")
    with pytest.raises(ValueError, match=r"u:\*\*\*@db"):  # the password is not repeated
        open_store("mysql://u:secret@db/x")
    with pytest.raises(TypeError, match="reuse_store"):
        open_store(42)  # type: ignore[arg-type]


def test_event_times_round_trip_exactly_and_bad_batches_say_what_is_wrong() -> None:
    at = datetime(2026, 11, 20, 12, 0, 0, 123457, tzinfo=UTC)
    assert from_micros(micros(at)) == at
    with pytest.raises(ValueError, match="timezone-aware"):
        micros(datetime(2026, 11, 20, 12, 0))
    with pytest.raises(ValueError, match="JSON list of non-empty lists"):
        decode('{"r": 1}')
