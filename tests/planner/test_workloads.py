"""Small versions of benchmarks/planner_workloads.py against the emulator.

The planner must never cost more than no caching on any workload, and must beat
Anthropic's automatic caching where it misses structurally. Costs compared are the
emulator's bill without output (the emulator's reply length depends on the request
bytes, so output differs slightly between strategies; caching cannot change it).
"""

from __future__ import annotations

import pytest

from benchmarks import planner_workloads as pw

STRUCTURAL_MISSES = {"document Q&A", "agent loop", "few-shot", "sparse 20–40 min", "many tenants"}


def _small(make: pw.Callable[[int], pw.Workload]) -> pw.Workload:
    workload = make(1)
    workload.calls = workload.calls[:60]
    return workload


@pytest.mark.parametrize("make", pw.WORKLOADS, ids=lambda m: m.__name__)
def test_planner_never_costs_more_than_no_caching(make: pw.Callable[[int], pw.Workload]) -> None:
    workload = _small(make)
    results = {s: pw.run(workload, s) for s in pw.STRATEGIES}
    planner, none, auto = results["planner"], results["none"], results["automatic"]
    assert planner.input_cost <= none.input_cost, pw.markdown([list(results.values())])
    if workload.name in STRUCTURAL_MISSES:
        assert planner.input_cost < auto.input_cost, pw.markdown([list(results.values())])
    assert planner.count_calls <= 3 * planner.requests


def test_the_same_over_real_http() -> None:
    workload = pw.document_qa(1)
    workload.calls = workload.calls[:4]
    planner = pw.run(workload, "planner", server=True)
    none = pw.run(workload, "none", server=True)
    assert planner.input_cost < none.input_cost
