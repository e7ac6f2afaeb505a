"""Two planner processes sharing reuse state through Redis or PostgreSQL save as much as one process.

The workload's calls are split round-robin between two real OS processes, planning against one
emulator (:func:`cachewise.workloads.fleet.run_fleet`). Shared, their combined bill equals one
process planning the whole stream (exactly: each worker reads what the other published before it
plans); isolated, each learns alone and the bill is clearly higher.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from cachewise.fleet import open_store
from cachewise.workloads import SUITE, Workload, run
from cachewise.workloads.fleet import run_fleet


def _workload(name: str) -> Workload:
    return next(w for w in (make(1) for make in SUITE) if w.name == name)


@pytest.fixture(scope="module")
def baselines() -> dict[str, tuple[Decimal, Decimal, int]]:
    """Per workload: one process's input cost, two isolated processes' input cost, one's count calls."""
    out = {}
    for name in ("few-shot", "caller's own markers"):
        one = run(_workload(name), "planner")
        isolated = run_fleet(_workload(name), 2)
        out[name] = (one.input_cost, isolated.input_cost, one.count_calls)
    return out


@pytest.mark.parametrize("name", ["few-shot", "caller's own markers"])
@pytest.mark.parametrize("backend", ["redis", "postgres"])
def test_two_processes_sharing_reuse_state_save_as_much_as_one(
    name: str,
    backend: str,
    baselines: dict[str, tuple[Decimal, Decimal, int]],
    request: pytest.FixtureRequest,
) -> None:
    store = request.getfixturevalue("redis_store_url" if backend == "redis" else "pg_store_url")
    one, isolated, one_counts = baselines[name]
    shared = run_fleet(_workload(name), 2, store=store)
    assert shared.requests == len(list(_workload(name).calls()))
    # Isolated processes each pay the learning (and the writes) again: clearly above one process.
    assert isolated > one * Decimal("1.05")
    # Shared: the same bill as one process, and no prefix counted twice (the memo is shared too).
    assert shared.input_cost == one
    assert shared.count_calls == one_counts
    # ... and it went through the store: the log holds the workers' events.
    kept = open_store(store)
    try:
        assert kept.latest() is not None
        assert sum(1 for _ in kept.counts()) >= one_counts
    finally:
        kept.close()
