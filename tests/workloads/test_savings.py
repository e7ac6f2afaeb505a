"""Small versions of the planner's workload suite (``cachewise.workloads``) against the emulator.

The planner must never cost more than no caching on any workload, and must beat
Anthropic's automatic caching where it misses structurally. Costs compared are the
emulator's bill without output (the emulator's reply length depends on the request
bytes, so output differs slightly between strategies; caching cannot change it).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cachewise.workloads import STRATEGIES, SUITE, Workload, markdown, run
from cachewise.workloads.suite import document_qa

STRUCTURAL_MISSES = {"document Q&A", "agent loop", "few-shot", "sparse 20–40 min", "many tenants"}


@pytest.mark.parametrize("make", SUITE, ids=lambda m: m.__name__)
def test_planner_never_costs_more_than_no_caching(make: Callable[[int], Workload]) -> None:
    workload = make(1)
    results = {s: run(workload, s, limit=60) for s in STRATEGIES}
    planner, none, auto = results["planner"], results["none"], results["automatic"]
    assert planner.input_cost <= none.input_cost, markdown([list(results.values())])
    if workload.name in STRUCTURAL_MISSES:
        assert planner.input_cost < auto.input_cost, markdown([list(results.values())])
    assert planner.count_calls <= 3 * planner.requests


def test_the_same_over_real_http() -> None:
    workload = document_qa(1)
    planner = run(workload, "planner", server=True, limit=4)
    none = run(workload, "none", server=True, limit=4)
    assert planner.input_cost < none.input_cost
