"""Two planner processes sharing reuse state through Redis or PostgreSQL save as much as one process.

Every workload of the suite (scale 1) is split round-robin between two real OS processes planning
against one emulator (:class:`cachewise.workloads.fleet.FleetReplay`: the two processes are started
once for the module, and each replay gives both a new planner, token memo and fleet link, so they
share no Python object, only the store). Shared, their combined bill equals one process planning the
whole stream, exactly, and they count no prefix twice (each worker reads what the other published
before it plans). Isolated, each learns alone: on the workloads where learning pays, clearly higher.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from decimal import Decimal

import pytest

from cachewise.fleet import FleetStats, open_store
from cachewise.planner import ReuseStats
from cachewise.workloads import SUITE, Workload, run
from cachewise.workloads.fleet import FleetReplay

NAMES = [make(1).name for make in SUITE]
#: Over 50 calls at scale 1: a few seconds each on a busy machine.
HEAVY = {make(1).name for make in SUITE if len(list(make(1).calls())) > 50}
#: Workloads where a process that learns alone pays clearly more than one that sees everything.
LEARNING_PAYS = ("few-shot", "sparse 20–40 min", "caller's own markers")


def _workload(name: str) -> Workload:
    return next(w for w in (make(1) for make in SUITE) if w.name == name)


@pytest.fixture(scope="module")
def replay() -> Iterator[FleetReplay]:
    with FleetReplay(2) as workers:
        yield workers


@pytest.fixture(scope="module")
def one_process() -> dict[str, tuple[Decimal, int]]:
    """Per workload: one process's input cost and count_tokens calls."""
    out = {}
    for name in NAMES:
        result = run(_workload(name), "planner")
        out[name] = (result.input_cost, result.count_calls)
    return out


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=pytest.mark.slow) if n in HEAVY else n for n in NAMES]
)
@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_two_processes_sharing_reuse_state_save_as_much_as_one(
    name: str,
    backend: str,
    replay: FleetReplay,
    one_process: dict[str, tuple[Decimal, int]],
    request: pytest.FixtureRequest,
) -> None:
    store = request.getfixturevalue("redis_store_url" if backend == "redis" else "pg_store_url")
    one, one_counts = one_process[name]
    shared = replay.run(_workload(name), store=store)
    assert shared.requests == len(list(_workload(name).calls()))
    # The same bill as one process, and no prefix counted twice (the memo is shared too).
    assert shared.input_cost == one
    assert shared.count_calls == one_counts
    # ... and it went through the store: the log holds the workers' events.
    kept = open_store(store)
    try:
        assert kept.latest() is not None
        assert sum(1 for _ in kept.counts()) >= one_counts
    finally:
        kept.close()


@pytest.mark.parametrize("name", LEARNING_PAYS)
def test_two_isolated_processes_each_pay_to_learn(
    name: str, replay: FleetReplay, one_process: dict[str, tuple[Decimal, int]]
) -> None:
    """Without the store the same split costs clearly more: the shared test above is not vacuous."""
    isolated = replay.run(_workload(name))
    assert isolated.input_cost > one_process[name][0] * Decimal("1.05")


#: What the planner tells its reuse window (each shared through the fleet) and what it asks of it.
OBSERVATIONS = {"record", "touch", "forget", "expect", "follow"}
#: Reads, and settle (resolves outcomes from the time alone, the same in every process).
READS = {"settle", "prefix", "live", "p_shared", "p_tail", "p_branch", "p_prefix", "p_pause", "p_return"}


def test_every_method_of_the_reuse_window_is_shared_or_a_read() -> None:
    """A new method on ReuseStats must be classified here and overridden by FleetStats: an
    observation the fleet does not publish would make two processes decide differently."""
    public = {
        name
        for name, member in inspect.getmembers(ReuseStats, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public == OBSERVATIONS | READS
    for name in public:
        assert name in vars(FleetStats), f"FleetStats does not override ReuseStats.{name}"
